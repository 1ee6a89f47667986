"""Deterministic generator of emoji-like happy and sad faces.

Faces are made in pairs: every pair shares one draw of everything that is not
expression (background, face colour and shading, size, position, rotation, eye
style, outline, mouth style, width and height) and differs only in the
expression (mouth curvature direction, brow slant, closed-eye arc direction).
So nothing but the expression can tell the classes apart - the class-wise
colour, size and position statistics are equal by construction.

Drawing happens at 4x the output size and is downsampled with Lanczos for the
anti-aliased look of real emoji renders. Output is byte-for-byte reproducible
for a given (count, seed) and Pillow version (PNG encoding is deterministic) on
one CPU; another CPU can round a pixel by one level (tests/data/test_emoji_faces.py).
"""
from __future__ import annotations

import colorsys
import dataclasses
import math
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from happysad import contract

CLASS_NAMES = ("happy", "sad")  # the default data set
# Every expression the generator draws; `--classes` picks a subset.
EXPRESSIONS = ("happy", "sad", "surprised", "angry")
IMAGE_SIZE = contract.IMAGE_SIZE
SUPERSAMPLE = 4

DEFAULT_COUNT = 80
DEFAULT_SEED = 20261129
DEFAULT_DIR = Path(__file__).resolve().parent / "emoji_faces"  # the seed's 80 classic faces
# The wide family's committed set (README, "which default").
WIDE_COUNT = 200
WIDE_SEED = 20261130
WIDE_DIR = Path(__file__).resolve().parent / "emoji_faces_wide"
SMALL_FACE_SHARE = 0.27  # of the wide pairs, drawn at OpenMoji's size (README, "Which default")
# The generated faces the default run trains on, and make bench-transfer with it.
TRAINING_DIRS = (DEFAULT_DIR, WIDE_DIR)
_PARALLEL_FROM = 400  # faces; below this, worker start-up costs more than it saves


@dataclasses.dataclass(frozen=True)
class FaceStyle:
    """Everything about a face except its expression (shared by a pair)."""

    background: tuple[int, int, int] | None  # None = transparent
    radius: float  # fraction of the canvas
    center: tuple[float, float]  # fraction of the canvas
    rotation: float  # degrees, counter-clockwise
    face_rgb: tuple[int, int, int]
    shade: float  # darkening factor at the rim, 0..1
    outline: float  # outline width as fraction of radius, 0 = none
    eye_style: str  # dot | oval | highlight | closed
    eye_spacing: float
    eye_height: float
    eye_size: float
    brows: bool
    mouth_style: str  # line | open | teeth
    mouth_width: float
    mouth_depth: float
    mouth_y: float
    stroke: float  # line width as fraction of radius
    feature_rgb: tuple[int, int, int]
    accent: bool  # happy faces blush, sad faces shed a tear (as many real emoji do)
    accent_side: int  # -1 left, 1 right
    # The wide family's extras (the defaults draw the classic faces unchanged).
    outline_rgb: tuple[int, int, int] | None = None  # None: the face colour, darkened
    highlight: float = 0.0  # strength of a specular highlight, upper left (3D renders)
    shadow: bool = False  # a soft drop shadow under the face
    brow_width: float = 0.0  # as fraction of radius; 0: three quarters of the stroke
    props: tuple[str, ...] = ()  # drawn on both faces of a pair: blush, tear, sweat, hearts, halo
    prop_rgb: tuple[int, int, int] | None = None  # None: each prop's natural colour
    mouth_fill: tuple[int, int, int] | None = None  # inside an open mouth; None: feature colour
    pixels: int = 0  # drawn at this size and scaled up, as 64 px vendor art is; 0: full size


