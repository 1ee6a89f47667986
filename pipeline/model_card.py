"""A model card for every pushed model: model_card.md and model_card.html in
its version folder, beside the SavedModel, written by the runner from the run
as run_record.read_run() read it from ML Metadata and TFMA's results (build()
and render() read nothing else; write() also reads ingestion's report).

Jinja2 templates (pipeline/templates/); Model Card Toolkit does not install
with TFX 1.16's pins. TF Serving ignores the two files.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Optional

from happysad.components.trainer import models
from happysad.pipeline import configs, run_record, run_summary

CARD_FILES = ("model_card.md", "model_card.html")
TEMPLATES = Path(__file__).resolve().parent / "templates"
# A source under this accuracy is named among the known limits.
WEAK_SOURCE = 0.95


@dataclasses.dataclass
class Card:
    """What the templates render."""

    model_name: str
    version: str
    written: str
    run_id: str
    class_names: list
    architecture: str  # the architecture's one sentence, up to its head (models.description)
    sources: list  # {name, held_out, train: {class: n}, eval: {class: n}}
    validation: list  # (validator, verdict)
    training: Optional[dict]
    curves_png: Optional[str]  # base64
    metrics: dict
    class_metrics: dict
    source_rows: list  # run_summary.source_rows
    gate: dict  # threshold name -> value
    serving_check: Optional[dict]
    tflite: list  # run_summary.format_tflite's lines: [] without a TFLite model
    spans: list  # run_summary.format_spans's line: which spans the model trained on ([] without spans)
    lineage: list  # (what, MLMD id, uri)
    weak_sources: list  # (name, accuracy)


VALIDATORS = ("ExampleValidator", "ImageValidator", "SkewValidator", "DriftValidator")


def build(summary: run_record.RunRecord, ingest_report: Optional[dict], gate: configs.GateConfig) -> Card:
    training = summary.training or {}
    curves = base64.b64encode(summary.training_curves_png).decode() if summary.training_curves_png else None
    sources = []
    held_out = set((ingest_report or {}).get("held_out", []))
    for name, splits in sorted(((ingest_report or {}).get("sources") or {}).items()):
        sources.append({"name": name, "held_out": name in held_out,
                        "train": splits.get("train", {}), "eval": splits.get("eval", {})})
    validation = []
    for node in VALIDATORS:
        ran = summary.component(node)
        if ran is None:
            continue
        found = summary.anomalies.get(node, [])
        validation.append((node, "no anomalies" if not found else "; ".join(a.sentence() for a in found)))
    lineage = []
    for node, key, what in (("ImportExampleGen", "examples", "examples"), ("ImportSchemaGen", "schema", "schema"),
                            ("Trainer", "model", "model"), ("Evaluator", "evaluation", "evaluation"),
                            ("Evaluator", "blessing", "blessing"),
                            ("TFLiteEvaluator", "evaluation", "TFLite evaluation"),
                            ("ServingCheck", "blessing", "serving check"),
                            ("Pusher", "pushed_model", "pushed model")):
        ran = summary.component(node)
        for artifact in (ran.outputs.get(key, []) if ran else []):
            lineage.append((f"{what} (execution {ran.execution_id}, {node})", artifact.id, artifact.uri))
    rows = run_summary.source_rows(summary)
    return Card(
        model_name=configs.MODEL_NAME, version=str(summary.pushed_version or ""),
        written=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        run_id=summary.run_id, class_names=list(training.get("class_names") or []),
        architecture=models.description(models.trained_architecture(training)),
        sources=sources, validation=validation, training=summary.training, curves_png=curves,
        metrics=summary.metrics, class_metrics=summary.class_metrics, source_rows=rows,
        gate={"accuracy at least": gate.min_accuracy, "AUC at least (two classes)": gate.min_auc,
              "accuracy drop against the last blessed model at most": gate.max_accuracy_drop,
              **{f"accuracy on held-out {name} at least": floor for name, floor in sorted(summary.held_out.items())}},
        serving_check=summary.serving_check, tflite=run_summary.format_tflite(summary),
        spans=run_summary.format_spans(summary), lineage=lineage,
        weak_sources=[(name, acc) for name, _, acc, _, _ in rows if acc is not None and acc < WEAK_SOURCE])


def _number(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) >= 1 else f"{value:.4g}"
    return str(value)


def render(card: Card) -> dict:
    """{file name: text} of the card."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html.j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _number
    return {name: env.get_template(name + ".j2").render(card=card, accuracy=run_summary.accuracy, weak_source=WEAK_SOURCE)
            for name in CARD_FILES}


def write(summary: run_record.RunRecord, ingest_report_path: Optional[Path],
          gate: configs.GateConfig = configs.GateConfig()) -> list:
    """Writes the card into the pushed version's folder; returns the paths.
    Each file appears whole or not at all (written aside, then renamed)."""
    if not summary.pushed_dir:
        return []
    report = None
    if ingest_report_path and Path(ingest_report_path).is_file():
        report = json.loads(Path(ingest_report_path).read_text())
    written = []
    for name, text in render(build(summary, report, gate)).items():
        path = Path(summary.pushed_dir) / name
        partial = path.with_name(f".{name}.partial")
        partial.write_text(text)
        os.replace(partial, path)
        written.append(path)
    return written
