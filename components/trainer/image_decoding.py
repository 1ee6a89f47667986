"""Encoded image bytes -> the model's input tensor, inside the TF graph.

One function serves training, evaluation and serving, so every path sees the
same pixels (no training/serving skew).

Decoding is bounded before anything is allocated, whatever the request looks
like (decode_batch): the formats are recognised by the same magic bytes
decode_image uses, every header's size is summed over the batch against one
budget (contract.MAX_DECODED_PIXELS), a GIF is cut after its first frame
(decode_image would otherwise read every frame), and a large image is thinned
by integer strides while still uint8, so no float buffer outgrows
MAX_DECODE_SIDE x MAX_DECODE_SIDE, whatever the aspect ratio.
"""
import tensorflow as tf

from happysad import contract

IMAGE_SIZE = contract.IMAGE_SIZE
CHANNELS = 3
# Transparent pixels are composited onto white: emoji art is drawn for light
# pages, and decode_png(channels=3) would otherwise expose the (often black)
# RGB under alpha 0. Ingestion uses the same background.
BACKGROUND = float(contract.BACKGROUND[0])  # white: the same value in every channel
MAX_DECODE_SIDE = contract.MAX_DECODE_SIDE
# A GIF's first frame must end within its first this many bytes; the first
# _GIF_SHORT_SCAN_BYTES are scanned on their own first, which is all a small GIF needs.
_GIF_SCAN_BYTES = 4 * 2 ** 20
_GIF_SHORT_SCAN_BYTES = 64 * 2 ** 10
# decode_image's own magic bytes (tensorflow/core/kernels/image/decode_image_op.cc).
_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "gif": b"GIF8", "bmp": b"BM", "jpeg": b"\xff\xd8\xff"}


def _composite(rgb: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    a = alpha / 255.0
    return rgb * a + BACKGROUND * (1.0 - a)


def _big_endian(raw: tf.Tensor, start, length: int) -> tf.Tensor:
    value = tf.constant(0, tf.int64)
    for i in range(length):
        value = value * 256 + raw[start + i]
    return value


def _little_endian(raw: tf.Tensor, start, length: int) -> tf.Tensor:
    value = tf.constant(0, tf.int64)
    for i in reversed(range(length)):
        value = value * 256 + raw[start + i]
    return value


def _starts_with(encoded: tf.Tensor, magic: bytes) -> tf.Tensor:
    return tf.equal(tf.strings.substr(encoded, 0, len(magic)), magic)


def declared_size(encoded: tf.Tensor) -> tf.Tensor:
    """[height, width] as the image's header declares them, read without
    decoding; [-1, -1] for bytes decode_image would not take as PNG, GIF, BMP
    or JPEG (check_decode_budget refuses those)."""
    head = tf.strings.substr(tf.strings.join([encoded, tf.constant(b"\0" * 32)]), 0, 32)
    raw = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)

    def bmp():  # signed 32-bit; a negative height means rows stored top-down
        def signed(v):
            return tf.abs(tf.where(v >= 2 ** 31, v - 2 ** 32, v))
        return tf.stack([signed(_little_endian(raw, 22, 4)), signed(_little_endian(raw, 18, 4))])

    def jpeg():
        return tf.cast(tf.image.extract_jpeg_shape(encoded)[:2], tf.int64)

    def png():  # IHDR, big-endian
        return tf.stack([_big_endian(raw, 20, 4), _big_endian(raw, 16, 4)])

    def gif():  # the logical screen, little-endian
        return tf.stack([_little_endian(raw, 8, 2), _little_endian(raw, 6, 2)])

    return tf.case([(_starts_with(encoded, _MAGIC["jpeg"]), jpeg), (_starts_with(encoded, _MAGIC["png"]), png),
                    (_starts_with(encoded, _MAGIC["gif"]), gif), (_starts_with(encoded, _MAGIC["bmp"]), bmp)],
                   default=lambda: tf.constant([-1, -1], tf.int64))


def check_decode_budget(encoded: tf.Tensor) -> tf.Operation:
    """An assertion over a [N] batch of encoded images: every one is a PNG,
    GIF, BMP or JPEG, and their declared pixels sum to at most
    contract.MAX_DECODED_PIXELS. It reads headers only, so a decompression
    bomb (or many) is refused before a pixel buffer is allocated. Fails with
    InvalidArgumentError naming the first image at fault."""
    sizes = tf.map_fn(declared_size, encoded, fn_output_signature=tf.TensorSpec([2], tf.int64))
    sizes = tf.reshape(sizes, [-1, 2])
    pixels = sizes[:, 0] * sizes[:, 1]
    unknown = tf.reduce_any(sizes[:, 0] < 0)
    first_unknown = tf.argmax(tf.cast(sizes[:, 0] < 0, tf.int32))
    total = tf.reduce_sum(pixels)
    largest = tf.argmax(pixels)
    known = tf.debugging.Assert(tf.logical_not(unknown), [tf.strings.format(
        "image {}: Unknown image file format (its first bytes match no PNG, JPEG, GIF or BMP): send one of those",
        first_unknown)])
    with tf.control_dependencies([known]):
        return tf.debugging.Assert(total <= contract.MAX_DECODED_PIXELS, [tf.strings.format(
            "image {} declares {} x {} pixels; all images of the request declare {}, over the limit of {} "
            f"pixels a request: send smaller images or fewer at once (the model reads {IMAGE_SIZE}x{IMAGE_SIZE})",
            (largest, sizes[largest, 1], sizes[largest, 0], total, contract.MAX_DECODED_PIXELS))])