def sample_style(rng: np.random.Generator) -> FaceStyle:
    """Draws one non-expression style from the generator's distribution."""
    transparent = rng.random() < 0.5
    if transparent:
        background = None
    else:
        # Light backgrounds of any hue, the way renders are pasted on pages.
        h, s, v = rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.85, 1.0)
        background = _hsv(h, s, v)
    # Real renders fill most of the frame and sit near its centre.
    radius = rng.uniform(0.42, 0.48)
    slack = min(0.02, 0.5 - radius - 0.01)
    center = (0.5 + rng.uniform(-slack, slack), 0.5 + rng.uniform(-slack, slack))
    face_rgb = _hsv(rng.uniform(0.10, 0.15), rng.uniform(0.70, 1.0), rng.uniform(0.90, 1.0))
    feature_rgb = _hsv(rng.uniform(0.02, 0.08), rng.uniform(0.5, 0.8), rng.uniform(0.15, 0.35))
    return FaceStyle(
        background=background,
        radius=radius,
        center=center,
        rotation=float(rng.uniform(-6, 6)),
        face_rgb=face_rgb,
        shade=float(rng.uniform(0.0, 0.25)),
        outline=float(rng.choice([0.0, rng.uniform(0.02, 0.05)])),
        eye_style=str(rng.choice(["dot", "oval", "highlight", "closed"])),
        eye_spacing=float(rng.uniform(0.30, 0.45)),
        eye_height=float(rng.uniform(0.12, 0.32)),
        eye_size=float(rng.uniform(0.09, 0.16)),
        brows=bool(rng.random() < 0.4),
        mouth_style=str(rng.choice(["line", "open", "teeth"])),
        mouth_width=float(rng.uniform(0.70, 1.10)),
        mouth_depth=float(rng.uniform(0.26, 0.40)),
        mouth_y=float(rng.uniform(0.33, 0.42)),
        stroke=float(rng.uniform(0.08, 0.12)),
        feature_rgb=feature_rgb,
        accent=bool(rng.random() < 0.35),
        accent_side=int(rng.choice([-1, 1])),
    )


# Props of the wide family, each on both faces of a pair (real emoji put tears,
# sweat, hearts and halos on happy and sad faces alike).
PROPS = ("blush", "tear", "sweat", "hearts", "halo")


def sample_wide_style(rng: np.random.Generator) -> FaceStyle:
    """The wide family: the styles of the major vendors' art and beyond - flat
    and 3D-shaded faces, black line art, outlines of any weight, eye whites,
    heart eyes, thick brows, subtle and open mouths, props, low-resolution art.
    Still one draw per pair: only the expression differs within a pair."""
    line_art = rng.random() < 0.2  # black lines on a white face (high-contrast sets)
    if line_art:
        face_rgb = (255, 255, 255)
        feature_rgb = outline_rgb = (0, 0, 0)
        outline = float(rng.uniform(0.04, 0.09))
        shade, highlight = 0.0, 0.0
    else:
        face_rgb = _hsv(rng.uniform(0.08, 0.16), rng.uniform(0.55, 1.0), rng.uniform(0.85, 1.0))
        feature_rgb = (_hsv(rng.uniform(0.02, 0.08), rng.uniform(0.4, 0.9), rng.uniform(0.1, 0.4))
                       if rng.random() < 0.7 else (0, 0, 0))
        outline = float(rng.choice([0.0, 0.0, rng.uniform(0.015, 0.07)]))
        outline_rgb = (0, 0, 0) if rng.random() < 0.5 else None
        shade = float(rng.uniform(0.0, 0.45))
        highlight = float(rng.choice([0.0, rng.uniform(0.2, 0.6)]))
    background = None if rng.random() < 0.6 else _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.85, 1.0))
    mouth_y, mouth_width = float(rng.uniform(0.28, 0.48)), float(rng.uniform(0.45, 1.15))
    mouth_depth = float(rng.uniform(0.10, 0.45))
    eye_spacing, eye_height = float(rng.uniform(0.25, 0.45)), float(rng.uniform(0.08, 0.32))
    eye_size = float(rng.uniform(0.08, 0.19))
    # Every stroke stays on the face (real art never draws a brow off it):
    # shrink the eyes until a raised brow's far end, and the mouth until its
    # bounding box, lie within 0.85 of the radius.
    while math.hypot(eye_spacing + 1.3 * eye_size, eye_height + 3.3 * eye_size + 0.08) > 0.85:
        eye_size *= 0.95
    while math.hypot(0.5 * mouth_width, mouth_y + 0.9 * mouth_depth) > 0.85:
        mouth_width, mouth_depth = 0.95 * mouth_width, 0.95 * mouth_depth
    props = tuple(p for p, chance in zip(PROPS, (0.2, 0.2, 0.15, 0.1, 0.08)) if rng.random() < chance)
    radius = rng.uniform(0.36, 0.42) if ("halo" in props or "hearts" in props) else rng.uniform(0.40, 0.49)
    slack = min(0.03, 0.5 - radius - 0.01)
    center = (0.5 + rng.uniform(-slack, slack), 0.5 + rng.uniform(0.0 if "halo" in props else -slack, slack))
    style = FaceStyle(
        background=background,
        radius=radius,
        center=center,
        rotation=float(rng.uniform(-8, 8)),
        face_rgb=face_rgb,
        shade=shade,
        outline=outline,
        eye_style=str(rng.choice(["dot", "oval", "highlight", "closed", "whites", "heart"],
                                 p=[0.2, 0.2, 0.15, 0.2, 0.17, 0.08])),
        eye_spacing=eye_spacing,
        eye_height=eye_height,
        eye_size=eye_size,
        brows=bool(rng.random() < 0.5),
        mouth_style=str(rng.choice(["line", "open", "teeth"], p=[0.45, 0.3, 0.25])),
        mouth_width=mouth_width,
        mouth_depth=mouth_depth,
        mouth_y=mouth_y,
        stroke=float(rng.uniform(0.05, 0.14)),
        feature_rgb=feature_rgb,
        accent=False,
        accent_side=int(rng.choice([-1, 1])),
        outline_rgb=outline_rgb,
        highlight=highlight,
        shadow=bool(not line_art and rng.random() < 0.25),
        brow_width=float(rng.choice([0.0, rng.uniform(0.06, 0.13)])),
        props=props,
        prop_rgb=(0, 0, 0) if line_art else None,
        mouth_fill=None if line_art or rng.random() < 0.5 else _hsv(rng.uniform(0.95, 1.0), 0.7, 0.45),
        pixels=int(rng.choice([0, 0, 0, rng.integers(48, 80)])),
    )
    # OpenMoji draws its faces at about two thirds of the canvas, smaller than
    # any face above: a share of the pairs is drawn that
    # small. Drawn last, so the other draws stay as they were (README, "Which default").
    if rng.random() < SMALL_FACE_SHARE:
        style = dataclasses.replace(style, radius=float(rng.uniform(0.28, 0.36)))
    return style


