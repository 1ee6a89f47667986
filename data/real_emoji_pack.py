"""Builds data/real_emoji/<set>/<class>/<code point>.png from the vendors' npm packages.

Real emoji art, for measuring how the model transfers to styles it did not
train on. Only sets whose licences allow redistribution are used (Apple's and
Facebook's art is not, and never appears here, not even for training):

  set                   npm package                    licence       art
  noto                  emoji-datasource-google 16.0.0 Apache-2.0    64 px PNG
  twemoji               emoji-datasource-twitter 16.0.0 CC-BY 4.0    64 px PNG
  openmoji              openmoji 17.0.0                CC-BY-SA 4.0  SVG
  fluent-flat           fluentui-emoji 1.3.0           MIT           SVG
  fluent-modern         fluentui-emoji 1.3.0           MIT           SVG
  fluent-high-contrast  fluentui-emoji 1.3.0           MIT           SVG
  fluent-3d             @lobehub/fluent-emoji-3d 1.1.0 MIT           256 px WebP (3D renders)
  emojione              emojione 2.2.7                 CC-BY 4.0     SVG (EmojiOne 2, before its
                                                                     licence changed in 3.0)

Every image is composited onto white at 150x150 RGB, as ingestion would do.
The images and ATTRIBUTION.md are committed; this script rebuilds them:

    .venv/bin/python -m happysad.data.real_emoji_pack          # npm pack into a temp dir, then render
"""
from __future__ import annotations

import argparse
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

from PIL import Image

from happysad import contract

PACK_DIR = Path(__file__).resolve().parent / "real_emoji"
SIZE = contract.IMAGE_SIZE
BACKGROUND = contract.BACKGROUND

# (code point, CLDR short name as Fluent names its files) per class. Happy and
# sad are the 14 + 14 faces the issue measured; surprised and angry are for the
# multi-class path.
FACES = {
    "happy": [("1f600", "grinning-face"), ("1f603", "grinning-face-with-big-eyes"),
              ("1f604", "grinning-face-with-smiling-eyes"), ("1f601", "beaming-face-with-smiling-eyes"),
              ("1f606", "grinning-squinting-face"), ("1f60a", "smiling-face-with-smiling-eyes"),
              ("1f642", "slightly-smiling-face"), ("263a", "smiling-face"),
              ("1f60d", "smiling-face-with-heart-eyes"), ("1f929", "star-struck"),
              ("1f970", "smiling-face-with-hearts"), ("1f60b", "face-savoring-food"),
              ("1f607", "smiling-face-with-halo"), ("1f605", "grinning-face-with-sweat")],
    "sad": [("1f61e", "disappointed-face"), ("1f614", "pensive-face"), ("1f61f", "worried-face"),
            ("1f641", "slightly-frowning-face"), ("2639", "frowning-face"), ("1f622", "crying-face"),
            ("1f62d", "loudly-crying-face"), ("1f625", "sad-but-relieved-face"), ("1f629", "weary-face"),
            ("1f62b", "tired-face"), ("1f626", "frowning-face-with-open-mouth"),
            ("1f613", "downcast-face-with-sweat"), ("1f97a", "pleading-face"), ("1f616", "confounded-face")],
    "surprised": [("1f62e", "face-with-open-mouth"), ("1f62f", "hushed-face"), ("1f632", "astonished-face"),
                  ("1f631", "face-screaming-in-fear"), ("1f633", "flushed-face")],
    "angry": [("1f620", "angry-face"), ("1f621", "pouting-face"), ("1f92c", "face-with-symbols-on-mouth"),
              ("1f624", "face-with-steam-from-nose"), ("1f47f", "angry-face-with-horns")],
}

PACKAGES = {
    "emoji-datasource-google": "16.0.0",
    "emoji-datasource-twitter": "16.0.0",
    "openmoji": "17.0.0",
    "fluentui-emoji": "1.3.0",
    "@lobehub/fluent-emoji-3d": "1.1.0",
    "emojione": "2.2.7",
}

# Faces a set's package does not have: EmojiOne 2.2.7 predates Unicode 10 (2017).
MISSING = {"emojione": {"1f929", "1f970", "1f97a", "1f92c"}}