def _last_node(successor: tf.Tensor, start: tf.Tensor, nodes: int) -> tf.Tensor:
    """Where following `successor` from `start` ends: at a node that is its own
    successor. Pointer doubling: each round squares the map, so ceil(log2(nodes))
    gathers reach the end of any path, however many steps it has."""
    for _ in range(nodes.bit_length()):
        successor = tf.gather(successor, successor)
    return tf.gather(successor, start)


def _gif_first_image(encoded: tf.Tensor, scan_bytes: int) -> tuple:
    """(descriptor, end): where the GIF's first image descriptor starts and
    where the 0 that ends its data sits, within the first `scan_bytes`; either
    is out of that range when not found there.

    A GIF is a chain of blocks whose lengths are in the data: an extension
    (0x21) and an image's data (after its 0x2C descriptor) are runs of
    sub-blocks, a length byte and that many bytes, ended by a length of 0.
    Every byte position gets the position it leads to, as if a block or a
    sub-block started there, and the chain is followed by pointer doubling, so
    the cost is O(bytes x log bytes), not one graph step per sub-block (a GIF
    of one-byte sub-blocks has hundreds of thousands)."""
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 0, scan_bytes), tf.uint8), tf.int32)
    n = tf.size(raw)
    here = tf.range(n)
    padded = tf.concat([raw, tf.zeros([16], tf.int32)], 0)  # header fields past a short file read 0

    def table_size(flags):  # a colour table follows when bit 7 is set: 3 * 2^(size + 1) bytes
        return tf.where(flags >= 128, tf.bitwise.left_shift(3, tf.bitwise.bitwise_and(flags, 7) + 1), 0)

    def at(i):
        return tf.gather(padded, tf.clip_by_value(i, 0, n + 15))

    # Pass 1, to the first image descriptor. Nodes: "a block starts at i" (i),
    # "an extension's sub-block starts at i" (n + i), and `lost` (2n): cut short
    # or not a GIF block. A descriptor (0x2C) is an end: its own successor.
    lost = 2 * n

    def node(base, i):
        return tf.where(i < n, base + i, lost)

    block = tf.where(tf.equal(raw, 0x21), node(n, here + 2), tf.where(tf.equal(raw, 0x2C), here, lost))
    sub_block = tf.where(tf.equal(raw, 0), node(0, here + 1), node(n, here + raw + 1))
    descriptor = _last_node(tf.concat([block, sub_block, [lost]], 0), node(0, 13 + table_size(at(10))),
                            2 * scan_bytes + 1)
    # Pass 2, through the image's data sub-blocks to the 0 that ends them (its own successor).
    lost = n
    data = descriptor + 10 + table_size(at(descriptor + 9)) + 1  # after the LZW code size byte
    image_sub_block = tf.where(tf.equal(raw, 0), here, node(0, here + raw + 1))
    end = _last_node(tf.concat([image_sub_block, [lost]], 0), node(0, data), scan_bytes + 1)
    return descriptor, tf.where(descriptor < n, end, n)


def gif_first_frame(encoded: tf.Tensor) -> tf.Tensor:
    """A GIF's bytes up to the end of its first image, then the trailer: what
    decode_image reads of it is one frame, however many follow. Fails
    (InvalidArgumentError) for a GIF whose first image is cut short, lies
    outside its canvas, or does not end within its first _GIF_SCAN_BYTES.
    The first 64 KB are scanned first: a small GIF's whole first frame."""
    def within(scan_bytes):
        return lambda: _gif_first_image(encoded, scan_bytes)

    descriptor, end = within(_GIF_SHORT_SCAN_BYTES)()
    descriptor, end = tf.cond(end < tf.minimum(tf.strings.length(encoded), _GIF_SHORT_SCAN_BYTES),
                              lambda: (descriptor, end), within(_GIF_SCAN_BYTES))
    head = tf.cast(tf.io.decode_raw(tf.strings.substr(tf.strings.join([encoded, b"\0" * 16]), descriptor, 9),
                                    tf.uint8), tf.int32)
    canvas = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, 6, 4), tf.uint8), tf.int32)
    left, top, width, height = (head[i] + 256 * head[i + 1] for i in (1, 3, 5, 7))
    found = tf.debugging.Assert(end < tf.minimum(tf.strings.length(encoded), _GIF_SCAN_BYTES), [
        f"GIF: its first frame is cut short, or does not end within its first {_GIF_SCAN_BYTES} bytes: send it "
        "as a PNG, or a well-formed GIF"])
    with tf.control_dependencies([found]):
        inside = tf.debugging.Assert(tf.logical_and(left + width <= canvas[0] + 256 * canvas[1],
                                                    top + height <= canvas[2] + 256 * canvas[3]), [tf.strings.format(
            "GIF: its first frame ({} x {} at {}, {}) lies outside its canvas: send it as a PNG",
            (width, height, left, top))])
    with tf.control_dependencies([inside]):
        return tf.strings.join([tf.strings.substr(encoded, 0, end + 1), b"\x3b"])


