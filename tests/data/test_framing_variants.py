"""data/framing_variants.py: every kind deterministic, the sizes it promises, the face inside the canvas."""
import io
import random
import sys

import numpy as np
import pytest
from PIL import Image, ImageFilter

from happysad.data import emoji_faces, framing_variants
from happysad.data.framing_variants import KINDS
from happysad.data.real_emoji_pack import PACK_DIR

# Art without alpha (the real-emoji pack, RGB on white) and with it (a generated face, RGBA).
SOURCES = [PACK_DIR / "noto" / "sad" / "1f625.png", emoji_faces.DEFAULT_DIR / "happy" / "happy_000.png"]
SEEDED = [k for k in KINDS if k != "dark"]  # dark has nothing to draw: the face, as it is, on dark mode


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.parent.parent.name)
def test_same_seed_same_bytes_other_seed_other_bytes(source):
    image = Image.open(source)
    first, again, other = (framing_variants.variants(image, seed) for seed in (7, 7, 8))
    assert first == again
    assert [k for k in SEEDED if first[k] == other[k]] == []
    assert framing_variants.variant(image, "mixed", random.Random(3)) == framing_variants.variant(image, "mixed", 3)


def test_the_module_imports_without_tensorflow():
    import subprocess

    code = "import sys, happysad.data.framing_variants; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def _background_and_box(image: Image.Image):
    """The canvas's most common colour, and the box of the pixels of any other colour (PNG: exact)."""
    pixels = np.asarray(image.convert("RGB")).astype(np.int64)
    packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    values, counts = np.unique(packed, return_counts=True)
    top = int(values[counts.argmax()])
    colour = (top >> 16, (top >> 8) & 255, top & 255)
    ys, xs = np.nonzero(packed != top)
    return colour, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.parent.parent.name)
def test_every_kind_decodes_to_the_size_it_promises(source):
    image = Image.open(source)
    for seed in range(4):
        for kind, data in framing_variants.variants(image, seed).items():
            out = _open(data)
            assert out.mode == "RGB", kind
            assert out.format == ("JPEG" if kind in ("jpeg", "mixed") else "PNG"), kind
            assert data.startswith(b"\xff\xd8\xff" if out.format == "JPEG" else b"\x89PNG\r\n\x1a\n"), kind
            assert framing_variants.extension(kind) == ("jpg" if out.format == "JPEG" else "png")
            if kind.startswith("offcentre") or kind == "mixed":
                assert out.width == out.height and 200 <= out.width <= 600, (kind, out.size)
            elif kind == "small":
                assert out.width == out.height and 20 <= out.width <= 48, out.size
            else:
                assert out.size == image.size, kind


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.parent.parent.name)
def test_the_face_is_inside_the_canvas_at_25_to_60_percent(source):
    image = Image.open(source)
    shares = []
    for seed in range(8):
        for kind, background in (("offcentre-white", (255, 255, 255)), ("offcentre-dark", framing_variants.DARK),
                                 ("offcentre-colour", None)):
            canvas = _open(framing_variants.variant(image, kind, seed))
            colour, (left, top, right, bottom) = _background_and_box(canvas)
            if background is not None:
                assert colour == background, kind
            # Fully inside (not cut at an edge), and its longer side 25-60% of the canvas, give or take a pixel.
            assert 0 <= left and 0 <= top and right <= canvas.width and bottom <= canvas.height
            share = max(right - left, bottom - top) / canvas.width
            assert 0.25 - 2 / canvas.width <= share <= 0.60 + 2 / canvas.width, (kind, seed, share)
            shares.append(share)
    assert max(shares) - min(shares) > 0.15  # the range is used, not one size


def test_art_without_alpha_loses_its_white_surround_on_a_dark_canvas():
    art = Image.open(SOURCES[0])
    assert art.mode == "RGB"
    dark = np.asarray(_open(framing_variants.variant(art, "dark", 0)))
    assert tuple(dark[0, 0]) == framing_variants.DARK and tuple(dark[-1, -1]) == framing_variants.DARK
    assert tuple(dark[75, 75]) == art.getpixel((75, 75))  # the face itself is unchanged
    assert (np.abs(dark.astype(int) - 255).max(axis=2) < 10).mean() < 0.02  # no white square left
    # Nor a light ring: of the face's pixels touching the background, few are light (399 of 554
    # when the anti-aliased edge, blended with white, was kept; 9 now).
    background = Image.fromarray((dark == framing_variants.DARK).all(axis=2).astype(np.uint8) * 255)
    edge = (np.asarray(background.filter(ImageFilter.MaxFilter(3))) > 0) & (np.asarray(background) == 0)
    assert (dark.min(axis=2)[edge] >= 200).mean() < 0.05


def test_build_writes_every_kind_reproducibly(tmp_path):
    source = tmp_path / "src"
    for path in SOURCES:
        (source / path.parent.name).mkdir(parents=True, exist_ok=True)
        (source / path.parent.name / path.name).write_bytes(path.read_bytes())
    counts = [framing_variants.build(source, tmp_path / name, seed=seed)
              for name, seed in (("a", 1), ("b", 1), ("c", 2))]
    assert counts == [len(SOURCES) * len(KINDS)] * 3
    files = {name: {p.relative_to(tmp_path / name): p.read_bytes() for p in (tmp_path / name).rglob("*.*")}
             for name in "abc"}
    assert files["a"] == files["b"]  # byte for byte
    assert sorted(map(str, files["a"])) == sorted(
        f"{p.parent.name}/{p.stem}-{k}.{framing_variants.extension(k)}" for p in SOURCES for k in KINDS)
    assert files["a"] != files["c"] and files["a"].keys() == files["c"].keys()
    for path, data in files["a"].items():  # no metadata that could change from run to run
        assert b"tIME" not in data and b"Exif" not in data, path
    assert framing_variants.build(source, tmp_path / "d", kinds=["small"], seed=1) == len(SOURCES)
    assert framing_variants.build(source, tmp_path / "e", kinds=["small"], seed=1, classes=["sad"]) == 1


def test_the_committed_held_out_variants_regenerate_byte_for_byte(tmp_path):
    """data/emoji_variants, the default run's held-out source "variants": one variant of each face
    of the held-out vendors, the kinds in turn (`happysad generate --family variants`)."""
    from happysad.pipeline import configs

    sets = [PACK_DIR / name for name in configs.HELD_OUT_SOURCES]
    count = framing_variants.build_held_out(sets, tmp_path)
    built = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.*")}
    committed = {p.relative_to(framing_variants.HELD_OUT_DIR): p.read_bytes()
                 for p in framing_variants.HELD_OUT_DIR.rglob("*.*")}
    assert count == len(built) == len(committed) == 53
    assert built.keys() == committed.keys()
    differ = sorted(str(p) for p in built if built[p] != committed[p])
    assert not differ, f"regenerate with `make data` (Pillow may have changed): {differ[:5]}"
    kinds = [max((k for k in KINDS if p.stem.endswith("-" + k)), key=len) for p in built]
    assert {kind: kinds.count(kind) for kind in KINDS} == {kind: pytest.approx(53 / 8, abs=1) for kind in KINDS}