def render_face(style: FaceStyle, expression: str) -> Image.Image:
    """Renders one face with one of EXPRESSIONS. Returns RGB or RGBA.

    happy and sad share every stroke's shape and differ in its direction;
    surprised raises the brows and opens an O; angry pulls the brows down to
    the nose and presses the mouth flat (teeth bared when open)."""
    if expression not in EXPRESSIONS:
        raise ValueError(f"expression must be one of {EXPRESSIONS}, got {expression!r}")
    if expression in ("surprised", "angry"):
        return _render_other(style, expression)
    happy = expression == "happy"
    face, draw, r, cx, cy, feature, stroke = _blank_face(style)

    # Eyes: shared style; only closed eyes carry expression (arc direction).
    for side in (-1, 1):
        ex, ey = cx + side * style.eye_spacing * r, cy - style.eye_height * r
        er = style.eye_size * r
        if style.eye_style == "closed":
            bend = 0.6 * er if happy else -0.6 * er  # happy: ^ ^, sad: v v
            _curve(draw, ex, ey, 2.2 * er, bend, stroke, feature, upward=True)
        elif style.eye_style in ("whites", "heart"):
            _eye(draw, style.eye_style, ex, ey, er, feature, stroke)
        else:
            rx, ry = (er, er) if style.eye_style == "dot" else (0.75 * er, 1.35 * er)
            draw.ellipse([ex - rx, ey - ry, ex + rx, ey + ry], fill=feature)
            if style.eye_style == "highlight":
                hr = 0.35 * rx
                draw.ellipse([ex - 0.2 * rx - hr, ey - 0.45 * ry - hr, ex - 0.2 * rx + hr,
                              ey - 0.45 * ry + hr], fill=(255, 255, 255, 255))
        if style.brows:
            # Happy brows arch evenly; sad brows rise towards the nose (worried).
            bx, by = ex, ey - 2.4 * er - 0.08 * r
            half = 1.3 * er
            tilt = 0.0 if happy else 0.9 * er
            inner, outer = (bx - side * half, by - tilt), (bx + side * half, by + 0.3 * tilt)
            draw.line([inner, outer], fill=feature, width=_brow_width(style, r, stroke))

    # Mouth: the main carrier of the expression.
    mw, md = style.mouth_width * r, style.mouth_depth * r
    my = cy + style.mouth_y * r
    bend = md if happy else -md  # happy: ends up (U); sad: ends down (n)
    if style.mouth_style == "line":
        _curve(draw, cx, my, mw, bend, stroke, feature, upward=False)
    elif happy:  # a wide grin
        _open_mouth(face, cx, my, mw, 1.4 * bend, _mouth_fill(style), teeth=style.mouth_style == "teeth")
    else:  # a narrower, taller wail
        _open_mouth(face, cx, my, 0.8 * mw, 1.8 * bend, _mouth_fill(style), teeth=style.mouth_style == "teeth")
    if style.mouth_fill is not None and style.mouth_style != "line":  # the lips' outline
        _outline_mouth(draw, cx, my, mw if happy else 0.8 * mw, (1.4 if happy else 1.8) * bend, feature, stroke)

    if style.accent:
        ax = cx + style.accent_side * (style.eye_spacing + 0.12) * r
        ay = cy - style.eye_height * r + 0.30 * r
        if happy:  # blush on the cheek
            draw.ellipse([ax - 0.16 * r, ay - 0.07 * r, ax + 0.16 * r, ay + 0.07 * r], fill=(246, 120, 110, 150))
        else:  # a tear drop below the eye
            tr = 0.08 * r
            draw.ellipse([ax - tr, ay, ax + tr, ay + 2 * tr], fill=(80, 160, 235, 255))
            draw.polygon([(ax - tr * 0.95, ay + tr * 0.8), (ax + tr * 0.95, ay + tr * 0.8), (ax, ay - 1.4 * tr)],
                         fill=(80, 160, 235, 255))
    _props(draw, style, r, cx, cy)
    return _finish(face, style, cx, cy)


