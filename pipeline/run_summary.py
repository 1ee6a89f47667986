"""The console lines `happysad run` ends with (format_summary()), from a run
read by run_record.read_run(); and the lines and rows `happysad inspect`, the
HTML report and the model card share: accuracy, the per-source rows, the
anomalies, TFLite, serving-check and spans lines.
"""
from __future__ import annotations

from typing import Optional

from happysad.components.trainer import models
from happysad.pipeline.run_record import RunRecord

# On a one-class slice only these mean anything (AUC, precision, recall do not).
ACCURACY_METRICS = ("binary_accuracy", "sparse_categorical_accuracy")  # 2 classes / 3 or more
CLASS_METRICS = (*ACCURACY_METRICS, "example_count")


def accuracy(metrics: dict) -> Optional[float]:
    """The accuracy TFMA reported, whichever head the model has."""
    return next((metrics[k] for k in ACCURACY_METRICS if k in metrics), None)


def format_spans(summary: RunRecord) -> list:
    if not summary.spans:
        return []
    trained = summary.spans.get("trained_on")
    return [f"spans: this run took span {summary.spans['current']}"
            + (f"; the model trained on span{'s' if len(trained) > 1 else ''} {', '.join(map(str, trained))}"
               if trained else "; nothing was trained")]


def format_anomalies(summary: RunRecord) -> list:
    """One line per validator, then one per anomaly it found."""
    lines = []
    for node, found in summary.anomalies.items():
        lines.append(f"  {node}: " + (f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'}" if found
                                      else "no anomalies"))
        lines.extend(f"    {a.sentence()}" for a in found)
    return lines


def format_tflite(summary: RunRecord) -> list:
    """The TFLite model's line: chosen variant and size, TFMA's accuracy beside the SavedModel's, latency."""
    t = summary.tflite
    if not t:
        return []
    chosen, variants = t["chosen"], t["variants"]
    sizes = "; ".join(f"{name} {variants[name]['bytes'] / 1e6:.1f} MB" for name in variants if name != chosen)
    tflite_accuracy, saved_accuracy = accuracy(t.get("metrics", {})), accuracy(summary.metrics)
    shown = (f"TFMA on the eval split: accuracy {tflite_accuracy:.4f}" if tflite_accuracy is not None
             else "not evaluated by TFMA")
    if tflite_accuracy is not None and saved_accuracy is not None:
        shown += f" (SavedModel {saved_accuracy:.4f})"
    for source in summary.held_out:
        value = accuracy(t.get("source_metrics", {}).get(source, {}))
        if value is not None:
            shown += f", {source} {value:.3f}"
    verdict = {True: "passes the gate's thresholds", False: "FAILS the gate's thresholds:", None: ""}[t.get("blessed")]
    lines = [f"TFLite ({chosen}, {variants[chosen]['bytes'] / 1e6:.1f} MB{'; ' + sizes if sizes else ''}): {shown}; "
             f"batch-1 on one core {variants[chosen]['latency_ms_one_core']} ms; {verdict}".rstrip("; ")]
    lines.extend(f"  {reason}" for reason in t.get("failed_thresholds", []) if t.get("blessed") is False)
    return lines


def source_rows(summary: RunRecord) -> list:
    """(source, examples, accuracy, floor or None, failed) per source, held-out
    ones first; failed: a held-out source under its floor (or unmeasured)."""
    rows = []
    for name, values in summary.source_metrics.items():
        acc, floor = accuracy(values), summary.held_out.get(name)
        failed = floor is not None and (acc is None or acc < floor)
        rows.append((name, int(values.get("example_count", 0)), acc, floor, failed))
    return sorted(rows, key=lambda r: (r[3] is None, r[0]))


def format_sources(summary: RunRecord) -> list:
    """The per-source accuracy table (eval split), held-out sources marked with their floor."""
    rows = source_rows(summary)
    if not rows:
        return []
    lines = ["  by source (eval split):  examples  accuracy"]
    for name, count, acc, floor, failed in rows:
        mark = "" if floor is None else (f"  held out: never trained on; gate >= {floor:g}"
                                         + ("  FAILED" if failed else ""))
        lines.append(f"    {name:<22} {count:>8}  {acc if acc is not None else float('nan'):8.3f}{mark}")
    return lines


def format_serving_check(summary: RunRecord) -> list:
    """The ServingCheck's verdict, latencies and, when it failed, every reason ([] if it did not run)."""
    check = summary.serving_check
    if check is None:
        return []
    what = "serving check (TF Serving's session loader, then happysad serve on loopback)"
    if not check["blessed"]:
        return [f"{what}: FAILED - it could not be served:"] + [f"  {problem}" for problem in check["problems"]]
    latency = ", ".join(f"{k} {v} ms" for k, v in sorted(check["latency_ms"].items()))
    server = ", ".join(f"{k} {v} ms" for k, v in sorted(check.get("server_latency_ms", {}).items()))
    over_server = f"; over the server (median) {server}" if server else ""
    return [f"{what}: passed; batch-1 in process {latency}{over_server}"]


def format_summary(summary: RunRecord) -> str:
    """The human-readable end of `happysad run`."""
    lines = [f"run {summary.run_id}", "  component                       state      seconds"]
    for c in summary.components:
        lines.append(f"  {c.node_id:<31} {c.state:<10} {c.seconds:7.1f}" + (f"  ({c.note})" if c.note else ""))
    if summary.anomalies:
        lines.append("data validation:")
        lines.extend(format_anomalies(summary))
    from happysad.pipeline.configs import ValidationConfig

    threshold = ValidationConfig().max_label_drift
    for split, distance in sorted(summary.label_drift.items()):
        if threshold / 2 < distance <= threshold:
            lines.append(f"warning: the {split} split's class balance moved {distance:.2f} from the previous run's "
                         f"(L-infinity; the run stops past {threshold}): check that no class lost images by "
                         "mistake")
    lines.extend(format_spans(summary))
    if summary.training:
        t = summary.training
        hit = (f"reached {t['threshold']} at epoch {t['threshold_epoch']}" if t["threshold_epoch"]
               else f"did NOT reach {t['threshold']} in {t['epochs_run']} epochs")
        lines.append(f"training: {hit}; final accuracy {t['final_accuracy']:.4f}, "
                     f"eval accuracy {t['final_val_accuracy']:.4f}; model {models.trained_architecture(t)}")
    if summary.training_curves:
        lines.append(f"  curves: {summary.training_curves}")
    if summary.metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(summary.metrics.items()))
        lines.append(f"evaluation (eval split): {shown}")
        for name, values in sorted(summary.class_metrics.items()):
            lines.append(f"  {name}: " + ", ".join(
                f"{k} {v:.4g}" for k, v in sorted(values.items()) if k in CLASS_METRICS))
        lines.extend(format_sources(summary))
    if summary.blessed is not None:
        lines.append("blessed: yes" if summary.blessed else "blessed: NO - the model failed the gate:")
        lines.extend(f"  {reason}" for reason in summary.failed_thresholds)
    lines.extend(format_tflite(summary))
    lines.extend(format_serving_check(summary))
    if summary.pushed_dir:
        lines.append(f"pushed: {summary.pushed_dir} (version {summary.pushed_version})")
        if summary.model_card:
            lines.append(f"model card: {summary.model_card}")
    elif summary.blessed is not None or summary.serving_check is not None:
        lines.append("pushed: nothing (only a model that is blessed and passes the serving check is pushed)")
    return "\n".join(lines)
