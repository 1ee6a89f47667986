"""Encoded image bytes -> the model's input tensor, inside the TF graph.

One function serves training, evaluation and serving, so every path sees the
same pixels (no training/serving skew).
"""
import tensorflow as tf

from happysad.components.trainer import features

IMAGE_SIZE = features.IMAGE_SIZE
CHANNELS = 3
# Transparent pixels are composited onto white: emoji art is drawn for light
# pages, and decode_png(channels=3) would otherwise expose the (often black)
# RGB under alpha 0. Ingestion uses the same background.
BACKGROUND = float(features.BACKGROUND[0])  # white: the same value in every channel


def _composite(rgb: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    a = alpha / 255.0
    return rgb * a + BACKGROUND * (1.0 - a)


def _big_endian(raw: tf.Tensor, start: int, length: int) -> tf.Tensor:
    value = tf.constant(0, tf.int64)
    for i in range(start, start + length):
        value = value * 256 + raw[i]
    return value


def _little_endian(raw: tf.Tensor, start: int, length: int) -> tf.Tensor:
    return _big_endian(tf.reverse(raw[start:start + length], [0]), 0, length)


def declared_size(encoded: tf.Tensor) -> tf.Tensor:
    """[height, width] as the image's header declares them, read without
    decoding; [0, 0] for a format decode_image does not know (it then fails
    on its own)."""
    head = tf.strings.substr(tf.strings.join([encoded, tf.constant(b"\0" * 32)]), 0, 32)
    raw = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)
    magic = tf.strings.substr(encoded, 0, 4)
    is_png = tf.equal(magic, b"\x89PNG")
    is_gif = tf.equal(tf.strings.substr(magic, 0, 3), b"GIF")
    is_bmp = tf.equal(tf.strings.substr(magic, 0, 2), b"BM")
    is_jpeg = tf.equal(tf.strings.substr(magic, 0, 2), b"\xff\xd8")

    def bmp():  # signed 32-bit; a negative height means rows stored top-down
        def signed(v):
            return tf.abs(tf.where(v >= 2 ** 31, v - 2 ** 32, v))
        return tf.stack([signed(_little_endian(raw, 22, 4)), signed(_little_endian(raw, 18, 4))])

    return tf.case([
        (is_png, lambda: tf.stack([_big_endian(raw, 20, 4), _big_endian(raw, 16, 4)])),
        (is_gif, lambda: tf.stack([_little_endian(raw, 8, 2), _little_endian(raw, 6, 2)])),
        (is_bmp, bmp),
        (is_jpeg, lambda: tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64)),
    ], default=lambda: tf.zeros([2], tf.int64), exclusive=True)


def check_pixel_limit(encoded: tf.Tensor) -> tf.Operation:
    """An assertion that fails (InvalidArgumentError) when the header declares
    more than features.MAX_IMAGE_PIXELS pixels, so a decompression bomb is
    refused before a pixel buffer is allocated."""
    size = declared_size(encoded)
    return tf.debugging.Assert(size[0] * size[1] <= features.MAX_IMAGE_PIXELS, [tf.strings.format(
        "image declares {} x {} pixels, over the limit of {} pixels: send a smaller image (the model reads "
        f"{IMAGE_SIZE}x{IMAGE_SIZE})", (size[1], size[0], features.MAX_IMAGE_PIXELS))])


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """One PNG/JPEG/GIF/BMP string (any size, gray/RGB, with or without alpha)
    -> float32 [150, 150, 3] with values in 0..255. Over MAX_IMAGE_PIXELS it
    fails before decoding."""
    with tf.control_dependencies([check_pixel_limit(encoded)]):
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
