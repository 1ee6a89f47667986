"""The generator: deterministic, balanced, and classes that differ only in expression."""
import filecmp
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from happysad.data import emoji_faces


def _files(root: Path):
    return sorted(p.relative_to(root) for p in root.rglob("*.png"))


def test_same_seed_gives_identical_bytes(tmp_path):
    a = emoji_faces.generate(tmp_path / "a", count=8, seed=3)
    b = emoji_faces.generate(tmp_path / "b", count=8, seed=3)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    for cls in emoji_faces.CLASS_NAMES:
        for pa, pb in zip(a[cls], b[cls]):
            assert pa.read_bytes() == pb.read_bytes()


def test_other_seed_gives_other_faces(tmp_path):
    a = emoji_faces.generate(tmp_path / "a", count=4, seed=1)
    b = emoji_faces.generate(tmp_path / "b", count=4, seed=2)
    assert a["happy"][0].read_bytes() != b["happy"][0].read_bytes()


def test_committed_default_set_regenerates_byte_for_byte(tmp_path):
    emoji_faces.generate(tmp_path / "faces")
    committed = emoji_faces.DEFAULT_DIR
    assert _files(committed) == _files(tmp_path / "faces")
    mismatch = [str(rel) for rel in _files(committed)
                if not filecmp.cmp(committed / rel, tmp_path / "faces" / rel, shallow=False)]
    assert mismatch == []


def test_default_set_is_80_balanced_150px_faces():
    for cls in emoji_faces.CLASS_NAMES:
        files = sorted((emoji_faces.DEFAULT_DIR / cls).glob("*.png"))
        assert len(files) == 40
        for f in files:
            assert Image.open(f).size == (150, 150)


def test_backgrounds_are_both_transparent_and_solid():
    modes = {Image.open(f).mode for f in emoji_faces.DEFAULT_DIR.rglob("*.png")}
    assert modes == {"RGBA", "RGB"}


def test_odd_count_is_refused(tmp_path):
    with pytest.raises(ValueError, match="multiple of the 2 classes"):
        emoji_faces.generate(tmp_path / "x", count=5)


def _face_stats(path: Path):
    """(mean RGB over the face, face area, face centroid x, y) of one image."""
    rgba = np.asarray(Image.open(path).convert("RGBA"), dtype=np.float64)
    rgb = rgba[..., :3]
    # Face pixels: saturated yellow/orange (emoji skin), whatever the background.
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    face = (r > 150) & (g > 90) & (b < 110) & (r - b > 100) & (rgba[..., 3] > 128)
    ys, xs = np.nonzero(face)
    return np.array([*rgb[face].mean(axis=0), face.sum(), xs.mean(), ys.mean()])


def test_classes_match_in_colour_size_and_position():
    stats = {cls: np.array([_face_stats(f) for f in sorted((emoji_faces.DEFAULT_DIR / cls).glob("*.png"))])
             for cls in emoji_faces.CLASS_NAMES}
    happy, sad = stats["happy"].mean(axis=0), stats["sad"].mean(axis=0)
    # colour within 3 levels, area within 3%, centroid within 1.5 px
    assert np.abs(happy[:3] - sad[:3]).max() < 3, (happy[:3], sad[:3])
    assert abs(happy[3] - sad[3]) / happy[3] < 0.03, (happy[3], sad[3])
    assert np.abs(happy[4:] - sad[4:]).max() < 1.5, (happy[4:], sad[4:])


@pytest.mark.parametrize("family, seed", [("classic", 0), *(("wide", seed) for seed in range(20))])
def test_a_pair_differs_only_around_the_mouth_brows_and_eyes(family, seed):
    style = emoji_faces.FAMILIES[family](np.random.default_rng(seed))
    happy = np.asarray(emoji_faces.render_face(style, "happy").convert("RGBA"), dtype=np.int16)
    sad = np.asarray(emoji_faces.render_face(style, "sad").convert("RGBA"), dtype=np.int16)
    differs = np.abs(happy - sad).max(axis=2) > 0
    assert differs.any()
    # Everything off the face (background, props around it) is identical, and
    # on it the rim: what differs sits inside 90% of the face's radius, plus
    # one pixel of a low-resolution style (drawn at `pixels` and scaled up),
    # which on a small face is up to 0.07 of the radius.
    size = emoji_faces.IMAGE_SIZE
    yy, xx = np.mgrid[0:size, 0:size]
    distance = np.hypot(xx - style.center[0] * size, yy - style.center[1] * size) / (style.radius * size)
    low_res_pixel = 1 / (style.pixels * style.radius) if style.pixels else 0.0
    assert not differs[distance > 0.92 + low_res_pixel].any(), distance[differs].max()


