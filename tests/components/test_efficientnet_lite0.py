"""The lite0 architecture: its pretrained weights read without torch, loaded whole, frozen where they
should be, and exported so that TF Serving's session loader runs it."""
import sys

import numpy as np
import pytest
import tensorflow as tf

from happysad.components.saved_model_bundle import SavedModelBundle
from happysad.components.trainer import image_decoding, serving_signatures
from happysad.components.trainer.models import efficientnet_lite0, torch_weights
from happysad.data import emoji_faces
from helpers import removed_unless_failed, saved_model_cli_run

FACES = [(emoji_faces.DEFAULT_DIR / c / f"{c}_{i:03d}.png").read_bytes() for c in ("happy", "sad") for i in range(2)]


@pytest.fixture(scope="module")
def state():
    return torch_weights.load_state_dict(efficientnet_lite0.weights_path(), sha256=efficientnet_lite0.WEIGHTS_SHA256)


@pytest.fixture(scope="module")
def model():
    tf.keras.utils.set_random_seed(3)
    return efficientnet_lite0.build_model()


def test_the_installed_weights_read_without_torch(state):
    assert "torch" not in sys.modules
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    variances = [v for k, v in state.items() if k.endswith("running_var")]
    # Non-negative; a few channels are dead (variance 0) in ImageNet's own checkpoint.
    assert len(variances) == 49 and all((v >= 0).all() and np.median(v) > 0 for v in variances)
    # Trained weights, not zeros or an initialiser's noise: ImageNet's stem has structure across colours.
    stem = state["_conv_stem.weight"]
    assert stem.dtype == np.float32 and 0.1 < np.abs(stem).mean() < 10


def test_every_convolution_and_batchnorm_comes_from_the_file(model, state):
    import keras

    layers = {layer.name: layer for layer in model.layers}
    np.testing.assert_array_equal(layers["conv_stem"].get_weights()[0],
                                  state["_conv_stem.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(layers["blocks_7_depthwise_conv"].get_weights()[0],
                                  state["_blocks.7._depthwise_conv.weight"].transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(layers["blocks_7_bn1"].moving_variance.numpy(), state["_blocks.7._bn1.running_var"])
    convs = [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert (len(convs), len(norms)) == (49, 49)
    # Every layer frozen to ImageNet's statistics; everything else trains.
    assert not any(layer.trainable for layer in norms) and all(layer.trainable for layer in convs)


def test_a_file_missing_a_layer_or_with_a_wrong_shape_loads_nothing_silently(model, state, monkeypatch):
    missing = {k: v for k, v in state.items() if not k.startswith("_blocks.4._bn1.")}
    monkeypatch.setattr(torch_weights, "load_state_dict", lambda path, sha256: missing)
    with pytest.raises(ValueError, match="no weights for layer blocks_4_bn1"):
        efficientnet_lite0.load_pretrained(model, "some.pth", sha256=None)
    reshaped = dict(state, **{"_conv_head.weight": np.zeros((1280, 160, 1, 1), np.float32)})
    monkeypatch.setattr(torch_weights, "load_state_dict", lambda path, sha256: reshaped)
    with pytest.raises(ValueError, match=r"_conv_head has shapes .* layer conv_head wants"):
        efficientnet_lite0.load_pretrained(model, "some.pth", sha256=None)


def test_training_leaves_the_frozen_statistics_alone():
    # Its own model: training the module's would change the weights other tests compare with the file.
    tf.keras.utils.set_random_seed(3)
    model = efficientnet_lite0.build_model()
    before = model.get_layer("blocks_3_bn0").moving_mean.numpy().copy()
    head = model.get_layer("head").get_weights()[0].copy()
    pixels = image_decoding.decode_batch(tf.constant(FACES))
    model.fit(pixels, np.array([0, 0, 1, 1], np.float32), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.get_layer("blocks_3_bn0").moving_mean.numpy(), before)
    assert not np.allclose(model.get_layer("head").get_weights()[0], head)


@pytest.fixture(scope="module")
def export_dir(model, tmp_path_factory, request):
    with removed_unless_failed(request.session, tmp_path_factory.mktemp("lite0")) as base:
        path = str(base / "1")
        serving_signatures.export(model, ["happy", "sad"], path, warmup_images=FACES)
        yield path


def test_tf_serving_s_session_loader_runs_it_and_agrees_with_keras(model, export_dir, tmp_path):
    """The failure of issue 1 ("Could not find variable") shows only on this path."""
    own = model(image_decoding.decode_batch(tf.constant(FACES)), training=False).numpy()[:, 0]
    bundle = SavedModelBundle(export_dir)
    assert bundle.warm_up() == 2 * len(FACES)
    served = bundle.run("serving_default", {"images": np.array(FACES, dtype=object)})
    bundle.close()
    np.testing.assert_allclose(served["probabilities"][:, 1], own, atol=1e-5)

    result = saved_model_cli_run(export_dir, FACES[:1], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key probabilities:" in result.stdout
