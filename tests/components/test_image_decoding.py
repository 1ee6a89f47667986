"""The graph-side decoder gives every path (training, eval, serving) the same pixels."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from happysad.components.trainer import image_decoding


def _encode(image: Image.Image, fmt="PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return image_decoding.decode_image(tf.constant(data)).numpy()


def test_transparent_pixels_become_white_not_black():
    rgba = Image.new("RGBA", (150, 150), (0, 0, 0, 0))
    rgba.paste((0, 128, 0, 255), (0, 0, 10, 10))
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
    gray_alpha.paste((40, 128), (0, 0, 10, 10))
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
    with pytest.raises(tf.errors.InvalidArgumentError, match="declares 8000 x 6000 pixels, over the limit"):
        _decode(bomb)
    under = _encode(Image.new("1", (6000, 6000)))  # 36 MP: decoded and resized
    assert _decode(under).shape == (150, 150, 3)


def test_the_decoder_imports_as_a_package_module_too():
    """happysad explain imports it as components.trainer.image_decoding, without
    the Trainer's folder on the path."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", "from components.trainer import image_decoding; "
                             "print(image_decoding.features.MAX_IMAGE_PIXELS)"],
                            cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "40000000"
