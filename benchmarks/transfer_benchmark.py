"""How the model transfers to real emoji art it never trained on: `make bench-transfer`.

A script that prints figures (not a test). Two tables, happy vs sad, medians
over seeds, with the Trainer's recipe (its default model, or --arch, stop at 0.999
training accuracy, at most 15 epochs, batch 10, shuffled every epoch, with the
Trainer's augmentation unless --no-augment) on the same in-graph decoder:

1. generator-only: trained on the generated faces, scored on every real set;
2. leave-one-vendor-out: trained on the generated faces plus every other
   vendor's sets, scored on the sets of the vendor left out (Fluent's flat,
   modern and high-contrast sets are one vendor: they share their drawings).

Generator-only trains on every committed generated face (the classic 80 and
the wide family's 200; --generated DIR, repeatable, to try others); the
leave-one-vendor-out models on what the default run trains on: the same
generated faces plus the other vendors' sets.

    .venv/bin/python benchmarks/transfer_benchmark.py [--seeds 3] [--generated DIR]... [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CLASSES = ("happy", "sad")


def load_folder(folder: Path):
    """(pixels [N,150,150,3] float32, labels [N]) of folder/<class>/*.png through the model's decoder."""
    import numpy as np
    import tensorflow as tf

    from happysad.components.trainer import image_decoding

    images, labels = [], []
    for label, class_name in enumerate(CLASSES):
        for path in sorted((folder / class_name).glob("*.png")):
            images.append(image_decoding.decode_image(tf.constant(path.read_bytes())).numpy())
            labels.append(label)
    return np.stack(images), np.array(labels, dtype=np.float32)


def concat(parts):
    import numpy as np

    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def architectures() -> dict:
    """Name -> module: the Trainer's architectures (its registry) and this benchmark's residual experiment."""
    import residual_cnn
    from happysad.components.trainer import models

    return {**models.ARCHITECTURES, residual_cnn.NAME: residual_cnn}


def train_and_score(train, tests: dict, seed: int, augment: bool, epochs: list, arch: str) -> dict:
    """Trains `arch` (a Trainer model, or the residual experiment) on `train` as the Trainer does and
    returns {name: accuracy} on each of `tests`; appends the epoch it stopped at (None: not reached) to `epochs`."""
    import keras
    import numpy as np
    import tensorflow as tf

    from happysad.components.trainer import trainer_module
    from happysad.components.trainer.models import common
    from happysad.components.trainer.training_config import TrainingConfig

    keras.utils.set_random_seed(seed)
    architecture, recipe = architectures()[arch], TrainingConfig()
    model = architecture.build_model(2, architecture.DEFAULT_LEARNING_RATE)
    data = trainer_module.batches(tf.data.Dataset.from_tensor_slices(train), recipe.batch_size, seed, augment)
    stop = common.StopAtAccuracy(recipe.threshold)
    model.fit(data, epochs=recipe.epochs, verbose=0, callbacks=[stop])
    epochs.append(stop.stopped_epoch)
    scores = {}
    for name, (tx, ty) in tests.items():
        predicted = (model.predict(tx, verbose=0)[:, 0] >= 0.5).astype(np.float32)
        scores[name] = float((predicted == ty).mean())
    return scores


def main() -> None:
    from happysad.components.trainer.training_config import TrainingConfig
    from happysad.data import emoji_faces, real_emoji_pack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--generated", type=Path, action="append", default=None, metavar="DIR",
                        help="generated training faces, repeatable (default: the classic 80 and the wide set)")
    parser.add_argument("--no-augment", action="store_true", help="train without the Trainer's augmentation")
    parser.add_argument("--generator-only", action="store_true", help="skip the leave-one-vendor-out table")
    parser.add_argument("--lovo-generated", type=Path, action="append", default=None, metavar="DIR",
                        help="generated faces the leave-one-vendor-out models train on, repeatable "
                        "(default: the classic 80 and the wide 200, as the default run)")
    parser.add_argument("--lovo-only", action="store_true", help="skip the generator-only table")
    parser.add_argument("--arch", choices=list(architectures()), default=TrainingConfig().architecture,
                        help="the model: one of the Trainer's (components/trainer/models/) or the residual "
                        "experiment (benchmarks/residual_cnn.py) (default: the Trainer's, %(default)s)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    folders = args.generated or list(emoji_faces.TRAINING_DIRS)
    augment = not args.no_augment

    started = time.monotonic()
    generated = concat([load_folder(folder) for folder in folders])
    default_generated = concat([load_folder(f) for f in args.lovo_generated or emoji_faces.TRAINING_DIRS])
    sets = {p.name: load_folder(p) for p in sorted(real_emoji_pack.PACK_DIR.iterdir()) if p.is_dir()}
    print(f"generated: {len(generated[1])} faces from {', '.join(map(str, folders))}; real sets: "
          + ", ".join(f"{n} {len(s[1])}" for n, s in sets.items())
          + f"; augmentation {'on' if augment else 'off'}; model {args.arch}", flush=True)
    seeds = range(1, args.seeds + 1)
    epochs = {"generator-only": [], "leave-one-vendor-out": []}

    only = {name: [] for name in sets}
    for seed in [] if args.lovo_only else seeds:
        for name, accuracy in train_and_score(generated, sets, seed, augment, epochs["generator-only"],
                                                 args.arch).items():
            only[name].append(accuracy)
        print(f"  generator-only, seed {seed} done ({time.monotonic() - started:.0f} s)", flush=True)

    left_out = {name: [] for name in sets}
    for held_out in [] if args.generator_only else sorted({real_emoji_pack.vendor(n) for n in sets}):
        tests = {n: s for n, s in sets.items() if real_emoji_pack.vendor(n) == held_out}
        train = concat([default_generated] + [s for n, s in sets.items() if n not in tests])
        for seed in seeds:
            for name, accuracy in train_and_score(train, tests, seed, augment, epochs["leave-one-vendor-out"],
                                                     args.arch).items():
                left_out[name].append(accuracy)
        print(f"  left out vendor {held_out} done ({time.monotonic() - started:.0f} s)", flush=True)

    print(f"\nhappy vs sad accuracy on each real set, median of {args.seeds} seeds "
          f"(per seed in brackets); {time.monotonic() - started:.0f} s")
    print("| set | generator-only | generated + other vendors (this vendor left out) |\n|---|---:|---:|")
    def cell(scores: list) -> str:
        return f"{statistics.median(scores):.2f} ({', '.join(f'{a:.2f}' for a in scores)})" if scores else "-"

    for name in sets:
        print(f"| {name} | {cell(only[name])} | {cell(left_out[name])} |")
    for name, stopped in epochs.items():
        if stopped:
            print(f"{name}: 0.999 reached at epochs {', '.join(str(e) for e in stopped)} (None: not within 15)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"generated": [str(f) for f in folders], "augment": augment,
                                         "seeds": list(seeds), "generator_only": only, "leave_one_out": left_out,
                                         "epochs": epochs}, indent=2))


if __name__ == "__main__":
    main()