def _thin(image: tf.Tensor) -> tf.Tensor:
    """Every k-th row and column (k = ceil(side / MAX_DECODE_SIDE)), still uint8,
    so a side stays under MAX_DECODE_SIDE before the float conversion."""
    shape = tf.shape(image)
    strides = (shape[:2] + MAX_DECODE_SIDE - 1) // MAX_DECODE_SIDE
    return tf.strided_slice(image, [0, 0, 0], shape, tf.concat([strides, [1]], 0))


def frame(image: tf.Tensor) -> tf.Tensor:
    """float32 [H, W, 3] (0..255) -> the square around what differs from the
    image's border colour, with a margin, padded with that colour where it
    leaves the image; the image itself where the border is not one colour or
    nothing differs from it (contract.FRAME_*). tflite_model.frame does the same
    in numpy, to the pixel."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    border = tf.concat([image[0], image[height - 1], image[:, 0], image[:, width - 1]], 0)
    colour = tf.sort(border, axis=0)[tf.shape(border)[0] // 2]  # each channel's median (the upper one)
    border_off = tf.reduce_max(tf.abs(border - colour), axis=-1) > contract.FRAME_TOLERANCE
    off = tf.reduce_max(tf.abs(image - colour), axis=-1) > contract.FRAME_TOLERANCE
    rows, columns = tf.reduce_any(off, axis=1), tf.reduce_any(off, axis=0)
    framed = tf.logical_and(tf.reduce_mean(tf.cast(border_off, tf.float32)) <= contract.FRAME_BORDER_OFF,
                            tf.reduce_any(rows))

    def first(flags):
        return tf.argmax(tf.cast(flags, tf.int32), output_type=tf.int32)

    def square():
        top, bottom = first(rows), height - first(tf.reverse(rows, [0]))  # [top, bottom)
        left, right = first(columns), width - first(tf.reverse(columns, [0]))
        size = tf.maximum(bottom - top, right - left)
        side = size + 2 * (size // contract.FRAME_MARGIN_DIVISOR)
        y, x = (top + bottom - side) // 2, (left + right - side) // 2
        y0, x0 = tf.maximum(y, 0), tf.maximum(x, 0)
        y1, x1 = tf.minimum(y + side, height), tf.minimum(x + side, width)
        inside = image[y0:y1, x0:x1] - colour
        return tf.pad(inside, [[y0 - y, y + side - y1], [x0 - x, x + side - x1], [0, 0]]) + colour

    return tf.cond(framed, square, lambda: image)


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """One PNG/JPEG/GIF/BMP string (any size, gray/RGB, with or without alpha)
    -> float32 [150, 150, 3] with values in 0..255: composited onto white,
    framed (frame) and resized. Over MAX_DECODED_PIXELS it fails before
    decoding; a GIF gives its first frame."""
    with tf.control_dependencies([check_decode_budget(tf.reshape(encoded, [1]))]):
        return _decode_checked(tf.identity(encoded))


def _decode_checked(encoded: tf.Tensor) -> tf.Tensor:
    """decode_image after the budget check, which the caller has made."""
    encoded = tf.cond(_starts_with(encoded, _MAGIC["gif"]), lambda: gif_first_frame(encoded),
                      lambda: tf.identity(encoded))
    image = tf.io.decode_image(encoded, channels=0, dtype=tf.uint8, expand_animations=False)
    image = tf.cast(_thin(image), tf.float32)
    channels = tf.shape(image)[-1]
    image = tf.switch_case(channels - 1, [
        lambda: tf.tile(image[..., :1], [1, 1, 3]),                               # gray
        lambda: _composite(tf.tile(image[..., :1], [1, 1, 3]), image[..., 1:2]),  # gray+alpha
        lambda: image[..., :3],                                                   # RGB
        lambda: _composite(image[..., :3], image[..., 3:4]),                      # RGBA
    ])
    image.set_shape([None, None, CHANNELS])
    image = frame(image)
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
    """A [N] string batch -> float32 [N, 150, 150, 3]. The whole batch is
    checked against the budget first, then decoded one image at a time, so
    the decode's peak is one image's, not N's."""
    with tf.control_dependencies([check_decode_budget(encoded)]):
        encoded = tf.identity(encoded)
    return tf.map_fn(_decode_checked, encoded, parallel_iterations=1,
                     fn_output_signature=tf.TensorSpec([IMAGE_SIZE, IMAGE_SIZE, CHANNELS], tf.float32))
