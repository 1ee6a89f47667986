"""The model is the reference CNN, and the callback stops exactly at the threshold."""
import keras
import numpy as np
import pytest

from happysad.components.trainer.models import reference_cnn


def test_layer_list_is_the_reference():
    model = reference_cnn.build_model()
    assert model.input_shape == (None, 150, 150, 3)
    described = []
    for layer in model.layers:
        config = layer.get_config()
        kind = type(layer).__name__
        if kind == "Rescaling":
            described.append((kind, {"scale": config["scale"]}))
        elif kind == "Conv2D":
            described.append((kind, {"filters": config["filters"], "kernel_size": tuple(config["kernel_size"]),
                                     "activation": config["activation"]}))
        elif kind == "MaxPooling2D":
            described.append((kind, {"pool_size": tuple(config["pool_size"])}))
        elif kind == "Dense":
            described.append((kind, {"units": config["units"], "activation": config["activation"]}))
        else:
            described.append((kind, {}))
    assert described == [
        ("Rescaling", {"scale": pytest.approx(1 / 255)}),
        ("Conv2D", {"filters": 16, "kernel_size": (3, 3), "activation": "relu"}),
        ("MaxPooling2D", {"pool_size": (2, 2)}),
        ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "activation": "relu"}),
        ("MaxPooling2D", {"pool_size": (2, 2)}),
        ("Conv2D", {"filters": 64, "kernel_size": (3, 3), "activation": "relu"}),
        ("MaxPooling2D", {"pool_size": (2, 2)}),
        ("Flatten", {}),
        ("Dense", {"units": 128, "activation": "relu"}),
        ("Dense", {"units": 1, "activation": "sigmoid"}),
    ]
    assert model.count_params() == 2_391_329  # the reference summary's total


def test_compiled_with_adam_binary_crossentropy_and_accuracy():
    model = reference_cnn.build_model(learning_rate=0.002)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.002)
    assert model.loss == "binary_crossentropy"
    model.fit(np.zeros((2, 150, 150, 3)), np.array([0.0, 1.0]), epochs=1, verbose=0)
    assert "accuracy" in model.get_metrics_result()


@pytest.mark.parametrize("accuracies, stopped_epoch", [
    ([0.5, 0.9, 0.998, 0.9989], None),   # just below never stops
    ([0.5, 0.999, 1.0], 2),               # exactly at the threshold stops
    ([1.0], 1),
])
def test_callback_stops_at_threshold_and_not_below(accuracies, stopped_epoch):
    callback = reference_cnn.StopAtAccuracy(0.999)
    model = reference_cnn.build_model()
    callback.set_model(model)
    for epoch, accuracy in enumerate(accuracies):
        model.stop_training = False
        callback.on_epoch_end(epoch, {"accuracy": accuracy})
        if model.stop_training:
            break
    assert callback.stopped_epoch == stopped_epoch
    assert model.stop_training == (stopped_epoch is not None)


def test_callback_ends_a_real_fit_early():
    # Two separable images: the model reaches 100% quickly and must stop there.
    x = np.stack([np.zeros((150, 150, 3)), np.full((150, 150, 3), 255.0)]).astype("float32")
    y = np.array([0.0, 1.0])
    keras.utils.set_random_seed(0)
    model = reference_cnn.build_model()
    callback = reference_cnn.StopAtAccuracy(0.999)
    history = model.fit(x, y, epochs=15, batch_size=2, callbacks=[callback], verbose=0)
    assert callback.stopped_epoch is not None
    assert len(history.history["accuracy"]) == callback.stopped_epoch < 15
    assert history.history["accuracy"][-1] >= 0.999
    assert all(a < 0.999 for a in history.history["accuracy"][:-1])


def test_three_or_more_classes_get_a_softmax_head():
    model = reference_cnn.build_model(num_classes=4)
    last = model.layers[-1]
    assert (last.get_config()["units"], last.get_config()["activation"]) == (4, "softmax")
    assert model.loss == "sparse_categorical_crossentropy"
    probabilities = model(np.zeros((2, 150, 150, 3), np.float32)).numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        reference_cnn.build_model(num_classes=1)


def test_augmentation_varies_training_images_by_key_and_repeats_a_key():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    batch = tf.constant(rng.uniform(0, 255, (8, 150, 150, 3)).astype(np.float32))
    first = reference_cnn.augment(batch, tf.constant([1, 2], tf.int64)).numpy()
    again = reference_cnn.augment(batch, tf.constant([1, 2], tf.int64)).numpy()
    other = reference_cnn.augment(batch, tf.constant([3, 4], tf.int64)).numpy()
    assert first.shape == batch.shape and first.min() >= 0 and first.max() <= 255
    np.testing.assert_array_equal(first, again)  # a key is a reproducible draw
    changed = [not np.allclose(a, b) for a, b in zip(first, batch.numpy())]
    assert all(changed) and not np.allclose(first, other)  # every image moves, differently per key


def test_augmentation_flips_rotates_and_zooms_within_its_bounds():
    import tensorflow as tf

    # A bright bar on the left third: flipped it moves right; rotated and zoomed
    # by at most 14.4 degrees and 10%, most of it stays in its row band.
    image = np.zeros((1, 150, 150, 3), np.float32)
    image[:, 65:85, 10:50] = 255.0
    sides = set()
    for k in range(40):
        out = reference_cnn.augment(tf.constant(image), tf.constant([k, 0], tf.int64)).numpy()[0, ..., 0]
        bright = out > 128
        sides.add("left" if bright[:, :75].sum() > bright[:, 75:].sum() else "right")
        ys = np.nonzero(bright)[0]
        assert 40 <= ys.mean() <= 110, (k, ys.mean())
    assert sides == {"left", "right"}
