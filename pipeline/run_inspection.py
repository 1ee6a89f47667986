"""`happysad inspect`'s console lines: format_inspection() prints an Inspection
(one run's data, schema, anomalies, model and lineage, read by
run_record.inspect_run()); html_report.py draws the same Inspection.
"""
from __future__ import annotations

from happysad.components.trainer import models
from happysad.pipeline import run_summary, schema
from happysad.pipeline.run_record import Inspection


def format_lineage(nodes: list, indent: int = 2) -> list:
    lines = []
    for node in nodes:
        made = f" <- {node.producer}" if node.producer else ""
        name = f"{node.role}: " if node.role else ""
        if node.seen_above:
            lines.append(" " * indent + f"{name}{node.artifact_type} {node.artifact_id} (above)")
            continue
        lines.append(" " * indent + f"{name}{node.artifact_type} {node.artifact_id}{made}: {node.uri}")
        lines.extend(format_lineage(node.inputs, indent + 4))
    return lines


def format_inspection(inspection: Inspection) -> str:
    s = inspection.record
    lines = [f"run {s.run_id}: " + ", ".join(f"{c.node_id} {c.state}" for c in s.components), ""]
    lines[1:1] = [f"note: {c.node_id} {c.state}: {c.note}" for c in s.components if c.note]
    lines.append("statistics (StatisticsGen + ImageValidator):")
    for st in inspection.statistics:
        balance = ", ".join(f"{k} {v} ({v / st.examples:.0%})" for k, v in sorted(st.classes.items())) if st.examples else ""
        lines.append(f"  {st.split}: {st.examples} examples; {balance}")
        if st.image_bytes:
            b = st.image_bytes
            lines.append(f"    image bytes: min {b['min']:,.0f}, mean {b['mean']:,.0f}, max {b['max']:,.0f}")
        for key in ("formats", "sizes", "modes"):
            if st.images.get(key):
                lines.append(f"    {key}: " + ", ".join(f"{k} {v}" for k, v in sorted(st.images[key].items())))
    lines.append(f"schema ({inspection.schema_uri}):")
    lines.extend(f"  {name:<11} {kind:<6} {presence:<28} {domain}" for name, kind, presence, domain in inspection.schema)
    if inspection.schema_diff:
        lines.append(f"schema inferred by SchemaGen ({inspection.inferred_schema_uri}), against the curated one "
                     "(the gate uses the curated one; `happysad schema --promote FEATURE` adopts an inferred feature):")
        lines.extend(schema.format_diff(inspection.schema_diff))
    lines.append("anomalies:")
    lines.extend(run_summary.format_anomalies(s) or ["  (no validator ran)"])
    lines.append("model:")
    lines.extend("  " + line for line in run_summary.format_spans(s))
    if s.training:
        architecture = models.trained_architecture(s.training)
        lines.append(f"  {architecture} ({models.description(architecture)}), "
                     f"trained {s.training['epochs_run']} epochs; "
                     f"threshold epoch {s.training['threshold_epoch']}")
    if s.metrics:
        lines.append("  eval metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(s.metrics.items())))
        for name, values in sorted(s.class_metrics.items()):
            lines.append(f"    {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(values.items())
                                                      if k in run_summary.CLASS_METRICS))
        lines.extend("  " + line for line in run_summary.format_sources(s))
    lines.append("  blessed: " + {None: "not evaluated", True: "yes", False: "NO"}[s.blessed])
    lines.extend(f"    {reason}" for reason in s.failed_thresholds)
    lines.extend("  " + line for line in run_summary.format_tflite(s) + run_summary.format_serving_check(s))
    lines.append(f"  pushed: {s.pushed_dir} (version {s.pushed_version})" if s.pushed_dir else "  pushed: nothing")
    lines.append("lineage (artefact <- the execution that made it, then its inputs):")
    lines.extend(format_lineage(inspection.lineage))
    return "\n".join(lines)
