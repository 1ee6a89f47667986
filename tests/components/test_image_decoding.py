"""The graph-side decoder gives every path (training, eval, serving) the same pixels."""
import io
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from happysad.components.trainer import image_decoding
import attack_corpus


def _encode(image: Image.Image, fmt="PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return image_decoding.decode_image(tf.constant(data)).numpy()


def test_transparent_pixels_become_white_not_black():
    rgba = Image.new("RGBA", (150, 150), (0, 0, 0, 0))
    rgba.paste((0, 128, 0, 255), (0, 0, 10, 150))  # a band along the border: not framed
    pixels = _decode(_encode(rgba))
    assert pixels[100, 100].tolist() == [255, 255, 255]
    assert pixels[5, 5].tolist() == [0, 128, 0]


def test_half_transparent_pixels_blend_with_white():
    pixels = _decode(_encode(Image.new("RGBA", (150, 150), (0, 0, 0, 128))))
    assert pixels[0, 0] == pytest.approx([255 * (1 - 128 / 255)] * 3, abs=0.01)


@pytest.mark.parametrize("mode, colour, expected", [
    ("L", 90, [90, 90, 90]),
    ("LA", (90, 255), [90, 90, 90]),
    ("RGB", (1, 2, 3), [1, 2, 3]),
])
def test_colour_modes_become_rgb(mode, colour, expected):
    pixels = _decode(_encode(Image.new(mode, (150, 150), colour)))
    assert pixels.shape == (150, 150, 3)
    assert pixels[0, 0].tolist() == expected


def test_other_sizes_and_jpeg_are_resized_to_150():
    pixels = _decode(_encode(Image.new("RGB", (300, 64), (250, 10, 10)), "JPEG"))
    assert pixels.shape == (150, 150, 3)
    assert pixels[75, 75][0] > 230 and pixels[75, 75][1] < 30


def test_batch_decoding_handles_mixed_sizes():
    batch = tf.constant([_encode(Image.new("RGB", (150, 150))), _encode(Image.new("L", (40, 90)))])
    assert image_decoding.decode_batch(batch).shape == (2, 150, 150, 3)


def test_partly_transparent_gray_alpha_blends_with_white():
    gray_alpha = Image.new("LA", (150, 150), (0, 0))
    gray_alpha.paste((40, 128), (0, 0, 10, 150))  # a band along the border: not framed
    pixels = _decode(_encode(gray_alpha))
    assert pixels[100, 100].tolist() == [255, 255, 255]  # fully transparent: white
    assert pixels[5, 5] == pytest.approx([40 * 128 / 255 + 255 * (1 - 128 / 255)] * 3, abs=0.01)


@pytest.mark.parametrize("fmt, mode", [("PNG", "RGB"), ("PNG", "LA"), ("JPEG", "RGB"), ("GIF", "P"), ("BMP", "RGB")])
def test_declared_size_is_read_from_the_header(fmt, mode):
    data = _encode(Image.new(mode, (123, 45)), fmt)
    assert image_decoding.declared_size(tf.constant(data)).numpy().tolist() == [45, 123]


def test_an_image_over_the_pixel_limit_is_refused_before_decoding():
    # 8000 x 6000 = 48 MP (over the 40 MP limit): a 1-bit PNG of a few KB. A
    # decode would allocate 8000*6000*4 float32 bytes per channel - 576 MB.
    bomb = _encode(Image.new("1", (8000, 6000)))
    assert len(bomb) < 100_000
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="image 0 declares 8000 x 6000 pixels; .* over the limit of 40000000 pixels"):
        _decode(bomb)
    under = _encode(Image.new("1", (6000, 6000)))  # 36 MP: decoded and resized
    assert _decode(under).shape == (150, 150, 3)


# --- Framing: a face on a one-colour background fills the frame, wherever it sits ---

