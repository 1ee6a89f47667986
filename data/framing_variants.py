"""Deterministic framing variants of an emoji image: the ways people send one.

The default model reads clean, centred 150 px art; people send screenshots with
margins, 32 px chat emoji, JPEGs, faces on dark chat backgrounds. Each kind in
KINDS turns one image into the encoded bytes (PNG, or JPEG for the JPEG kinds)
of one such variant, the same bytes for the same seed:

- offcentre-white / -dark / -colour: the face (its non-background box) scaled
  to 25-60% of a 200-600 px square canvas, somewhere fully inside it, on white,
  dark mode (#1e1f22) or a random light or mid solid colour;
- small: the whole image at 20-48 px square, on white;
- jpeg: at its size on white, JPEG quality 20-60;
- dark: at its size on dark mode;
- rotated: on white, rotated by -15..15 degrees (same size, corners white);
- mixed: off-centre on a random one of those backgrounds, rotated, JPEG 20-60.

Transparent art is composited onto the background by its alpha, as a chat app
would. Art without alpha (the real-emoji pack: RGB on white) has its white
surround, the near-white pixels connected to the border (and the face's outermost,
anti-aliased pixel), made transparent first, so a dark canvas shows the face and
not a white square.

PIL and numpy only. `build` writes a folder of variants (reproducible byte for
byte for a seed and Pillow version); `python -m happysad.data.framing_variants
SRC OUT [--seed N] [--kinds ...]` does the same.
"""
from __future__ import annotations

import argparse
import colorsys
import io
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ("offcentre-white", "offcentre-dark", "offcentre-colour", "small", "jpeg", "dark", "rotated", "mixed")
JPEG_KINDS = ("jpeg", "mixed")
WHITE = (255, 255, 255)
DARK = (0x1E, 0x1F, 0x22)  # a chat app's dark mode
CANVAS = (200, 600)  # off-centre canvas side, px
FACE_SHARE = (0.25, 0.60)  # the face's longer side, as a share of the canvas side
SMALL = (20, 48)  # px
JPEG_QUALITY = (20, 60)
MAX_ROTATION = 15.0  # degrees, either way
_NEAR_WHITE = 245  # every channel at least this: background of art without alpha


def extension(kind: str) -> str:
    """The file extension of `kind`'s encoding: "jpg" or "png"."""
    return "jpg" if kind in JPEG_KINDS else "png"


def cutout(image: Image.Image) -> Image.Image:
    """RGBA: the image's own alpha; or, for art without alpha, its near-white surround
    (connected to the border) made transparent, and the face's outermost pixel with it
    (anti-aliased against white, it would leave a light ring on a dark canvas)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        return image.convert("RGBA")
    rgba = image.convert("RGBA")
    white = np.asarray(rgba)[..., :3].min(axis=2) >= _NEAR_WHITE
    mask = Image.fromarray(np.where(white, 255, 0).astype(np.uint8)).copy()  # copy: fromarray's is read-only
    for corner in ((0, 0), (mask.width - 1, 0), (0, mask.height - 1), (mask.width - 1, mask.height - 1)):
        if mask.getpixel(corner) == 255:
            ImageDraw.floodfill(mask, corner, 128, thresh=0)
    alpha = Image.fromarray(np.where(np.asarray(mask) == 128, 0, 255).astype(np.uint8))
    rgba.putalpha(alpha.filter(ImageFilter.MinFilter(3)))
    return rgba


def variant(image: Image.Image, kind: str, rng: random.Random | int | str) -> bytes:
    """The encoded bytes of one `kind` (of KINDS) of `image` (PIL, any mode); `rng` a random.Random or its seed."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    face = cutout(image)
    if kind == "small":
        side = rng.randint(*SMALL)
        return _encode(_onto(face.resize((side, side), Image.LANCZOS), WHITE), "png")
    if kind == "jpeg":
        return _encode(_onto(face, WHITE), "jpeg", rng.randint(*JPEG_QUALITY))
    if kind == "dark":
        return _encode(_onto(face, DARK), "png")
    if kind == "rotated":
        return _encode(_onto(face, WHITE).rotate(rng.uniform(-MAX_ROTATION, MAX_ROTATION),
                                                 resample=Image.BICUBIC, expand=False, fillcolor=WHITE), "png")
    background = {"offcentre-white": WHITE, "offcentre-dark": DARK, "offcentre-colour": None}.get(kind)
    if kind == "mixed":
        background = rng.choice([WHITE, DARK, None])
    if background is None:
        background = random_colour(rng)
    framed = offcentre(face, background, rng)
    if kind != "mixed":
        return _encode(framed, "png")
    rotated = framed.rotate(rng.uniform(-MAX_ROTATION, MAX_ROTATION), resample=Image.BICUBIC, fillcolor=background)
    return _encode(rotated, "jpeg", rng.randint(*JPEG_QUALITY))


