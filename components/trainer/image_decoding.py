"""Encoded image bytes -> the model's input tensor, inside the TF graph.

One function serves training, evaluation and serving, so every path sees the
same pixels (no training/serving skew). Modules in this folder import each
other by bare name: TFX installs them as top-level modules of the user wheel.
"""
import tensorflow as tf

IMAGE_SIZE = 150
CHANNELS = 3
# Transparent pixels are composited onto white: emoji art is drawn for light
# pages, and decode_png(channels=3) would otherwise expose the (often black)
# RGB under alpha 0. Ingestion uses the same background.
BACKGROUND = 255.0


def _composite(rgb: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    a = alpha / 255.0
    return rgb * a + BACKGROUND * (1.0 - a)


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """One PNG/JPEG/GIF/BMP string (any size, gray/RGB, with or without alpha)
    -> float32 [150, 150, 3] with values in 0..255."""
    image = tf.io.decode_image(encoded, channels=0, dtype=tf.uint8, expand_animations=False)
    image = tf.cast(image, tf.float32)
    channels = tf.shape(image)[-1]
    image = tf.switch_case(channels - 1, [
        lambda: tf.tile(image[..., :1], [1, 1, 3]),                               # gray
        lambda: _composite(tf.tile(image[..., :1], [1, 1, 3]), image[..., 1:2]),  # gray+alpha
        lambda: image[..., :3],                                                   # RGB
        lambda: _composite(image[..., :3], image[..., 3:4]),                      # RGBA
    ])
    image.set_shape([None, None, CHANNELS])
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    image = tf.cond(
        tf.logical_and(tf.equal(height, IMAGE_SIZE), tf.equal(width, IMAGE_SIZE)),
        lambda: image,
        lambda: tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE], antialias=True),
    )
    image = tf.clip_by_value(image, 0.0, 255.0)
    image.set_shape([IMAGE_SIZE, IMAGE_SIZE, CHANNELS])
    return image


def decode_batch(encoded: tf.Tensor) -> tf.Tensor:
    """A [N] string batch -> float32 [N, 150, 150, 3]."""
    return tf.map_fn(decode_image, encoded,
                     fn_output_signature=tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, CHANNELS], tf.float32))
