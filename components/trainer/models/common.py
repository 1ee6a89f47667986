"""What every architecture shares: the classifier head, its compilation, the training
augmentation and the accuracy-threshold stop callback."""
import math

import keras
import tensorflow as tf

from happysad.components.trainer import image_decoding


def pixels_input() -> keras.KerasTensor:
    """Every model's input: [N, 150, 150, 3] pixels, 0..255 (each model scales them itself,
    so serving clients send raw images)."""
    size, channels = image_decoding.IMAGE_SIZE, image_decoding.CHANNELS
    return keras.Input(shape=(size, size, channels), name="pixels")

def classifier_head(num_classes: int, name: str = None) -> keras.layers.Dense:
    """One sigmoid unit, P(class index 1), for two classes; one softmax unit per class for more."""
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    if num_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name=name)
    return keras.layers.Dense(num_classes, activation="softmax", name=name)


def compile_classifier(model: keras.Model, learning_rate: float, num_classes: int) -> keras.Model:
    """Adam; binary cross-entropy for two classes, sparse categorical (integer labels) for more; accuracy."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy" if num_classes == 2 else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# Augmentation bounds, per image, besides a horizontal flip: rotation up to
# +-7.2 degrees, zoom 5%, contrast 10%. Twice these (as Keras's RandomRotation(0.04),
# RandomZoom(0.1), RandomContrast(0.2) had) transferred a little better but kept
# some seeds from the stop threshold within the epoch cap (data/README.md).
MAX_ROTATION = 0.02 * 2 * math.pi
MAX_ZOOM = 0.05
MAX_CONTRAST = 0.1


def augment(images, key):
    """A random horizontal flip, rotation and zoom (one bilinear warp, edges
    repeated) and contrast change per image of a [N, H, W, C] batch of 0..255
    pixels. key: an int64 [2] seed; the same key gives the same batch.

    Applied in the Trainer's tf.data map to the training split only: the
    exported model is the architecture alone and serving never sees it. Every
    change keeps the expression readable (a mirrored smile is still a smile).
    One warp instead of Keras's three layers: cheaper per epoch."""
    shape = tf.shape(images)
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    draws = tf.random.stateless_uniform([shape[0], 4], seed=key)
    flip = tf.where(draws[:, 0] < 0.5, -1.0, 1.0)
    angle = (2 * draws[:, 1] - 1) * MAX_ROTATION
    zoom = 1 + (2 * draws[:, 2] - 1) * MAX_ZOOM
    contrast = 1 + (2 * draws[:, 3] - 1) * MAX_CONTRAST
    # Output pixel (x, y) reads input centre + zoom * rotation * flip * ((x, y) - centre).
    cos, sin = tf.cos(angle) * zoom, tf.sin(angle) * zoom
    cx, cy = (width - 1) / 2, (height - 1) / 2
    a0, a1, b0, b1 = cos * flip, -sin, sin * flip, cos
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, cx - a0 * cx - a1 * cy, b0, b1, cy - b0 * cx - b1 * cy, zeros, zeros], axis=1)
    warped = tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST")
    mean = tf.reduce_mean(warped, axis=[1, 2, 3], keepdims=True)
    return tf.clip_by_value((warped - mean) * contrast[:, None, None, None] + mean, 0.0, 255.0)


class StopAtAccuracy(keras.callbacks.Callback):
    """Stops training at the end of the first epoch whose training accuracy
    reaches `threshold` (TrainingConfig.threshold; the seed notebook's callback)."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold
        self.stopped_epoch = None  # 1-based epoch at which the threshold was reached

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("accuracy")
        if accuracy is not None and accuracy >= self.threshold:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True
