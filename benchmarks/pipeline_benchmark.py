"""Pipeline figures: whole runs, the Trainer against plain Keras, seeds, and growth with data size.

A script that prints figures (not a test); `make bench` runs it with the
serving benchmark and writes the JSON and markdown summary. Every figure is a
median over repeats measured in this one process's run, because the machine
is shared and noisy: compare the ratios more than the seconds.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HAPPYSAD = str(Path(sys.executable).parent / "happysad")


def _median(values):
    return statistics.median(values) if values else None


FLOOR_IMPORT = "from tfx.orchestration.beam import beam_dag_runner"


def whole_runs(work: Path, runner: str, repeats: int) -> dict:
    """`happysad run` as a user types it: cold (fresh root) and cached (unchanged re-run)."""
    from happysad.pipeline import configs, run_record

    cold, cached, floor, components = [], [], [], {}
    for i in range(repeats):
        root, serving = work / f"{runner}-{i}" / "root", work / f"{runner}-{i}" / "serving"
        for kind, seconds in (("cold", cold), ("cached", cached)):
            started = time.perf_counter()
            result = subprocess.run([HAPPYSAD, "run", "--runner", runner, "--pipeline-root", str(root),
                                     "--serving-dir", str(serving)], cwd=REPO, capture_output=True, text=True)
            seconds.append(time.perf_counter() - started)
            if result.returncode not in (0, 3):
                raise RuntimeError(f"happysad run failed:\n{result.stdout}\n{result.stderr}")
            if kind == "cached":  # the floor, right after: any run through the Beam orchestrator imports it
                started = time.perf_counter()
                subprocess.run([sys.executable, "-c", FLOOR_IMPORT], check=True, capture_output=True)
                floor.append(time.perf_counter() - started)
            if kind == "cold":
                summary = run_record.read_run(str(root / "metadata.sqlite"), configs.PIPELINE_NAME)
                for c in summary.components:
                    components.setdefault(c.node_id, []).append(c.seconds)
    return {"cold_s": _median(cold), "cached_s": _median(cached), "cold_runs": cold, "cached_runs": cached,
            "import_floor_s": _median(floor), "import_floor_runs": floor,
            "cached_over_floor": _median([c / f for c, f in zip(cached, floor)]),
            "components_cold_s": {k: _median(v) for k, v in components.items()}}


def architectures_cold(work: Path, repeats: int) -> dict:
    """Cold `happysad run`s of the default data, the default architecture and the
    quickest (the seed's CNN) in turn, each on a fresh root: the default run's
    cost against the quickest's, from runs alternated within one benchmark run.
    Per architecture: whole-run and Trainer seconds, and the Trainer's export,
    TFLite and training seconds from its training summary."""
    from happysad import contract
    from happysad.components.trainer import models
    from happysad.pipeline import configs, run_record

    names = [models.DEFAULT, models.QUICKEST]
    rows = {name: {"cold_s": [], "trainer_s": [], "train_s": [], "export_s": [], "tflite_s": [], "epochs": []}
            for name in names}
    for i in range(repeats):
        for name in names:
            root = work / f"arch-{name}-{i}"
            started = time.perf_counter()
            result = subprocess.run([HAPPYSAD, "run", "--arch", name, "--pipeline-root", str(root / "root"),
                                     "--serving-dir", str(root / "serving")], cwd=REPO, capture_output=True, text=True)
            row = rows[name]
            row["cold_s"].append(time.perf_counter() - started)
            if result.returncode not in (0, 3):
                raise RuntimeError(f"happysad run --arch {name} failed:\n{result.stdout}\n{result.stderr}")
            record = run_record.read_run(str(root / "root" / "metadata.sqlite"), configs.PIPELINE_NAME)
            row["trainer_s"].append(next(c.seconds for c in record.components if c.node_id == "Trainer"))
            (summary_file,) = (root / "root" / "Trainer" / "model_run").glob(f"*/{contract.TRAINING_SUMMARY_FILE}")
            summary = json.loads(summary_file.read_text())
            row["train_s"].append(sum(summary["epoch_seconds"]))
            row["export_s"].append(summary["export_seconds"])
            row["tflite_s"].append(summary["tflite_seconds"])
            row["epochs"].append(summary["epochs_run"])
            print(f"  {name}: cold run {row['cold_s'][-1]:.1f} s, Trainer {row['trainer_s'][-1]:.1f} s", flush=True)
    medians = {name: {key: _median(values) for key, values in row.items()} for name, row in rows.items()}
    default, quickest = rows[models.DEFAULT]["cold_s"], rows[models.QUICKEST]["cold_s"]
    return {"default": models.DEFAULT, "quickest": models.QUICKEST, "runs": rows, "medians": medians,
            "cold_ratio": _median([d / q for d, q in zip(default, quickest)])}


def _examples_dir(work: Path) -> Path:
    """The ImportExampleGen output of the first Beam run (the pipeline's own split)."""
    return next((work / "beam-0" / "root" / "ImportExampleGen" / "examples").iterdir())


def _run_fn(train_files: list, eval_files: list, **training) -> dict:
    """The Trainer's run_fn on two class names, in a temp folder; returns its training summary."""
    from happysad import contract
    from happysad.components.trainer import trainer_module
    from happysad.components.trainer.training_config import TrainingConfig

    with tempfile.TemporaryDirectory() as run_dir:
        trainer_module.run_fn(types.SimpleNamespace(
            train_files=train_files, eval_files=eval_files,
            serving_model_dir=run_dir + "/model", model_run_dir=run_dir,
            custom_config={**dataclasses.asdict(TrainingConfig(**training)), "class_names": ["happy", "sad"]}))
        return json.loads((Path(run_dir) / contract.TRAINING_SUMMARY_FILE).read_text())


def trainer_vs_keras(examples: Path, epochs: int = 6) -> dict:
    """Images/s in the Trainer's run_fn (its tf.data input) vs. a plain Keras fit
    of the same model on the same pixels already decoded in memory. Epoch 1
    (tracing, cache fill) is left out of both."""
    import keras
    import numpy as np
    import tensorflow as tf

    from happysad.components.trainer import models, trainer_module, training_report

    train_files, eval_files = [str(examples / "Split-train" / "*")], [str(examples / "Split-eval" / "*")]
    # Never stops early (threshold 2); no augmentation: the same pixels, and the same model, as Keras.
    summary = _run_fn(train_files, eval_files, epochs=epochs, threshold=2.0, seed=1, augment=False,
                      architecture=models.QUICKEST)

    def arrays(files):
        pairs = list(trainer_module._dataset(files, 10).unbatch().as_numpy_iterator())
        return np.stack([p for p, _ in pairs]), np.array([label for _, label in pairs])

    x, y = arrays(train_files)
    validation = arrays(eval_files)
    n = len(x)
    trainer_epoch_s = summary["epoch_seconds"][1:]

    keras.utils.set_random_seed(1)
    model = models.get(models.QUICKEST).build_model()
    timer = training_report.EpochTimer()
    # The Trainer validates every epoch too.
    model.fit(x, y, batch_size=10, epochs=epochs, shuffle=True, verbose=0, callbacks=[timer],
              validation_data=validation)
    keras_epoch_s = timer.seconds[1:]
    trainer = n / _median(trainer_epoch_s)
    floor = n / _median(keras_epoch_s)
    tf.keras.backend.clear_session()
    return {"train_images": n, "trainer_images_per_s": trainer, "keras_images_per_s": floor,
            "ratio": trainer / floor, "export_s": summary.get("export_seconds")}


def seeds(examples: Path, count: int = 5) -> dict:
    """The Trainer's training (trainer_module.train, what run_fn runs before it
    exports) on the default run's own split, seeds 1..count: the epoch each
    reached the 0.999 threshold (None: not within the cap), its eval accuracy
    and eval AUC (the gate's AUC bound is 0.9). The suite keeps one seed's
    guard: the default run's own Trainer must reach the threshold."""
    import keras

    from happysad.components.trainer import trainer_module
    from happysad.components.trainer.training_config import TrainingConfig

    rows = []
    for seed in range(1, count + 1):
        trained = trainer_module.train(TrainingConfig(seed=seed), 2, [str(examples / "Split-train" / "*")],
                                       [str(examples / "Split-eval" / "*")])
        auc = keras.metrics.AUC()
        for pixels, labels in trained.evaluation:
            auc.update_state(labels, trained.model(pixels, training=False)[:, 0])
        rows.append({"seed": seed, "epoch": trained.stopped_epoch,
                     "eval_accuracy": trained.history["val_accuracy"][-1], "eval_auc": float(auc.result())})
        print("  seed %d: epoch %s, eval accuracy %.3f, eval AUC %.3f" % tuple(rows[-1].values()), flush=True)
        keras.backend.clear_session()
    epochs = [row["epoch"] or 99 for row in rows]
    return {"architecture": TrainingConfig().architecture, "rows": rows, "epochs": epochs,
            "median": _median(epochs), "worst": max(epochs), "eval_accuracy": [row["eval_accuracy"] for row in rows],
            "worst_auc": min(row["eval_auc"] for row in rows)}


def trainer_memory(work: Path, cache_dir: Path, sizes=(1000, 10000), epochs: int = 2) -> list:
    """The Trainer's run_fn on growing data, each in a fresh process: its peak
    RSS and images/s (epochs 2+). The target: peak RSS grows by at most 30 MB
    per 1,000 images, so 100,000 fit in this machine's 24 GB."""
    from happysad.data import emoji_faces, ingest

    rows = []
    for size in sizes:
        faces = cache_dir / f"faces-{size}"
        if not faces.is_dir():
            emoji_faces.generate(faces, count=size, seed=size)
        out = work / f"trainer-{size}"
        ingest.ingest(faces, out, progress=False)
        child = subprocess.run([sys.executable, __file__, "--trainer-child", str(out), str(epochs)],
                               capture_output=True, text=True)
        if child.returncode:
            raise RuntimeError(f"the Trainer at {size} images failed:\n{child.stderr[-3000:]}")
        rows.append({"images": size, **json.loads(child.stdout.strip().splitlines()[-1])})
        shutil.rmtree(out, ignore_errors=True)
    return rows


def _peak_rss_mb() -> float:
    """This process's peak RSS since its exec: VmHWM. (getrusage's ru_maxrss survives
    exec, so a child started by a 1.7 GB benchmark process reported that as its own.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _trainer_child(examples: Path, epochs: int) -> None:
    """Runs run_fn on ingest's files and prints {peak_rss_mb, images_per_s, train_images} as JSON."""
    summary = _run_fn([str(examples / "train.tfrecord.gz")], [str(examples / "eval.tfrecord.gz")],
                      epochs=epochs, threshold=2.0)  # never stops early
    sources = json.loads((examples / "ingest_report.json").read_text())["sources"]
    train_images = sum(sum(splits.get("train", {}).values()) for splits in sources.values())
    print(json.dumps({"peak_rss_mb": _peak_rss_mb(),
                      "epoch_s": summary["epoch_seconds"], "train_images": train_images}))


IN_MEMORY = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=0"]  # 0: one per core


def _validation_pipeline(root: Path, examples_dir: Path, schema_file: str, beam_args=IN_MEMORY):
    """ImportExampleGen -> StatisticsGen -> ImportSchemaGen -> ExampleValidator: the
    data half of the pipeline, on its own."""
    from tfx import v1 as tfx

    from happysad.pipeline import metadata
    from happysad.pipeline.pipeline import import_example_gen

    example_gen = import_example_gen(str(examples_dir), presplit=True)  # the pipeline's own, on ingest's split
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"],
                                                  schema=schema_gen.outputs["schema"])
    validator = tfx.components.ExampleValidator(statistics=statistics_gen.outputs["statistics"],
                                                schema=schema_gen.outputs["schema"])
    return tfx.dsl.Pipeline(
        pipeline_name="bench", pipeline_root=str(root), components=[example_gen, schema_gen, statistics_gen, validator],
        enable_cache=False, metadata_connection_config=metadata.connection_config(str(root / "metadata.sqlite")),
        beam_pipeline_args=list(beam_args))


def scale(work: Path, sizes, cache_dir: Path) -> list:
    """Ingestion and StatisticsGen + SchemaGen + ExampleValidator at growing sizes."""
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    from happysad.data import emoji_faces, ingest
    from happysad.pipeline import run_record, schema

    rows = []
    for size in sizes:
        faces = cache_dir / f"faces-{size}"
        if not faces.is_dir():  # generating 10,000 faces takes minutes: kept between bench runs
            emoji_faces.generate(faces, count=size, seed=size)
        out = work / f"ingest-{size}"
        started = time.perf_counter()
        ingest.ingest(faces, out, progress=False)
        ingest_s = time.perf_counter() - started
        modes = [("in_memory", IN_MEMORY)] + ([("multi_processing", MULTI_PROCESS)] if size == max(sizes) else [])
        row = {"images": size, "ingest_s": ingest_s, "ingest_images_per_s": size / ingest_s}
        for mode, beam_args in modes:  # the largest size also with one Beam worker process per core
            root = work / f"validate-{size}-{mode}"
            schema_file = schema.write_for_classes(["happy", "sad"], root / "schema")
            BeamDagRunner().run(_validation_pipeline(root, out, schema_file, beam_args))
            seconds = {c.node_id: c.seconds for c in run_record.read_run(str(root / "metadata.sqlite"), "bench").components}
            validation = sum(seconds.get(k) or 0 for k in ("StatisticsGen", "ImportSchemaGen", "ExampleValidator"))
            if mode == "in_memory":
                row.update({"statistics_gen_s": seconds.get("StatisticsGen"), "schema_gen_s": seconds.get("ImportSchemaGen"),
                            "example_validator_s": seconds.get("ExampleValidator"), "validation_s": validation,
                            "example_gen_s": seconds.get("ImportExampleGen")})
            else:
                row.update({"validation_multiprocess_s": validation,
                            "example_gen_multiprocess_s": seconds.get("ImportExampleGen")})
        rows.append(row)
        shutil.rmtree(out, ignore_errors=True)
    return rows


def main(out_json: Path, repeats: int = 2, sizes=(80, 1000, 10000)) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    work = Path(tempfile.mkdtemp(prefix="pipeline-bench-"))
    cache_dir = out_json.parent
    results = {"machine": {"cores": os.cpu_count()}, "repeats": repeats}
    for runner in ("beam", "local"):
        print(f"[bench] happysad run --runner {runner}: {repeats} cold + {repeats} cached", flush=True)
        results[f"run_{runner}"] = whole_runs(work, runner, repeats)
    print(f"[bench] cold runs by architecture, alternated: {repeats} each", flush=True)
    results["architectures"] = architectures_cold(work, repeats)
    examples = _examples_dir(work)
    print("[bench] Trainer vs. plain Keras", flush=True)
    results["trainer"] = trainer_vs_keras(examples)
    print("[bench] epochs to the threshold, 5 seeds", flush=True)
    results["seeds"] = seeds(examples)
    print(f"[bench] the Trainer's peak memory and speed at {', '.join(str(s) for s in sizes if s >= 1000)} images", flush=True)
    results["trainer_memory"] = trainer_memory(work, cache_dir, [s for s in sizes if s >= 1000])
    print(f"[bench] ingestion and validation at {', '.join(map(str, sizes))} images", flush=True)
    results["scale"] = scale(work, sizes, cache_dir)
    shutil.rmtree(work, ignore_errors=True)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":  # only as run_all's child process: one Trainer run, measured on its own
    if len(sys.argv) == 4 and sys.argv[1] == "--trainer-child":
        _trainer_child(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        sys.exit("usage: make bench (benchmarks/run_all.py); this module is its pipeline part")
