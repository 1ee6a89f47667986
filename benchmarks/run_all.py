"""`make bench`: every figure side by side, printed, and written as JSON and markdown.

    .venv/bin/python benchmarks/run_all.py [--quick]

Writes pipeline_output/benchmarks/results.json and benchmarks/RESULTS.md
(the README links the latter; commit it after a run on the reference machine),
keeping RESULTS.md's section from `make bench-robustness` and its figures
moved out of code comments and out of the READMEs (which no script measures).
--quick: one repeat and 80/1,000 images only, for a smoke run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE)]

import pipeline_benchmark  # noqa: E402
import robustness_benchmark  # noqa: E402
import serving_benchmark  # noqa: E402

# RESULTS.md's figures moved out of code comments: written by hand, kept by `make bench`.
FROM_COMMENTS_START = "<!-- from-comments: figures moved out of code comments; make bench keeps this section -->"
FROM_COMMENTS_END = "<!-- /from-comments -->"
# RESULTS.md's figures moved out of the READMEs (each dated, with its machine): the same.
FROM_READMES_START = "<!-- from-readmes: figures moved out of the READMEs; make bench keeps this section -->"
FROM_READMES_END = "<!-- /from-readmes -->"
KEPT_SECTIONS = ((robustness_benchmark.START, robustness_benchmark.END), (FROM_COMMENTS_START, FROM_COMMENTS_END),
                 (FROM_READMES_START, FROM_READMES_END))

# The targets of the performance issue: (label, how to read it from results, comparison, bound).
TARGETS = [
    ("cached re-run, whole process (Beam)", lambda r: r["run_beam"]["cached_s"], "<=", 10.0, "s"),
    ("cached re-run / importing the Beam orchestrator", lambda r: r["run_beam"]["cached_over_floor"], "<=", 1.15, "x"),
    ("cold run, whole process (Beam)", lambda r: r["run_beam"]["cold_s"], "<=", 45.0, "s"),
    ("Trainer throughput / plain Keras", lambda r: r["trainer"]["ratio"], ">=", 0.9, "x"),
    ("Trainer peak RSS growth per 1,000 images", lambda r: _rss_growth(r), "<=", 30.0, "MB"),
    ("ingestion, largest size", lambda r: r["scale"][-1]["ingest_images_per_s"], ">=", 500.0, "img/s"),
    ("validation growth 1k -> 10k images", lambda r: _growth(r), "<=", 11.0, "x"),
    ("default run / quickest run, cold, alternated", lambda r: r["architectures"]["cold_ratio"], "<=", 1.4, "x"),
    ("default / quickest batch-1 p50, REST", lambda r: _serving_ratio(r, "REST"), "<=", 2.5, "x"),
    ("default / quickest batch-1 p50, gRPC", lambda r: _serving_ratio(r, "gRPC"), "<=", 2.5, "x"),
    ("REST p50 overhead, batch 1", lambda r: r["serving"]["paths"]["REST"]["batch1"]["overhead_p50"], "<=", 1.3, "x"),
    ("gRPC p50 overhead, batch 1", lambda r: r["serving"]["paths"]["gRPC"]["batch1"]["overhead_p50"], "<=", 1.2, "x"),
]


def _serving_ratio(results, path):
    served = results["serving"]["architectures"]
    return served["by_architecture"][served["default"]]["over_quickest"][path]


def _rss_growth(results):
    rows = {row["images"]: row for row in results["trainer_memory"]}
    if 1000 not in rows or 10000 not in rows:
        return None
    return (rows[10000]["peak_rss_mb"] - rows[1000]["peak_rss_mb"]) / 9


def _growth(results):
    by_size = {row["images"]: row for row in results["scale"]}
    if 1000 not in by_size or 10000 not in by_size:
        return None
    return by_size[10000]["validation_s"] / by_size[1000]["validation_s"]


def _fmt(value, unit=""):
    if value is None:
        return "n/a"
    return f"{value:.2f}{unit}" if isinstance(value, float) else f"{value}{unit}"


def markdown(results: dict) -> str:
    lines = [f"# Benchmarks\n\nMeasured by `make bench` on {time.strftime('%Y-%m-%d')}, "
             f"{results['machine']['cores']} cores; medians of {results['repeats']} repeats. "
             "Ratios are steadier than seconds on a shared machine.\n", "## Targets\n",
             "| figure | measured | target | met |", "|---|---:|---:|:---:|"]
    for label, read, op, bound, unit in TARGETS:
        try:
            value = read(results)
        except (KeyError, IndexError, TypeError):
            value = None
        met = "" if value is None else ("yes" if (value <= bound if op == "<=" else value >= bound) else "**no**")
        lines.append(f"| {label} | {_fmt(value, ' ' + unit)} | {op} {bound:g} {unit} | {met} |")
    lines += ["\n## `happysad run`, whole process\n",
              "The import floor: `python -c 'from tfx.orchestration.beam import beam_dag_runner'`, timed right "
              "after each cached run.\n",
              "| runner | cold s | cached s | import floor s | cached / floor |", "|---|---:|---:|---:|---:|"]
    for runner in ("beam", "local"):
        r = results[f"run_{runner}"]
        lines.append(f"| {runner} | {r['cold_s']:.1f} | {r['cached_s']:.1f} | {r['import_floor_s']:.1f} | "
                     f"{r['cached_over_floor']:.2f} |")
    arch = results["architectures"]
    lines += [f"\n## The default run against the quickest ({arch['default']} / {arch['quickest']}), cold, alternated\n",
              f"Median of {results['repeats']} pair(s); the ratio is the median of each pair's.\n",
              "| architecture | cold run s | Trainer s | training s | export s | TFLite s | epochs |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name in (arch["default"], arch["quickest"]):
        m = arch["medians"][name]
        lines.append(f"| {name} | {m['cold_s']:.1f} | {m['trainer_s']:.1f} | {m['train_s']:.1f} | "
                     f"{m['export_s']:.1f} | {m['tflite_s']:.1f} | {m['epochs']:g} |")
    lines.append(f"\nratio {arch['cold_ratio']:.2f}x.")
    served = results["serving"]["architectures"]
    lines += ["\nServing batch 1 by architecture (random weights, `happysad serve`, p50 ms):\n",
              "| architecture | REST | gRPC | REST / quickest | gRPC / quickest |", "|---|---:|---:|---:|---:|"]
    for name, row in served["by_architecture"].items():
        lines.append(f"| {name} | {row['REST']:.2f} | {row['gRPC']:.2f} | {row['over_quickest']['REST']:.2f} | "
                     f"{row['over_quickest']['gRPC']:.2f} |")
    lines += ["\nPer component, cold (seconds, median):\n", "| component | beam | local |", "|---|---:|---:|"]
    beam, local = results["run_beam"]["components_cold_s"], results["run_local"]["components_cold_s"]
    for node in beam:
        lines.append(f"| {node} | {beam[node]:.1f} | {local.get(node, 0):.1f} |")
    t = results["trainer"]
    lines += ["\n## Trainer\n", f"{t['train_images']} training images; epochs 2+ (epoch 1 traces and fills the cache).\n",
              "| input | images/s |", "|---|---:|",
              f"| Trainer run_fn (TFX input, tf.data) | {t['trainer_images_per_s']:.0f} |",
              f"| plain Keras fit on decoded arrays (the floor) | {t['keras_images_per_s']:.0f} |",
              f"| ratio | {t['ratio']:.2f} |", f"\nModel export: {t['export_s']} s.\n"]
    lines += ["## The Trainer's memory\n", f"Its run_fn alone in a fresh process, {2} epochs.\n",
              "| images | training images | peak RSS MB | epoch 2 s |", "|---:|---:|---:|---:|"]
    for row in results["trainer_memory"]:
        lines.append(f"| {row['images']} | {row['train_images']} | {row['peak_rss_mb']:.0f} | "
                     f"{row['epoch_s'][-1]:.1f} |")
    lines.append("")
    sd = results["seeds"]
    lines += [f"## Epochs to 0.999, seeds 1-5 ({sd['architecture']})\n",
              f"{sd['epochs']} - median {sd['median']}, worst {sd['worst']} (99: not within the cap); "
              f"eval accuracy {[round(a, 3) for a in sd['eval_accuracy']]}; "
              f"eval AUC {[round(r['eval_auc'], 3) for r in sd['rows']]}\n"]
    lines += ["## Growth with data size\n", "Beam DirectRunner in memory, one worker (the default).\n",
              "| images | ingest s | ingest img/s | ImportExampleGen s | StatisticsGen s | SchemaGen s | "
              "ExampleValidator s | validation s |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in results["scale"]:
        lines.append(f"| {row['images']} | {row['ingest_s']:.1f} | {row['ingest_images_per_s']:.0f} | "
                     f"{row['example_gen_s']:.1f} | {row['statistics_gen_s']:.1f} | {row['schema_gen_s']:.1f} | "
                     f"{row['example_validator_s']:.1f} | {row['validation_s']:.1f} |")
    largest = results["scale"][-1]
    if "validation_multiprocess_s" in largest:
        lines.append(f"\nAt {largest['images']} images with one Beam worker process per core "
                     f"(`--direct_running_mode=multi_processing --direct_num_workers=0`): ImportExampleGen "
                     f"{largest['example_gen_multiprocess_s']:.1f} s, validation {largest['validation_multiprocess_s']:.1f} s.")
    lines += ["\n## Serving (batch 1 and 32; p50/p99 ms; images/s)\n",
              "| path | batch | p50 ms | p99 ms | img/s | p50 x in-process |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in results["serving"]["paths"].items():
        for size in (1, 32):
            r = row[f"batch{size}"]
            lines.append(f"| {name} | {size} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['images_per_s']:.0f} | "
                         f"{r.get('overhead_p50', 1.0):.2f} |")
        lines.append(f"| {name} | 1, 8 clients | | | {row['batch1_8clients_images_per_s']:.0f} | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark; print and write the figures.")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 80 and 1,000 images")
    parser.add_argument("--out", type=Path, default=REPO / "pipeline_output" / "benchmarks")
    parser.add_argument("--markdown", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    results = pipeline_benchmark.main(args.out / "pipeline.json", repeats=1 if args.quick else 2,
                                      sizes=(80, 1000) if args.quick else (80, 1000, 10000))
    print("[bench] serving", flush=True)
    serving_benchmark.main(["--json", str(args.out / "serving.json"), "--repeats", "100" if args.quick else "200"])
    results["serving"] = json.loads((args.out / "serving.json").read_text())
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    text = markdown(results)
    # Keep the sections this script does not write (between their marker lines).
    old = args.markdown.read_text() if args.markdown.exists() else ""
    for markers in KEPT_SECTIONS:
        kept = robustness_benchmark.section(old, *markers)
        if kept:
            text = robustness_benchmark.replace_section(text, kept, *markers)
    args.markdown.write_text(text)
    print(text)
    print(f"figures: {args.out / 'results.json'}; summary: {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
