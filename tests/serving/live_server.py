"""Starting a real `happysad serve` on loopback, and the SavedModels it serves.

The models are the reference CNN with random weights, exported by the
project's own code: the tests check what the server does with them (shapes,
routing, errors, reloads) and compare its answers with the same SavedModel
called in-process.
"""
from pathlib import Path

from happysad.serving import loopback
from helpers import HAPPYSAD, REPO

MODEL = "happysad"
MAX_REQUEST_BYTES = 1_000_000


def export_version(base: Path, version: int, seed: int) -> Path:
    """Exports the reference CNN (random weights from `seed`) as base/<version>/,
    written in place - not atomically, as TFX's Pusher copies a version."""
    import tensorflow as tf

    from happysad.components.trainer import serving_signatures
    from happysad.components.trainer.models import reference_cnn
    from happysad.data import emoji_faces

    tf.keras.utils.set_random_seed(seed)
    path = base / str(version)
    warmup = [(emoji_faces.DEFAULT_DIR / c / f"{c}_000.png").read_bytes() for c in ("happy", "sad")]
    serving_signatures.export(reference_cnn.build_model(), ["happy", "sad"], str(path), warmup_images=warmup)
    return path


def write_models_config(path: Path, base: Path, num_versions: int = 2, labels=()) -> Path:
    label_lines = "".join(f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in labels)
    path.write_text(
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL}"\n    base_path: "{base}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ latest {{ num_versions: {num_versions} }} }}\n"
        f"{label_lines}  }}\n}}\n")
    return path


def start_server(tmp: Path, *args) -> loopback.LoopbackServer:
    """Starts the venv's `happysad serve` with free ports; returns once both APIs listen."""
    try:
        return loopback.start(tmp / "server.log", ["--poll-seconds", "0.2", "--max-request-bytes",
                                                   str(MAX_REQUEST_BYTES), *args], command=[HAPPYSAD], cwd=REPO)
    except loopback.ServerDidNotStart as e:
        raise AssertionError(str(e)) from None


def wait_until(condition, seconds=120) -> bool:
    """Polls condition() until it holds (True) or `seconds` pass (False)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
