"""Fixtures: one shared server over version 1 of a model, and reference answers."""
import pytest

from live_server import MODEL, export_version, start_server, write_models_config


@pytest.fixture(scope="session")
def model_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("models") / MODEL
    export_version(base, 1, seed=1)
    return base


@pytest.fixture(scope="session")
def server(model_base, tmp_path_factory):
    """Version 1 behind a models.config with a `stable` label, as in serving/models.config."""
    tmp = tmp_path_factory.mktemp("server")
    config = write_models_config(tmp / "models.config", model_base, labels=[("stable", 1)])
    srv = start_server(tmp, "--model-config-file", str(config))
    yield srv
    assert srv.stop() == 0, "the server did not shut down cleanly"


@pytest.fixture(scope="session")
def in_process(model_base):
    """The same version 1, loaded in the test process: the reference answers."""
    import tensorflow as tf

    return tf.saved_model.load(str(model_base / "1"))


@pytest.fixture(scope="session")
def faces():
    """A few of the committed faces' PNG bytes, both classes."""
    from happysad.data import emoji_faces

    files = [emoji_faces.DEFAULT_DIR / c / f"{c}_{i:03d}.png" for c in ("happy", "sad") for i in range(3)]
    return [f.read_bytes() for f in files]
