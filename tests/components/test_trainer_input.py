"""The Trainer's input pipeline: what it keeps in memory, and that it feeds the same data."""
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from happysad.components.trainer import image_decoding, trainer_module
from happysad.components.trainer.models import reference_cnn
from happysad.data import emoji_faces

from helpers import example


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def _write(path, images, count: int) -> None:
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for i in range(count):
            writer.write(example(image=images[i % len(images)], label=i % 2))


def test_memory_grows_with_the_encoded_images_not_the_decoded_pixels(tmp_path):
    # 3,000 faces decoded are 810 MB of float32 pixels; encoded, about 30 MB.
    images = [p.read_bytes() for p in sorted(emoji_faces.DEFAULT_DIR.rglob("*.png"))]
    _write(tmp_path / "warm.tfrecord.gz", images, 100)
    _write(tmp_path / "train.tfrecord.gz", images, 3000)
    for _ in trainer_module._dataset([str(tmp_path / "warm.tfrecord.gz")], 50, shuffle_seed=1, augment=True):
        pass  # TensorFlow's own start-up: kernels, thread pools, tracing
    before = _rss_mb()
    dataset = trainer_module._dataset([str(tmp_path / "train.tfrecord.gz")], 50, shuffle_seed=1, augment=True)
    seen = 0
    for _ in range(2):  # the second epoch reads the cache
        for pixels, _ in dataset:
            seen += len(pixels)
    grown = _rss_mb() - before
    assert seen == 6000
    assert grown < 200, f"RSS grew {grown:.0f} MB over 3,000 images"  # measured 88 MB; 888 MB with the decoded pixels cached


@pytest.mark.parametrize("cached", ["decoded pixels", "encoded bytes"])
def test_every_epoch_feeds_the_same_decoded_images_in_a_new_order(tmp_path, monkeypatch, cached):
    if cached == "encoded bytes":  # what a split over DECODED_CACHE_BYTES keeps
        monkeypatch.setattr(trainer_module, "DECODED_CACHE_BYTES", 0)
    images = [p.read_bytes() for p in sorted(emoji_faces.DEFAULT_DIR.rglob("*.png"))[:20]]
    _write(tmp_path / "train.tfrecord.gz", images, 20)
    dataset = trainer_module._dataset([str(tmp_path / "*.gz")], 5, shuffle_seed=3)
    epochs = [np.concatenate([p.numpy() for p, _ in dataset]) for _ in range(2)]
    expected = np.stack([image_decoding.decode_image(tf.constant(b)).numpy() for b in images])
    for epoch in epochs:  # the same pixels as the decoder gives, each image once
        assert sorted(map(bytes, epoch.round().astype(np.uint8))) == sorted(map(bytes, expected.round().astype(np.uint8)))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled


class _EpochStartGaps(keras.callbacks.Callback):
    """Seconds from each epoch's start to its first batch: the input pipeline's start-up."""

    def __init__(self):
        super().__init__()
        self.gaps, self._started = [], None

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.gaps.append(time.perf_counter() - self._started)


def test_epochs_start_without_waiting_on_the_last_epochs_input(tmp_path):
    # With tf.data's autotuning on, some epochs waited 0.3-1.3 s before their
    # first batch here (the last epoch's iterator winding down); without it
    # 0.02-0.03 s.
    images = [p.read_bytes() for p in sorted(emoji_faces.DEFAULT_DIR.rglob("*.png"))]
    _write(tmp_path / "train.tfrecord.gz", images, 200)
    _write(tmp_path / "eval.tfrecord.gz", images, 40)
    train = trainer_module._dataset([str(tmp_path / "train.tfrecord.gz")], 10, shuffle_seed=1, augment=True)
    evaluation = trainer_module._dataset([str(tmp_path / "eval.tfrecord.gz")], 10)
    gaps = _EpochStartGaps()
    reference_cnn.build_model().fit(train, validation_data=evaluation, epochs=7, callbacks=[gaps], verbose=0)
    later = gaps.gaps[1:]  # the first epoch traces the step and fills the cache
    print("seconds before each epoch's first batch:", [round(g, 3) for g in gaps.gaps])
    assert max(later) < 0.25, f"an epoch waited {max(later):.2f} s for its first batch"