FAMILIES = {"classic": sample_style, "wide": sample_wide_style}


def generate(out_dir: Path | str = DEFAULT_DIR, count: int = DEFAULT_COUNT,
             seed: int = DEFAULT_SEED, classes=CLASS_NAMES, family: str = "classic") -> dict[str, list[Path]]:
    """Writes `count` faces (an equal share per class) as PNGs into out_dir/<class>/.
    family: "classic" (the seed's faces, data/emoji_faces) or "wide" (every style).

    The folder is written to a sibling temporary folder and renamed into place,
    so an interrupted run never leaves a half data set. Returns the paths written.
    """
    classes = tuple(classes)
    unknown = [c for c in classes if c not in EXPRESSIONS]
    if len(set(classes)) < 2 or unknown:
        raise ValueError(f"--classes needs two or more of {', '.join(EXPRESSIONS)} (got {', '.join(classes)})")
    if count < len(classes) or count % len(classes):
        raise ValueError(f"--count must be a multiple of the {len(classes)} classes (got {count}): faces "
                         "are made in sets, one face per class sharing everything but the expression")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, got {family!r}")
    styles = [FAMILIES[family](rng) for _ in range(count // len(classes))]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    written: dict[str, list[Path]] = {name: [] for name in classes}
    jobs = []
    for name in classes:
        (staging / name).mkdir()
        for i, style in enumerate(styles):
            file_name = f"{name}_{i:03d}.png"
            jobs.append((style, name, str(staging / name / file_name)))
            written[name].append(out_dir / name / file_name)
    if len(jobs) >= _PARALLEL_FROM:  # each face is independent: use every core
        with multiprocessing.get_context("spawn").Pool() as pool:
            pool.starmap(_render_to_file, jobs, chunksize=16)
    else:
        for job in jobs:
            _render_to_file(*job)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(staging, out_dir)
    return written


def _render_to_file(style: FaceStyle, expression: str, path: str) -> None:
    render_face(style, expression).save(path, format="PNG")


def _blank_face(style: FaceStyle):
    """The shaded face disc on a transparent supersampled canvas, ready for features:
    (image, its ImageDraw, radius, centre x, centre y, feature colour, stroke width)."""
    size = IMAGE_SIZE * SUPERSAMPLE
    r = style.radius * size
    cx, cy = style.center[0] * size, style.center[1] * size
    face = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    if style.shadow:
        shadow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        ImageDraw.Draw(shadow).ellipse([cx - r, cy - 0.9 * r, cx + r, cy + 1.08 * r], fill=(0, 0, 0, 70))
        face.alpha_composite(shadow.filter(ImageFilter.GaussianBlur(0.06 * r)))
    _draw_shaded_disc(face, cx, cy, r, style.face_rgb, style.shade, style.outline, style.outline_rgb)
    if style.highlight > 0:
        glow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        ImageDraw.Draw(glow).ellipse([cx - 0.6 * r, cy - 0.85 * r, cx + 0.1 * r, cy - 0.35 * r],
                                     fill=(255, 255, 255, int(255 * style.highlight)))
        face.alpha_composite(glow.filter(ImageFilter.GaussianBlur(0.12 * r)))
    return face, ImageDraw.Draw(face), r, cx, cy, style.feature_rgb + (255,), max(2, int(style.stroke * r))


def _finish(face: Image.Image, style: FaceStyle, cx: float, cy: float) -> Image.Image:
    """Rotates, puts the background under, and downsamples to the output size."""
    size = face.size[0]
    face = face.rotate(style.rotation, resample=Image.BICUBIC, center=(cx, cy))
    if style.background is None:
        canvas = face
    else:
        canvas = Image.new("RGBA", (size, size), style.background + (255,))
        canvas.alpha_composite(face)
    small = canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)
    if style.pixels:  # low-resolution art, scaled up as ingestion does
        small = small.resize((style.pixels, style.pixels), Image.LANCZOS).resize((IMAGE_SIZE, IMAGE_SIZE),
                                                                                  Image.BILINEAR)
    return small if style.background is None else small.convert("RGB")


def _render_other(style: FaceStyle, expression: str) -> Image.Image:
    """surprised / angry: the same face, eyes and canvas as render_face; brows
    always drawn (they carry these expressions), no blush or tear."""
    surprised = expression == "surprised"
    face, draw, r, cx, cy, feature, stroke = _blank_face(style)
    for side in (-1, 1):
        ex, ey = cx + side * style.eye_spacing * r, cy - style.eye_height * r
        er = style.eye_size * r
        if style.eye_style == "closed":  # surprise opens them wide; anger squints flat
            if surprised:
                draw.ellipse([ex - er, ey - er, ex + er, ey + er], fill=feature)
            else:
                _curve(draw, ex, ey, 2.2 * er, 0.0, stroke, feature, upward=True)
        elif style.eye_style in ("whites", "heart"):
            _eye(draw, style.eye_style, ex, ey, er, feature, stroke)
        else:
            rx, ry = (er, er) if style.eye_style == "dot" else (0.75 * er, 1.35 * er)
            draw.ellipse([ex - rx, ey - ry, ex + rx, ey + ry], fill=feature)
        half = 1.3 * er
        if surprised:  # high, arched brows
            bx, by = ex, ey - 2.9 * er - 0.14 * r
            _curve(draw, bx, by, 2 * half, 0.45 * er, max(2, stroke * 3 // 4), feature, upward=True)
        else:  # brows pulled down towards the nose: a V
            bx, by = ex, ey - 2.0 * er - 0.06 * r
            tilt = 0.9 * er
            inner, outer = (bx - side * half, by + tilt), (bx + side * half, by - 0.5 * tilt)
            draw.line([inner, outer], fill=feature, width=max(2, stroke))
    mw, md = style.mouth_width * r, style.mouth_depth * r
    my = cy + style.mouth_y * r
    if surprised:  # an O
        ow, oh = 0.22 * mw, 0.55 * md
        draw.ellipse([cx - ow, my - oh, cx + ow, my + oh], fill=feature)
    elif style.mouth_style == "line":  # pressed lips, a shallow frown
        _curve(draw, cx, my, 0.8 * mw, -0.3 * md, stroke, feature, upward=False)
    else:  # bared, gritted teeth
        _open_mouth(face, cx, my, 0.85 * mw, -0.7 * md, _mouth_fill(style), teeth=True)
    _props(draw, style, r, cx, cy)
    return _finish(face, style, cx, cy)


def _brow_width(style: FaceStyle, r: float, stroke: int) -> int:
    return max(2, int(style.brow_width * r)) if style.brow_width else max(2, stroke * 3 // 4)


def _mouth_fill(style: FaceStyle):
    return style.feature_rgb + (255,) if style.mouth_fill is None else style.mouth_fill + (255,)


def _outline_mouth(draw, cx, cy, width, bend, feature, stroke) -> None:
    """The outline of an open mouth drawn by _open_mouth (chord and curve)."""
    half, chord_y = width / 2, cy - bend / 2
    ts = np.linspace(-1.0, 1.0, 64)
    curve = [(cx + t * half, chord_y + bend * math.sqrt(1 - t * t)) for t in ts]
    draw.line(curve + [curve[0]], fill=feature, width=max(2, stroke // 2), joint="curve")


def _eye(draw, kind: str, ex: float, ey: float, er: float, feature, stroke: int) -> None:
    """Expression-neutral eyes of the wide family: whites with a pupil, or hearts."""
    if kind == "whites":
        rx, ry = 0.85 * er, 1.2 * er
        draw.ellipse([ex - rx, ey - ry, ex + rx, ey + ry], fill=(255, 255, 255, 255), outline=feature,
                     width=max(2, stroke // 3))
        pr = 0.55 * er
        draw.ellipse([ex - pr, ey - pr + 0.3 * er, ex + pr, ey + pr + 0.3 * er], fill=feature)
    else:
        _heart(draw, ex, ey, 2.4 * er, (230, 40, 60, 255) if feature[:3] != (0, 0, 0) else feature)


def _heart(draw, x: float, y: float, size: float, fill) -> None:
    h = size / 2
    draw.ellipse([x - h, y - 0.75 * h, x, y + 0.15 * h], fill=fill)
    draw.ellipse([x, y - 0.75 * h, x + h, y + 0.15 * h], fill=fill)
    draw.polygon([(x - 0.97 * h, y - 0.15 * h), (x + 0.97 * h, y - 0.15 * h), (x, y + h)], fill=fill)


def _drop(draw, x: float, y: float, size: float, fill) -> None:
    """A drop with its tip up (a tear, a sweat drop)."""
    draw.ellipse([x - size, y, x + size, y + 2 * size], fill=fill)
    draw.polygon([(x - size * 0.95, y + size * 0.8), (x + size * 0.95, y + size * 0.8), (x, y - 1.4 * size)], fill=fill)


def _props(draw, style: FaceStyle, r: float, cx: float, cy: float) -> None:
    """The wide family's props: the same on every face of a pair."""
    side = style.accent_side

    def colour(natural):
        return (style.prop_rgb or natural) + (255,)

    for prop in style.props:
        if prop == "blush":
            for s in (-1, 1):
                ax, ay = cx + s * (style.eye_spacing + 0.12) * r, cy + 0.12 * r
                draw.ellipse([ax - 0.15 * r, ay - 0.06 * r, ax + 0.15 * r, ay + 0.06 * r],
                             fill=(246, 120, 110, 140) if style.prop_rgb is None else None,
                             outline=None if style.prop_rgb is None else colour((0, 0, 0)))
        elif prop == "tear":
            _drop(draw, cx + side * (style.eye_spacing + 0.05) * r, cy - style.eye_height * r + 0.2 * r,
                  0.08 * r, colour((80, 160, 235)))
        elif prop == "sweat":
            _drop(draw, cx - side * 0.62 * r, cy - 0.62 * r, 0.1 * r, colour((90, 170, 240)))
        elif prop == "hearts":
            for dx, dy, size in ((1.05, -0.75, 0.32), (-1.1, 0.35, 0.26), (0.95, 0.8, 0.22)):
                _heart(draw, cx + side * dx * r, cy + dy * r, size * r, colour((235, 50, 70)))
        elif prop == "halo":
            hw, hy = 0.7 * r, cy - 1.12 * r
            draw.ellipse([cx - hw, hy - 0.14 * r, cx + hw, hy + 0.14 * r], outline=colour((90, 170, 240)),
                         width=max(2, int(0.07 * r)))


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return (round(r * 255), round(g * 255), round(b * 255))


def _draw_shaded_disc(img: Image.Image, cx: float, cy: float, r: float,
                      rgb: tuple[int, int, int], shade: float, outline: float,
                      outline_rgb: tuple[int, int, int] | None = None) -> None:
    """A disc lit from the upper left: brightness falls off towards the rim."""
    size = img.size[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    lx, ly = cx - 0.3 * r, cy - 0.35 * r
    dist = np.sqrt((xx - lx) ** 2 + (yy - ly) ** 2) / (1.6 * r)
    light = 1.0 - shade * np.clip(dist, 0, 1) ** 1.5
    rgb_arr = np.clip(np.array(rgb, np.float32)[None, None, :] * light[..., None], 0, 255)
    if outline > 0:
        rim = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) > r * (1 - outline)
        if outline_rgb is None:
            rgb_arr[rim] *= 0.72
        else:
            rgb_arr[rim] = outline_rgb
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    disc = Image.fromarray(rgb_arr.astype(np.uint8), "RGB").convert("RGBA")
    disc.putalpha(mask)
    img.alpha_composite(disc)


def _parabola(cx: float, y0: float, width: float, bend: float, n: int = 40):
    """Points of a parabola centred on (cx, y0). Image y grows downwards, so
    bend > 0 puts the ends above the middle (a smile), bend < 0 a frown."""
    half = width / 2
    return [(cx + t * half, y0 - bend * (t * t) + bend / 2)
            for t in np.linspace(-1.0, 1.0, n)]


def _curve(draw: ImageDraw.ImageDraw, cx: float, cy: float, width: float, bend: float,
           stroke: int, fill, upward: bool) -> None:
    """A stroked parabola with round caps. For eyes (`upward`) the arc is flipped,
    so a positive bend draws ^ rather than a smile."""
    pts = _parabola(cx, cy, width, -bend if upward else bend)
    draw.line(pts, fill=fill, width=stroke, joint="curve")
    for x, y in (pts[0], pts[-1]):
        draw.ellipse([x - stroke / 2, y - stroke / 2, x + stroke / 2, y + stroke / 2], fill=fill)


def _open_mouth(img: Image.Image, cx: float, cy: float, width: float, bend: float,
                fill, teeth: bool) -> None:
    """An open mouth between a straight chord and a curve (a 'D' on its side).

    Happy (bend > 0): flat top, round bottom. Sad: flat bottom, round top.
    Teeth sit along the chord, a tongue in the round part."""
    size = img.size[0]
    half = width / 2
    ts = np.linspace(-1.0, 1.0, 64)
    chord_y = cy - bend / 2  # centres the mouth on cy whichever way it opens
    curve = [(cx + t * half, chord_y + bend * math.sqrt(1 - t * t)) for t in ts]
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon(curve, fill=255)
    mask = mask.filter(ImageFilter.MaxFilter(3))
    inside = Image.new("RGBA", (size, size), fill)
    layer = ImageDraw.Draw(inside)
    direction = 1 if bend > 0 else -1
    tongue_y = chord_y + 0.85 * bend
    layer.ellipse([cx - 0.32 * width, tongue_y - 0.35 * abs(bend), cx + 0.32 * width,
                   tongue_y + 0.35 * abs(bend)], fill=(214, 84, 96, 255))
    if teeth:
        band = 0.32 * abs(bend)
        y0, y1 = sorted((chord_y, chord_y + direction * band))
        layer.rectangle([cx - half, y0, cx + half, y1], fill=(255, 255, 255, 255))
    img.paste(inside, (0, 0), mask)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--family", choices=sorted(FAMILIES), default="classic")
    args = parser.parse_args()
    paths = generate(args.out, args.count, args.seed, family=args.family)
    print(f"wrote {sum(map(len, paths.values()))} faces to {args.out}")
