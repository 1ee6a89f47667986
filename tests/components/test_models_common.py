"""What every architecture shares: the callback stops exactly at the threshold, and the
augmentation varies images reproducibly within its bounds."""
import keras
import numpy as np
import pytest

from happysad.components.trainer.models import common, reference_cnn


@pytest.mark.parametrize("accuracies, stopped_epoch", [
    ([0.5, 0.9, 0.998, 0.9989], None),   # just below never stops
    ([0.5, 0.999, 1.0], 2),               # exactly at the threshold stops
    ([1.0], 1),
])
def test_callback_stops_at_threshold_and_not_below(accuracies, stopped_epoch):
    callback = common.StopAtAccuracy(0.999)
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
    callback = common.StopAtAccuracy(0.999)
    history = model.fit(x, y, epochs=15, batch_size=2, callbacks=[callback], verbose=0)
    assert callback.stopped_epoch is not None
    assert len(history.history["accuracy"]) == callback.stopped_epoch < 15
    assert history.history["accuracy"][-1] >= 0.999
    assert all(a < 0.999 for a in history.history["accuracy"][:-1])


def test_augmentation_varies_training_images_by_key_and_repeats_a_key():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    batch = tf.constant(rng.uniform(0, 255, (8, 150, 150, 3)).astype(np.float32))
    first = common.augment(batch, tf.constant([1, 2], tf.int64)).numpy()
    again = common.augment(batch, tf.constant([1, 2], tf.int64)).numpy()
    other = common.augment(batch, tf.constant([3, 4], tf.int64)).numpy()
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
        out = common.augment(tf.constant(image), tf.constant([k, 0], tf.int64)).numpy()[0, ..., 0]
        bright = out > 128
        sides.add("left" if bright[:, :75].sum() > bright[:, 75:].sum() else "right")
        ys = np.nonzero(bright)[0]
        assert 40 <= ys.mean() <= 110, (k, ys.mean())
    assert sides == {"left", "right"}