def _face_on(canvas_size, background, box):
    """A 'face' (a red disc with a dark mouth) in `box` on a canvas of one colour."""
    from PIL import ImageDraw

    image = Image.new("RGB", canvas_size, background)
    draw = ImageDraw.Draw(image)
    left, top, size = box
    draw.ellipse([left, top, left + size - 1, top + size - 1], fill=(230, 40, 40))
    draw.rectangle([left + size // 4, top + size * 2 // 3, left + size * 3 // 4, top + size * 3 // 4],
                   fill=(40, 0, 0))
    return _encode(image)


def test_a_small_off_centre_face_is_framed_the_same_wherever_it_sits():
    """Where it sits and how large the canvas is do not change what the model sees."""
    a = _decode(_face_on((400, 300), (255, 255, 255), (250, 20, 120)))
    b = _decode(_face_on((260, 600), (255, 255, 255), (10, 450, 120)))
    centred = _decode(_face_on((150, 150), (255, 255, 255), (15, 15, 120)))
    assert np.abs(a - b).max() < 1 and np.abs(a - centred).max() < 1
    assert a[75, 75].tolist()[0] > 200 and a[2, 2].tolist() == [255, 255, 255]  # the face fills it; a margin


def test_a_dark_background_is_framed_with_its_own_colour():
    pixels = _decode(_face_on((500, 500), (30, 31, 34), (300, 330, 100)))
    assert pixels[75, 75][0] > 200
    assert pixels[1, 1].tolist() == pytest.approx([30, 31, 34], abs=0.01)


def test_a_border_of_many_colours_is_left_whole():
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
    expected = tf.image.resize(tf.constant(noisy, tf.float32), [150, 150], antialias=True).numpy()
    assert np.abs(_decode(_encode(Image.fromarray(noisy))) - np.clip(expected, 0, 255)).max() < 1e-3


# --- Bounded decoding: the budget, GIF frames, extreme aspect ratios (attack_corpus builds the inputs) ---

def _refused(encoded: list, match: str) -> None:
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        image_decoding.decode_batch(tf.constant(encoded))


def test_the_budget_is_summed_over_the_batch_before_anything_decodes():
    big = attack_corpus.png_header_only(5000, 5000)  # 25 MP declared, no pixel data
    check = image_decoding.check_decode_budget
    check(tf.constant([big]))  # alone it is within the 40 MP budget (its decode would then fail)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="image 0 declares 5000 x 5000 pixels; all images of the request declare 50000000, over"):
        check(tf.constant([big, big]))
    _refused([attack_corpus.png(10, 10), big, big], "declare 50000100, over")


@pytest.mark.parametrize("make", [
    lambda: attack_corpus.jpeg_header_only(65_500, 65_500),
    lambda: attack_corpus.bmp_header_only(100_000, -100_000),
    lambda: attack_corpus.png_header_only(2 ** 31 - 1, 2 ** 31 - 1)])
def test_every_format_is_held_to_the_budget_from_its_header(make):
    _refused([make()], "over the limit of 40000000 pixels")


def test_bytes_of_another_format_are_refused_by_name():
    _refused([b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\0" * 16], "image 0: Unknown image file format")
    _refused([b"\x89PNx" + b"\0" * 40], "image 0: Unknown image file format")  # decode_image's 3-byte check took it


def test_a_gif_is_decoded_as_its_first_frame_alone():
    frames = [Image.new("RGB", (60, 40), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    assert _decode(out.getvalue())[0, 0].tolist() == [255.0, 0.0, 0.0]


def test_a_gifs_cost_does_not_grow_with_its_frames():
    decode = tf.function(image_decoding.decode_batch, input_signature=[tf.TensorSpec([None], tf.string)])
    # 2,000 frames: 500 MB of rasters, were every frame decoded.
    one, many = attack_corpus.gif(500, 500, 1), attack_corpus.gif(500, 500, 2000)
    decode(tf.constant([one]))
    seconds = {}
    for name, data in (("one", one), ("many", many)):
        started = time.perf_counter()
        decode(tf.constant([data]))
        seconds[name] = time.perf_counter() - started
    print(f"\n1 frame {seconds['one'] * 1000:.0f} ms, 2000 frames {seconds['many'] * 1000:.0f} ms")
    assert seconds["many"] < 10 * seconds["one"] + 0.5, seconds  # every frame decoded took ~3 s here


def test_a_gif_cut_short_fragmented_or_outside_its_canvas_is_refused():
    whole = attack_corpus.gif(100, 100, 2)
    _refused([whole[:60]], "GIF: its first frame is cut short")
    started = time.perf_counter()
    _refused([attack_corpus.gif_fragmented(100, 100, 3_000_000)], "does not end within its first 4194304 bytes")
    assert time.perf_counter() - started < 10  # one graph step a sub-block took minutes
    _refused([attack_corpus.gif_frame_outside_canvas(60_000, 60_000)], "lies outside its canvas")


@pytest.mark.parametrize("size", [(100_000, 20), (20, 100_000), (1300, 2500)])
def test_a_long_side_is_thinned_by_an_integer_stride_before_the_float_buffers(size):
    """Same pixels as thinning by hand (every k-th row and column, k = ceil(side / 600)) and resizing."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    thinned = pixels[::-(-size[1] // 600), ::-(-size[0] // 600)]
    assert max(thinned.shape[:2]) <= 600
    expected = tf.image.resize(tf.cast(thinned, tf.float32), [150, 150], antialias=True).numpy()
    got = _decode(_encode(Image.fromarray(pixels)))
    assert np.max(np.abs(np.clip(expected, 0, 255) - got)) < 1e-3


def test_random_bytes_and_mutated_headers_are_refused_in_words_never_crash():
    """Property: any bytes behind any of the four magics either decode or fail
    with InvalidArgumentError, within the budget and in bounded time."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    seeds = [attack_corpus.png(30, 20), attack_corpus.gif(30, 20, 2),
             attack_corpus.bmp_header_only(30, 20) + b"\0" * 1800, attack_corpus.jpeg_header_only(30, 20),
             _encode(Image.new("RGB", (30, 20)), "JPEG")]
    decode = tf.function(image_decoding.decode_batch, input_signature=[tf.TensorSpec([None], tf.string)])

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(seeds), st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=6),
           st.integers(0, 200), st.binary(max_size=64))
    def attack(seed, edits, cut, tail):
        data = bytearray(seed)
        for position, value in edits:  # overwrite header bytes: sizes, flags, table sizes
            if position < len(data):
                data[position] = value
        data = bytes(data[:len(data) - cut] if cut < len(data) else data) + tail
        try:
            assert decode(tf.constant([data])).shape == (1, 150, 150, 3)
        except tf.errors.InvalidArgumentError:
            pass

    attack()


_PEAK_SCRIPT = """
import resource, sys
import tensorflow as tf
from happysad.components.trainer import image_decoding
decode = tf.function(image_decoding.decode_batch, input_signature=[tf.TensorSpec([None], tf.string)])
small, big = (open(path, "rb").read() for path in sys.argv[1:3])
decode(tf.constant([small]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
decode(tf.constant([big]))
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.parametrize("size", [(1_000_000, 39), (39, 1_000_000)])
def test_an_extreme_aspect_ratio_costs_its_uint8_decode_not_gigabytes_of_floats(tmp_path, size):
    """Memory, measured: the peak of one decode in a fresh process. 39 MP RGBA
    decode to 156 MB of uint8; as floats, tiled and resized, they took 1.3-3 GB."""
    import subprocess
    import sys

    small, big = tmp_path / "small.png", tmp_path / "big.png"
    small.write_bytes(attack_corpus.png(30, 30))
    big.write_bytes(attack_corpus.png(*size, "RGBA"))
    result = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(small), str(big)], capture_output=True,
                            text=True, timeout=300, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    grown = float(result.stdout.split()[-1])
    print(f"\n{size[0]} x {size[1]} RGBA: peak +{grown:.0f} MB")
    assert grown < 400, grown