# set -> (package, licence, where the art comes from, a face's file in the package tarball:
# {code} is the lower-case code point, {CODE} upper-case, {name} the CLDR short name)
SETS = {
    "noto": ("emoji-datasource-google", "Apache-2.0", "Google Noto Color Emoji via emoji-datasource-google",
             "package/img/google/64/{code}.png"),
    "twemoji": ("emoji-datasource-twitter", "CC-BY 4.0", "Twitter Twemoji via emoji-datasource-twitter",
                "package/img/twitter/64/{code}.png"),
    "openmoji": ("openmoji", "CC-BY-SA 4.0", "OpenMoji (openmoji.org)", "package/color/svg/{CODE}.svg"),
    "fluent-flat": ("fluentui-emoji", "MIT", "Microsoft Fluent Emoji (flat) via fluentui-emoji",
                    "package/icons/flat/{name}.svg"),
    "fluent-modern": ("fluentui-emoji", "MIT", "Microsoft Fluent Emoji (modern) via fluentui-emoji",
                      "package/icons/modern/{name}.svg"),
    "fluent-high-contrast": ("fluentui-emoji", "MIT", "Microsoft Fluent Emoji (high contrast) via fluentui-emoji",
                             "package/icons/high-contrast/{name}.svg"),
    "fluent-3d": ("@lobehub/fluent-emoji-3d", "MIT", "Microsoft Fluent Emoji (3D) via @lobehub/fluent-emoji-3d",
                  "package/assets/{code}.webp"),
    "emojione": ("emojione", "CC-BY 4.0", "EmojiOne 2 (emojione.com) via emojione", "package/assets/svg/{code}.svg"),
}


def vendor(set_name: str) -> str:
    """The vendor behind a set: Fluent's three sets are one vendor's drawings in three styles, so
    a model judged on one of them must not have trained on another."""
    return set_name.split("-")[0]


def fetch_packages(into: Path) -> dict:
    """`npm pack` each package (the npm registry only); returns {package: tarball path}."""
    into.mkdir(parents=True, exist_ok=True)
    tarballs = {}
    for package, version in PACKAGES.items():
        # npm names a scoped package's tarball without the @ and with - for /.
        tarball = into / f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
        if not tarball.exists():
            subprocess.run(["npm", "pack", f"{package}@{version}", "--silent"], cwd=into, check=True,
                           stdout=subprocess.DEVNULL)
        tarballs[package] = tarball
    return tarballs


def render(data: bytes, is_svg: bool) -> Image.Image:
    """Art bytes -> 150x150 RGB on white."""
    if is_svg:
        import cairosvg

        data = cairosvg.svg2png(bytestring=data, output_width=SIZE, output_height=SIZE)
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.LANCZOS)
    canvas = Image.new("RGBA", image.size, BACKGROUND + (255,))
    canvas.alpha_composite(image)
    return canvas.convert("RGB")


def build(tarballs: dict, out: Path = PACK_DIR) -> dict:
    """Writes every set's faces and ATTRIBUTION.md under `out`; returns {set: {class: count}}."""
    counts, rows = {}, []
    opened = {package: tarfile.open(path) for package, path in tarballs.items()}
    for set_name, (package, licence, source, template) in SETS.items():
        members = set(opened[package].getnames())
        counts[set_name] = {}
        for class_name, faces in FACES.items():
            folder = out / set_name / class_name
            folder.mkdir(parents=True, exist_ok=True)
            for code, name in faces:
                # emoji-datasource names text-default code points with their emoji selector: 263a-fe0f.
                candidates = (template.format(code=c, CODE=c.upper(), name=name) for c in (code, f"{code}-fe0f"))
                member = next((m for m in candidates if m in members), None)
                if member is None:
                    if code not in MISSING.get(set_name, ()):
                        raise FileNotFoundError(f"{package} {PACKAGES[package]} has no {template} for U+{code.upper()}")
                    continue
                data = opened[package].extractfile(member).read()
                render(data, member.endswith(".svg")).save(folder / f"{code}.png", optimize=True)
                counts[set_name][class_name] = counts[set_name].get(class_name, 0) + 1
                rows.append(f"| {set_name}/{class_name}/{code}.png | U+{code.upper()} {name} | {source}, "
                            f"{package} {PACKAGES[package]}: `{member}` | {licence} |")
    (out / "ATTRIBUTION.md").write_text(
        "# Real emoji art: sources and licences\n\n"
        "Built by `python -m happysad.data.real_emoji_pack` from the npm packages named below, each image\n"
        "composited onto white at 150x150. Apple's and Facebook's art is not redistributable and is not\n"
        "used. CC-BY 4.0 (Twemoji): Copyright 2020 Twitter, Inc and other contributors, graphics\n"
        "licensed under CC-BY 4.0. CC-BY 4.0 (EmojiOne 2): Emoji artwork provided by EmojiOne\n"
        "(emojione.com), licensed under CC-BY 4.0. CC-BY-SA 4.0 (OpenMoji): OpenMoji - the open-source\n"
        "emoji and icon project, License: CC BY-SA 4.0; these renders are shared under the same licence.\n"
        "Apache-2.0 (Noto) and MIT (Fluent): see the packages' LICENSE files.\n\n"
        "| file | code point | source | licence |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--npm-dir", type=Path, default=None, help="where to keep the npm tarballs")
    parser.add_argument("--out", type=Path, default=PACK_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        counts = build(fetch_packages(args.npm_dir or Path(tmp)), args.out)
    for set_name, per_class in counts.items():
        print(f"{set_name:<22} " + ", ".join(f"{n} {c}" for c, n in per_class.items()))


if __name__ == "__main__":
    main()
