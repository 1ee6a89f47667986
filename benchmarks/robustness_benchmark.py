"""How the model reads faces framed as people send them: `make bench-robustness`.

A script that prints figures (not a test). The models train as the default run
does (the generated training faces plus every real-emoji set but the held-out
noto and emojione, with the Trainer's recipe: transfer_benchmark.train_and_score).
They are scored on faces none of them trained on, clean and in every framing
variant of data/framing_variants.py (off-centre on white, dark and colour
canvases, small, JPEG, dark mode, rotated, mixed), built with fixed seeds:

- noto and emojione: the held-out real art (configs.HELD_OUT_SOURCES);
- generated: 40 new faces per class from the generator, 20 classic and 20 wide
  pairs, with seeds no committed face uses.

Every image goes through the model's decoder (image_decoding.decode_image) from
its encoded bytes (PNG, or JPEG for the JPEG variants), so the figures measure
whatever the decoder does when the benchmark runs. One table: rows the variant
kinds, columns set x model, cells the median accuracy over seeds (per seed in
brackets).

    .venv/bin/python benchmarks/robustness_benchmark.py [--arch NAME]... [--seeds 3]
        [--json OUT] [--markdown [RESULTS.md]]

--markdown writes the table into benchmarks/RESULTS.md between the marker lines
below (replacing that section, or appending it); `make bench` keeps the section.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from transfer_benchmark import CLASSES, concat, load_folder, train_and_score  # noqa: E402

START = "<!-- robustness: make bench-robustness writes this section -->"
END = "<!-- /robustness -->"
RESULTS = HERE / "RESULTS.md"
VARIANT_SEED = 1  # of framing_variants.build, for every set
# New generated faces: (family, seed, faces per class); the committed faces use 20261129 and 20261130.
UNSEEN_GENERATED = (("classic", 20261206, 20), ("wide", 20261207, 20))
DECODER = "components/trainer/image_decoding.py"


def section(text: str, start_marker: str = START, end_marker: str = END) -> str | None:
    """The marked section of `text` (the robustness one unless other markers are
    given), marker lines included; None if it has none."""
    start = text.find(start_marker)
    end = text.find(end_marker, start)
    return text[start:end + len(end_marker)] if start >= 0 and end >= 0 else None


def replace_section(text: str, block: str, start_marker: str = START, end_marker: str = END) -> str:
    """`text` with its marked section replaced by `block` (marker lines included), or `block` appended."""
    old = section(text, start_marker, end_marker)
    if old is not None:
        return text.replace(old, block, 1)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def load_encoded(folder: Path, kind: str | None = None):
    """(pixels, labels) of folder/<class>/*-<kind>.png|jpg (kind None: every *.png), each decoded
    from its bytes by the model's decoder, as transfer_benchmark.load_folder does."""
    import numpy as np
    import tensorflow as tf

    from happysad.components.trainer import image_decoding
    from happysad.data import framing_variants

    pattern = "*.png" if kind is None else f"*-{kind}.{framing_variants.extension(kind)}"
    images, labels = [], []
    for label, class_name in enumerate(CLASSES):
        for path in sorted((folder / class_name).glob(pattern)):
            images.append(image_decoding.decode_image(tf.constant(path.read_bytes())).numpy())
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.float32)


def scored_sets(work: Path) -> dict:
    """{set: {"clean" or kind: (pixels, labels)}}: the held-out art and new generated faces,
    clean and in every variant kind, the variants written under `work`."""
    from happysad.data import emoji_faces, framing_variants, real_emoji_pack
    from happysad.pipeline import configs

    sources = {name: [real_emoji_pack.PACK_DIR / name] for name in configs.HELD_OUT_SOURCES}
    sources["generated"] = []
    for family, seed, per_class in UNSEEN_GENERATED:
        folder = work / "generated" / family
        emoji_faces.generate(folder, count=per_class * len(CLASSES), seed=seed, classes=CLASSES, family=family)
        sources["generated"].append(folder)
    sets = {}
    for name, folders in sources.items():
        variant_dirs = []
        for i, folder in enumerate(folders):
            out = work / "variants" / name / str(i)
            framing_variants.build(folder, out, framing_variants.KINDS, VARIANT_SEED, classes=CLASSES)
            variant_dirs.append(out)
        sets[name] = {"clean": concat([load_encoded(f) for f in folders])}
        for kind in framing_variants.KINDS:
            sets[name][kind] = concat([load_encoded(d, kind) for d in variant_dirs])
    return sets


def decoder_version() -> str:
    """The decoder's last commit, and whether the working tree changes it."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)

    commit = git("log", "-1", "--format=%h", "--", DECODER).stdout.strip() or "unknown"
    return commit + (" + uncommitted changes" if git("diff", "--quiet", "HEAD", "--", DECODER).returncode else "")


def cell(scores: list) -> str:
    return f"{statistics.median(scores):.2f} ({', '.join(f'{a:.2f}' for a in scores)})" if scores else "-"


def table(results: dict) -> list[str]:
    """The markdown table and the lines under it, from main's results."""
    columns = [(name, arch) for arch in results["archs"] for name in results["sets"]]
    lines = ["| variant | " + " | ".join(f"{name}, {arch}" for name, arch in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for kind in ["clean", *results["kinds"]]:
        lines.append(f"| {kind} | " + " | ".join(cell(results["scores"][arch][name][kind])
                                               for name, arch in columns) + " |")
    lines.append("")
    for arch in results["archs"]:
        lines.append(f"- {arch}: 0.999 reached at epochs {', '.join(str(e) for e in results['epochs'][arch])} "
                     f"(None: not within 15); {', '.join(f'{s:.0f}' for s in results['seconds'][arch])} s "
                     "to train and score each seed")
    return lines


def markdown(results: dict) -> str:
    sizes = ", ".join(f"{name} {n}" for name, n in results["sets"].items())
    return "\n".join([
        START, "## Robustness to framing (`make bench-robustness`)\n",
        f"Measured on {results['date']}, decoder `{DECODER}` at {results['decoder']}; happy vs sad accuracy, "
        f"median of {len(results['seeds'])} seed(s), per seed in brackets. Trained as the default run "
        f"({results['train_images']} images: the generated faces and the real sets but noto and emojione); "
        f"scored on faces per set: {sizes}, each clean and in each variant of data/framing_variants.py "
        f"(seed {VARIANT_SEED}), decoded from their PNG/JPEG bytes by the model's decoder. "
        f"{results['wall_s']:.0f} s in all.\n",
        *table(results), END])


def main(argv=None) -> None:
    from happysad.components.trainer import models
    from happysad.components.trainer.training_config import TrainingConfig
    from happysad.data import emoji_faces, framing_variants, real_emoji_pack
    from happysad.pipeline import configs

    default = TrainingConfig().architecture
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=list(models.ARCHITECTURES), action="append", default=None,
                        help=f"a Trainer model, repeatable (default: every one, {default}, the default, first)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N per model (default %(default)s)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, nargs="?", const=RESULTS, default=None, metavar="MD",
                        help=f"write the table's section into MD (default {RESULTS.relative_to(REPO)})")
    args = parser.parse_args(argv)
    archs = args.arch or [default] + [a for a in models.ARCHITECTURES if a != default]
    seeds = list(range(1, args.seeds + 1))

    started = time.monotonic()
    decoder = decoder_version()
    train_sets = [p for p in sorted(real_emoji_pack.PACK_DIR.iterdir())
                  if p.is_dir() and p.name not in configs.HELD_OUT_SOURCES]
    train = concat([load_folder(f) for f in [*emoji_faces.TRAINING_DIRS, *train_sets]])
    with tempfile.TemporaryDirectory(prefix="robustness-") as work:
        sets = scored_sets(Path(work))
    tests = {(name, kind): data for name, kinds in sets.items() for kind, data in kinds.items()}
    print(f"train: {len(train[1])} images (generated faces, {', '.join(p.name for p in train_sets)}); test: "
          + ", ".join(f"{name} {len(kinds['clean'][1])} x {len(kinds)}" for name, kinds in sets.items())
          + f"; decoder {decoder}; models {', '.join(archs)}; {time.monotonic() - started:.0f} s to load",
          flush=True)

    scores = {a: {name: {kind: [] for kind in kinds} for name, kinds in sets.items()} for a in archs}
    epochs = {a: [] for a in archs}
    seconds = {a: [] for a in archs}
    for arch in archs:
        for seed in seeds:
            begun = time.monotonic()
            accuracy = train_and_score(train, tests, seed, augment=True, epochs=epochs[arch], arch=arch)
            for (name, kind), value in accuracy.items():
                scores[arch][name][kind].append(value)
            seconds[arch].append(time.monotonic() - begun)
            print(f"  {arch}, seed {seed}: {seconds[arch][-1]:.0f} s", flush=True)

    results = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "decoder": decoder, "archs": archs, "seeds": seeds,
               "kinds": list(framing_variants.KINDS), "variant_seed": VARIANT_SEED,
               "unseen_generated": UNSEEN_GENERATED, "train_images": len(train[1]),
               "sets": {name: len(kinds["clean"][1]) for name, kinds in sets.items()},
               "scores": scores, "epochs": epochs, "seconds": seconds, "wall_s": time.monotonic() - started}
    text = markdown(results)
    print("\n" + text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    if args.markdown:
        old = args.markdown.read_text() if args.markdown.exists() else ""
        args.markdown.write_text(replace_section(old, text) if old else text + "\n")
        print(f"section written to {args.markdown}")


if __name__ == "__main__":
    main()
