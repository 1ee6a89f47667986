"""`happysad inspect`: one run's data, schema, anomalies, model and lineage, from ML Metadata.

Every artefact is found through MLMD events (which execution of the run wrote
what), never by globbing the pipeline root. inspect_run() gathers an
Inspection; format_inspection() prints it; html_report.py draws it.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from happysad import contract
from happysad.pipeline import metadata, run_summary, schema



@dataclasses.dataclass
class SplitStatistics:
    split: str
    examples: int
    classes: dict  # class name -> count
    image_bytes: dict  # min / mean / max encoded size
    images: dict  # ImageValidator's summary: formats, sizes, modes


@dataclasses.dataclass
class LineageNode:
    artifact_type: str
    artifact_id: int
    uri: str
    producer: Optional[str]  # "<node> (execution N)", None for an external input
    inputs: list  # [LineageNode]
    seen_above: bool = False
    role: str = ""  # the input key it was read under, e.g. "baseline_model"


@dataclasses.dataclass
class Inspection:
    summary: run_summary.RunSummary
    statistics: list  # [SplitStatistics]
    schema: list  # [(feature, type, presence, domain)]
    schema_uri: Optional[str]
    lineage: list  # [LineageNode] roots
    examples_uri: Optional[str]  # for the HTML report's sample images
    schema_diff: list = dataclasses.field(default_factory=list)  # schema.diff rows: SchemaGen vs curated
    inferred_schema_uri: Optional[str] = None  # SchemaGen's schema.pbtxt


def inspect_run(sqlite_path: str, pipeline_name: str, run_id: Optional[str] = None) -> Inspection:
    summary = run_summary.read_run(sqlite_path, pipeline_name, run_id)
    store = metadata.open_store(sqlite_path)
    schema_rows, schema_path = _schema(summary)
    inferred_path = inferred_schema_path(summary)
    return Inspection(
        summary=summary,
        statistics=_statistics(summary),
        schema=schema_rows,
        schema_uri=schema_path,
        lineage=_lineage(store, summary),
        examples_uri=_first_uri(summary, "ImportExampleGen", "examples"),
        schema_diff=schema.diff(schema.read(schema_path), schema.read(inferred_path))
        if schema_path and inferred_path else [],
        inferred_schema_uri=inferred_path,
    )


def inferred_schema_path(summary) -> Optional[str]:
    """SchemaGen's schema.pbtxt in this run (None if it did not run)."""
    uri = _first_uri(summary, "SchemaGen", "schema")
    return os.path.join(uri, "schema.pbtxt") if uri else None


def _first_uri(summary, node: str, key: str) -> Optional[str]:
    component = summary.component(node)
    artifacts = component.outputs.get(key) if component else None
    return artifacts[0].uri if artifacts else None


def _statistics(summary) -> list:
    stats_uri = _first_uri(summary, "StatisticsGen", "statistics")
    if not stats_uri:
        return []
    import tensorflow_data_validation as tfdv

    images_uri = _first_uri(summary, "ImageValidator", "anomalies")
    result = []
    for split in ("train", "eval"):
        path = os.path.join(stats_uri, f"Split-{split}", "FeatureStats.pb")
        if not os.path.exists(path):
            continue
        dataset = tfdv.load_stats_binary(path).datasets[0]
        feature = {f.path.step[0] if f.path.step else f.name: f for f in dataset.features}
        classes = {}
        if contract.CLASS_NAME_KEY in feature:
            for bucket in feature[contract.CLASS_NAME_KEY].string_stats.rank_histogram.buckets:
                classes[bucket.label] = int(bucket.sample_count)
        image_bytes = {}
        if contract.IMAGE_KEY in feature and feature[contract.IMAGE_KEY].HasField("bytes_stats"):
            b = feature[contract.IMAGE_KEY].bytes_stats
            image_bytes = {"min": b.min_num_bytes, "mean": b.avg_num_bytes, "max": b.max_num_bytes}
        images = {}
        if images_uri:
            image_path = os.path.join(images_uri, f"Split-{split}", contract.IMAGE_SUMMARY_FILE)
            if os.path.exists(image_path):
                with open(image_path) as f:
                    images = json.load(f)
        result.append(SplitStatistics(split, int(dataset.num_examples), classes, image_bytes, images))
    return result


def _schema(summary):
    uri = _first_uri(summary, "ImportSchemaGen", "schema")
    if not uri:
        return [], None
    path = os.path.join(uri, "schema.pbtxt")
    return schema.describe(schema.read(path)), path


def _lineage(store, summary) -> list:
    """Trees from the run's final artefacts back to its inputs.

    Roots: the pushed model (if any) and the anomalies the DataGate judged;
    without either, every artefact the run output that no execution of the
    run read."""
    run_executions = {c.execution_id for c in summary.components}
    events = store.get_events_by_execution_ids(list(run_executions))
    consumed = {e.artifact_id for e in events if e.type == metadata_store_pb2.Event.INPUT}
    produced = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    pushed = summary.component("Pusher")
    pushed_ids = [a.id for a in (pushed.outputs.get("pushed_model", []) if pushed else [])
                  if a.custom_properties["pushed"].int_value == 1]
    gate = summary.component("DataGate")
    gate_inputs = sorted(e.artifact_id for e in events
                         if gate and e.execution_id == gate.execution_id and e.type == metadata_store_pb2.Event.INPUT)
    roots = pushed_ids + gate_inputs or sorted(dict.fromkeys(a for a in produced if a not in consumed))
    types = {t.id: t.name for t in store.get_artifact_types()}
    names = {}  # execution id -> node id
    seen: set = set()

    def node_name(execution_id):
        if execution_id not in names:
            ctx = next((c.name for c in store.get_contexts_by_execution(execution_id) if c.type == "node"), "?")
            names[execution_id] = ctx.split(".", 1)[-1]
        return names[execution_id]

    def build(artifact_id, role=""):
        (artifact,) = store.get_artifacts_by_id([artifact_id])
        node = LineageNode(types.get(artifact.type_id, "?"), artifact.id, artifact.uri, None, [], role=role)
        if artifact_id in seen:
            node.seen_above = True
            return node
        seen.add(artifact_id)
        made_by = sorted(e.execution_id for e in store.get_events_by_artifact_ids([artifact_id])
                         if e.type == metadata_store_pb2.Event.OUTPUT)
        if made_by:  # the first execution that output it made it; later ones were cache hits
            execution_id = made_by[0]
            node.producer = f"{node_name(execution_id)} (execution {execution_id})"
            (execution,) = store.get_executions_by_id([execution_id])
            for props in (execution.properties, execution.custom_properties):
                for source in ("input_base", "schema_file"):  # the Import* nodes' outside input
                    if source in props:
                        node.producer += f" from {props[source].string_value}"
            inputs = sorted({(e.path.steps[0].key if e.path.steps else "", e.artifact_id)
                             for e in store.get_events_by_execution_ids([execution_id])
                             if e.type == metadata_store_pb2.Event.INPUT})
            node.inputs = [build(i, key) for key, i in inputs]
        return node

    return [build(a) for a in roots]


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
    s = inspection.summary
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
        lines.append(f"  {s.training.get('architecture', 'reference')}, trained {s.training['epochs_run']} epochs; "
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