def test_the_wide_family_draws_every_style_it_names():
    styles = [emoji_faces.sample_wide_style(np.random.default_rng(seed)) for seed in range(300)]
    assert {s.eye_style for s in styles} == {"dot", "oval", "highlight", "closed", "whites", "heart"}
    assert {p for s in styles for p in s.props} == set(emoji_faces.PROPS)
    assert any(s.face_rgb == (255, 255, 255) and s.feature_rgb == (0, 0, 0) for s in styles)  # line art
    assert any(s.highlight > 0 for s in styles) and any(s.shadow for s in styles)
    assert any(s.pixels for s in styles) and any(s.outline == 0 for s in styles)
    depths = [s.mouth_depth for s in styles if s.mouth_style == "line"]
    assert min(depths) < 0.15 and max(depths) > 0.4  # subtle curves and deep ones
    # About a quarter of the faces at OpenMoji's size (radius 0.28-0.36), the rest larger.
    small = [s.radius for s in styles if s.radius < 0.36]
    assert 0.2 < len(small) / len(styles) < 0.4 and min(small) >= 0.28, (len(small), min(small, default=None))


# Regenerated on a CPU other than the one that drew the committed set, floating point can round
# another way: measured on an AVX2-only machine, one pair of 100 differed in one pixel by one level.
MAX_LEVELS_OFF, MAX_VALUES_OFF = 1, 16


def test_the_committed_wide_set_regenerates_byte_for_byte(tmp_path):
    """Byte for byte on the machine that drew it; elsewhere, to within rounding."""
    emoji_faces.generate(tmp_path / "wide", emoji_faces.WIDE_COUNT, emoji_faces.WIDE_SEED, family="wide")
    committed = emoji_faces.WIDE_DIR
    assert _files(committed) == _files(tmp_path / "wide") and len(_files(committed)) == emoji_faces.WIDE_COUNT
    mismatch = [rel for rel in _files(committed)
                if not filecmp.cmp(committed / rel, tmp_path / "wide" / rel, shallow=False)]
    off = {}
    for rel in mismatch:
        a, b = (np.asarray(Image.open(root / rel).convert("RGBA"), np.int16) for root in (committed, tmp_path / "wide"))
        off[str(rel)] = (int(np.abs(a - b).max()), int((a != b).sum()))
    print(f"\nwide set: {len(mismatch)} of {len(_files(committed))} files differ from the committed bytes: {off}")
    assert all(levels <= MAX_LEVELS_OFF for levels, _ in off.values()), off
    assert sum(count for _, count in off.values()) <= MAX_VALUES_OFF, off


def test_more_expressions_share_each_style_and_differ_in_expression(tmp_path):
    written = emoji_faces.generate(tmp_path / "four", count=8, seed=11, classes=emoji_faces.EXPRESSIONS)
    assert {cls: len(paths) for cls, paths in written.items()} == {c: 2 for c in emoji_faces.EXPRESSIONS}
    first = {cls: np.asarray(Image.open(paths[0]).convert("RGB"), np.int16) for cls, paths in written.items()}
    for a in emoji_faces.EXPRESSIONS:
        for b in emoji_faces.EXPRESSIONS:
            if a < b:  # same style, other expression: the pixels differ, but not everywhere
                changed = np.abs(first[a] - first[b]).max(axis=2) > 30
                assert 0.01 < changed.mean() < 0.35, (a, b, changed.mean())
    # The default pair is unchanged by the extra expressions (the committed data stays valid).
    pair = emoji_faces.generate(tmp_path / "pair", count=8, seed=11)
    again = emoji_faces.generate(tmp_path / "again", count=8, seed=11, classes=("happy", "sad"))
    assert [p.read_bytes() for p in pair["sad"]] == [p.read_bytes() for p in again["sad"]]


@pytest.mark.parametrize("classes, count, says", [
    (("happy",), 4, "two or more"),
    (("happy", "bored"), 4, "two or more"),
    (("happy", "sad", "angry"), 8, "multiple of the 3 classes"),
])
def test_bad_class_sets_and_counts_are_refused(tmp_path, classes, count, says):
    with pytest.raises(ValueError, match=says):
        emoji_faces.generate(tmp_path / "x", count=count, seed=1, classes=classes)
    assert not (tmp_path / "x").exists()


def test_parallel_generation_writes_the_same_bytes(tmp_path, monkeypatch):
    serial = emoji_faces.generate(tmp_path / "serial", count=8, seed=5)
    monkeypatch.setattr(emoji_faces, "_PARALLEL_FROM", 4)  # force the worker pool for 8 faces
    parallel = emoji_faces.generate(tmp_path / "parallel", count=8, seed=5)
    for cls in emoji_faces.CLASS_NAMES:
        assert [p.read_bytes() for p in serial[cls]] == [p.read_bytes() for p in parallel[cls]]