def variants(image: Image.Image, seed: int | str, kinds=KINDS) -> dict[str, bytes]:
    """{kind: encoded bytes} for each of `kinds`, each from its own random.Random(f"{seed}:{kind}")."""
    return {kind: variant(image, kind, random.Random(f"{seed}:{kind}")) for kind in kinds}


def offcentre(face: Image.Image, background: tuple, rng: random.Random) -> Image.Image:
    """RGB: `face` (RGBA) cropped to its visible box, its longer side scaled to 25-60% of a
    200-600 px square canvas of `background`, pasted at a random place fully inside it."""
    face = face.crop(face.getchannel("A").getbbox() or (0, 0, face.width, face.height))
    side = rng.randint(*CANVAS)
    scale = rng.uniform(*FACE_SHARE) * side / max(face.size)
    face = face.resize((max(1, round(face.width * scale)), max(1, round(face.height * scale))), Image.LANCZOS)
    canvas = Image.new("RGB", (side, side), background)
    position = (rng.randint(0, side - face.width), rng.randint(0, side - face.height))
    canvas.paste(face, position, face)
    return canvas


def random_colour(rng: random.Random) -> tuple[int, int, int]:
    """A light or mid solid colour: any hue, saturation up to 0.6, value 0.55-1."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.6), rng.uniform(0.55, 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def build(source_dir: Path | str, out_dir: Path | str, kinds=KINDS, seed: int = 0, classes=None) -> int:
    """Writes out_dir/<class>/<stem>-<kind>.png|jpg for every source_dir/<class>/*.png (of `classes`
    only, if given) and kind; each image's seed is f"{seed}:{class}/{stem}", so a file does not
    depend on the others. Returns the number of files written."""
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    count = 0
    for path in sorted(source_dir.glob("*/*.png")):
        if classes is not None and path.parent.name not in classes:
            continue
        target = out_dir / path.parent.name
        target.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            encoded = variants(image, f"{seed}:{path.parent.name}/{path.stem}", kinds)
        for kind, data in encoded.items():
            (target / f"{path.stem}-{kind}.{extension(kind)}").write_bytes(data)
            count += 1
    return count


HELD_OUT_DIR = Path(__file__).resolve().parent / "emoji_variants"  # the default run's held-out variants
HELD_OUT_SEED = 20261206


def build_held_out(set_dirs, out_dir: Path | str = HELD_OUT_DIR, classes=("happy", "sad"),
                   seed: int = HELD_OUT_SEED) -> int:
    """One variant of every image of the sets: out_dir/<class>/<set>-<stem>-<kind>.png|jpg,
    the kinds taken in turn over the images in order (set, class, name), so each
    kind covers about 1/8 of them. The default run holds this folder out for the
    gate: the held-out vendors' faces as people send them. Returns the count."""
    paths = sorted((Path(d).name, path.parent.name, path) for d in set_dirs for path in Path(d).glob("*/*.png")
                   if path.parent.name in classes)
    out_dir = Path(out_dir)
    for i, (set_name, class_name, path) in enumerate(paths):
        kind = KINDS[i % len(KINDS)]
        with Image.open(path) as image:
            data = variant(image, kind, random.Random(f"{seed}:{set_name}/{class_name}/{path.stem}"))
        target = out_dir / class_name
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{set_name}-{path.stem}-{kind}.{extension(kind)}").write_bytes(data)
    return len(paths)


def _onto(face: Image.Image, background: tuple) -> Image.Image:
    canvas = Image.new("RGB", face.size, background)
    canvas.paste(face, (0, 0), face)
    return canvas


def _encode(image: Image.Image, fmt: str, quality: int = 0) -> bytes:
    """PNG or JPEG bytes with no metadata (no timestamp, no EXIF): the same pixels give the same bytes."""
    out = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(out, format="JPEG", quality=quality)
    else:
        image.save(out, format="PNG")
    return out.getvalue()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Write framing variants of SRC/<class>/*.png into OUT.")
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = parser.parse_args(argv)
    print(f"{build(args.source, args.out, args.kinds, args.seed)} files written to {args.out}")


if __name__ == "__main__":
    main()
