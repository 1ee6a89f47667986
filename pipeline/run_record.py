"""One pipeline run read back from ML Metadata, as plain data.

Every artefact is found through MLMD events (which execution of the run wrote
what), never by globbing the pipeline root.

read_run() -> RunRecord: the components and their states, what each validator
found, the training summary and curves, the evaluation metrics (overall, per
class, per source) and the blessings, the TFLite and serving-check verdicts,
the push and its model card, and the spans. inspect_run() -> Inspection adds
what `happysad inspect` shows: statistics per split, the schema and the
lineage; read_samples() the sample images only the HTML report shows.
Formatting is elsewhere, and reads nothing itself: run_summary.py (the end of
`happysad run`), run_inspection.py and html_report.py (`happysad inspect`),
model_card.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from happysad.components.examples_artifact import span_of
from happysad import contract
from happysad.pipeline import configs, metadata, schema


CACHE_DIR = "summary_cache"  # beside metadata.sqlite: what was read from immutable artefacts
_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


@dataclasses.dataclass
class ArtifactRef:
    """An artefact as ML Metadata records it, without MLMD's types."""

    id: int
    uri: str
    properties: dict = dataclasses.field(default_factory=dict)  # name -> value (properties and custom properties)

    @classmethod
    def of(cls, artifact) -> "ArtifactRef":
        """From an MLMD Artifact proto; a property wins over a custom property of the same name."""
        return cls(artifact.id, artifact.uri, {**_values(artifact.custom_properties), **_values(artifact.properties)})


def _values(properties) -> dict:
    """{name: Python value} of an MLMD property map (a struct as a dict; a proto value left out)."""
    from google.protobuf import json_format

    values = {}
    for name, value in properties.items():
        kind = value.WhichOneof("value")
        if kind == "struct_value":
            values[name] = json_format.MessageToDict(value.struct_value)
        elif kind in ("int_value", "double_value", "string_value", "bool_value"):
            values[name] = getattr(value, kind)
    return values


@dataclasses.dataclass
class ComponentRun:
    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
    seconds: float
    outputs: dict  # output key -> [ArtifactRef]
    execution_id: int
    note: str = ""  # e.g. why a killed run's execution was marked CANCELED


@dataclasses.dataclass
class RunRecord:
    """What one run did, as read_run() found it: everything the formatters show."""

    run_id: str
    components: list  # [ComponentRun] in execution order
    training: Optional[dict]  # the Trainer's training_summary.json
    training_curves: Optional[str]  # the curves' PNG file
    metrics: dict  # overall eval metrics of the candidate model
    class_metrics: dict  # class name -> metrics
    failed_thresholds: list  # human-readable reasons the model was not blessed
    blessed: Optional[bool]
    pushed_dir: Optional[str]
    pushed_version: Optional[str]
    anomalies: dict = dataclasses.field(default_factory=dict)  # validator node -> [Anomaly]
    serving_check: Optional[dict] = None  # ServingCheck's serving_check.json
    label_drift: dict = dataclasses.field(default_factory=dict)  # split -> L-inf distance to the previous run
    source_metrics: dict = dataclasses.field(default_factory=dict)  # source -> metrics
    held_out: dict = dataclasses.field(default_factory=dict)  # held-out source -> the accuracy it must reach
    # The TFLite model: the Trainer's comparison of its variants (tflite.json),
    # plus "metrics", "source_metrics", "blessed" and "failed_thresholds" from the TFLiteEvaluator.
    tflite: Optional[dict] = None
    # A span root's run: {"current": the span ImportExampleGen took, "trained_on": the Trainer's spans}; {} otherwise.
    spans: dict = dataclasses.field(default_factory=dict)
    log_path: Optional[str] = None  # set by the runner: the run's full log
    training_curves_png: Optional[bytes] = None  # the curves' PNG, read once for the report and the card
    # The pushed model's model_card.html, if it has one (the runner sets it again once it writes the card).
    model_card: Optional[str] = None

    def component(self, node_id: str) -> Optional[ComponentRun]:
        return next((c for c in self.components if c.node_id == node_id), None)


def read_run(sqlite_path: str, pipeline_name: str, run_id: Optional[str] = None) -> RunRecord:
    """One run of `pipeline_name` (default: the newest), read from the store at sqlite_path."""
    store = metadata.open_store(sqlite_path)
    try:
        run = metadata.find_run(store, pipeline_name, run_id)
    except LookupError as e:
        raise LookupError(f"{e} (in {sqlite_path})") from None
    components = []
    for execution in metadata.executions(store, run):
        components.append(ComponentRun(
            node_id=metadata.node_of(store, execution),
            state=_STATES.get(execution.last_known_state, "UNKNOWN"),
            seconds=(execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000,
            outputs={key: [ArtifactRef.of(a) for a in found]
                     for key, found in metadata.artifacts(store, execution.id).items()},
            execution_id=execution.id,
            note=execution.custom_properties["abandoned"].string_value
            if "abandoned" in execution.custom_properties else "",
        ))
    record = RunRecord(run.name, components, None, None, {}, {}, [], None, None, None)
    _add_spans(record, store)
    _add_validation(record)
    _add_label_drift(record, store)
    _add_training(record)
    cache_dir = os.path.join(os.path.dirname(os.path.abspath(sqlite_path)), CACHE_DIR)
    _add_evaluation(record, cache_dir)
    _add_tflite(record, cache_dir)
    _add_serving_check(record)
    _add_push(record)
    return record


def _add_spans(record: RunRecord, store) -> None:
    example_gen = record.component("ImportExampleGen")
    examples = example_gen.outputs.get("examples", []) if example_gen else []
    current = examples[0].properties.get("span", 0) if examples else 0  # span_of's rule, on plain data
    if not current:  # not a span root (ExampleGen records span 0)
        return
    record.spans = {"current": current}
    trainer = record.component("Trainer")
    if trainer:
        trained = metadata.artifacts(store, trainer.execution_id, metadata.INPUT).get("examples", [])
        record.spans["trained_on"] = sorted(span_of(a) for a in trained)


def _add_validation(record: RunRecord) -> None:
    from happysad.components import anomalies as anomalies_lib

    for c in record.components:
        for artifact in c.outputs.get("anomalies", []):
            record.anomalies[c.node_id] = anomalies_lib.read(artifact.uri)


def class_balance(statistics_uri: str, split: str) -> dict:
    """{class name: share of the split} from StatisticsGen's FeatureStats.pb ({} if unreadable)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    try:
        with open(path, "rb") as f:
            stats.ParseFromString(f.read())
    except OSError:
        return {}
    for dataset in stats.datasets:
        for feature in dataset.features:
            if list(feature.path.step) == [contract.CLASS_NAME_KEY]:
                counts = {v.value: v.frequency for v in feature.string_stats.top_values}
                total = sum(counts.values()) or 1
                return {k: v / total for k, v in counts.items()}
    return {}


def _add_label_drift(record: RunRecord, store) -> None:
    """The class-balance distance the DriftValidator compared, also when it
    passed: a drift past half its threshold is worth a warning."""
    drift = record.component("DriftValidator")
    if not drift:
        return
    events = [e for e in store.get_events_by_execution_ids([drift.execution_id])
              if e.type == metadata_store_pb2.Event.INPUT]
    uris = {e.path.steps[0].key: a.uri for e in events
            for a in store.get_artifacts_by_id([e.artifact_id])}
    if "baseline_statistics" not in uris or "statistics" not in uris:
        return  # a first run has no previous statistics
    for split in ("train", "eval"):
        now, before = class_balance(uris["statistics"], split), class_balance(uris["baseline_statistics"], split)
        if now and before:
            record.label_drift[split] = max(abs(now.get(k, 0) - before.get(k, 0)) for k in {*now, *before})


def _add_training(record: RunRecord) -> None:
    trainer = record.component("Trainer")
    if not trainer or not trainer.outputs.get("model_run"):
        return
    run_dir = trainer.outputs["model_run"][0].uri
    path = os.path.join(run_dir, contract.TRAINING_SUMMARY_FILE)
    if os.path.exists(path):
        with open(path) as f:
            record.training = json.load(f)
    curves = os.path.join(run_dir, contract.TRAINING_CURVES_FILE)
    record.training_curves = curves if os.path.exists(curves) else None
    if record.training_curves:
        with open(curves, "rb") as f:
            record.training_curves_png = f.read()


def _evaluator_output(record: RunRecord, node: str, class_names: list, cache_dir: str) -> tuple:
    """(blessed or None, _read_evaluation's result or None) of an Evaluator node in this run."""
    evaluator = record.component(node)
    if not evaluator:
        return None, None
    blessing, evaluation = evaluator.outputs.get("blessing"), evaluator.outputs.get("evaluation")
    blessed = blessing[0].properties.get("blessed") == 1 if blessing else None
    result = _cached(cache_dir, ["evaluation", evaluation[0].uri, *class_names],
                     lambda: _read_evaluation(evaluation[0].uri, class_names)) if evaluation else None
    return blessed, result


def _add_evaluation(record: RunRecord, cache_dir: str) -> None:
    class_names = (record.training or {}).get("class_names") or []
    record.blessed, result = _evaluator_output(record, "Evaluator", class_names, cache_dir)
    if result is None:
        return
    record.metrics, record.class_metrics = result["metrics"], result["class_metrics"]
    record.source_metrics, record.held_out = result["source_metrics"], result["held_out"]
    record.failed_thresholds.extend(result["failed_thresholds"])


def _add_tflite(record: RunRecord, cache_dir: str) -> None:
    report = (record.training or {}).get("tflite")
    if not report or not record.component("TFLiteEvaluator"):
        return
    record.tflite = dict(report)
    blessed, result = _evaluator_output(record, "TFLiteEvaluator", report.get("class_names", []), cache_dir)
    if blessed is not None:
        record.tflite["blessed"] = blessed
    if result is not None:
        for key in ("metrics", "source_metrics", "failed_thresholds"):
            record.tflite[key] = result[key]


def _cached(cache_dir: str, key: list, read) -> dict:
    """read() once per key, kept as JSON in cache_dir. Only for what an
    artefact's URI fixes (artefacts are never rewritten): a cached run re-reads
    the same Evaluator output, and parsing it needs TFMA, an import too slow to pay
    again for what cannot have changed (benchmarks/RESULTS.md, figures from code comments)."""
    import hashlib

    path = os.path.join(cache_dir, hashlib.sha256("\0".join(key).encode()).hexdigest()[:24] + ".json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        pass
    value = read()
    try:
        os.makedirs(cache_dir, exist_ok=True)
        with open(path + ".partial", "w") as f:
            json.dump(value, f)
        os.replace(path + ".partial", path)
    except OSError:  # a read-only root is still read, uncached
        pass
    return value


def _read_evaluation(uri: str, class_names: list) -> dict:
    """The Evaluator's output at uri: metrics overall, by class and by source,
    the held-out floors, and why the model failed its thresholds."""
    import tensorflow_model_analysis as tfma

    result = {"metrics": {}, "class_metrics": {}, "source_metrics": {}, "failed_thresholds": []}
    for metrics_for_slice in tfma.load_metrics(uri):
        slice_keys = {k.column: (k.bytes_value.decode() if k.HasField("bytes_value") else k.int64_value)
                      for k in metrics_for_slice.slice_key.single_slice_keys}
        values = {}
        for kv in metrics_for_slice.metric_keys_and_values:
            if kv.key.model_name == "baseline" or kv.key.is_diff:
                continue
            if kv.value.HasField("double_value"):
                name = kv.key.name
                if kv.key.HasField("sub_key") and kv.key.sub_key.HasField("class_id"):  # per class (binarized)
                    class_id = kv.key.sub_key.class_id.value
                    name += f"[{class_names[class_id] if class_id < len(class_names) else class_id}]"
                values[name] = kv.value.double_value.value
        if not slice_keys:
            result["metrics"] = values
        elif contract.CLASS_NAME_KEY in slice_keys:
            result["class_metrics"][str(slice_keys[contract.CLASS_NAME_KEY])] = values
        elif contract.SOURCE_KEY in slice_keys:
            result["source_metrics"][str(slice_keys[contract.SOURCE_KEY])] = values
    result["held_out"] = held_out_floors(uri)
    validation = tfma.load_validation_result(uri)
    for per_slice in validation.metric_validations_per_slice:
        where = ", ".join(f"{k.column}={k.bytes_value.decode() if k.HasField('bytes_value') else k.int64_value}"
                          for k in per_slice.slice_key.single_slice_keys)
        for failure in per_slice.failures:
            what = "change vs last blessed model" if failure.metric_key.is_diff else "value"
            result["failed_thresholds"].append(
                f"{failure.metric_key.name} {what} {failure.metric_value.double_value.value:.4g} "
                f"does not meet {_threshold_text(failure.metric_threshold)}"
                + (f" on {where} (held-out art the model never trained on)" if where else ""))
    for missing in validation.missing_slices:
        result["failed_thresholds"].append(f"no eval examples for the gated slice {dict(missing.feature_values)}")
    return result


def held_out_floors(evaluation_uri: str) -> dict:
    """{held-out source: the accuracy it must reach}, from the Evaluator's own config."""
    from tensorflow_model_analysis.writers import eval_config_writer

    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    floors = {}
    for spec in eval_config.metrics_specs if eval_config else []:
        for metric in spec.metrics:
            for per_slice in metric.per_slice_thresholds:
                for slicing in per_slice.slicing_specs:
                    if contract.SOURCE_KEY in slicing.feature_values:
                        floors[slicing.feature_values[contract.SOURCE_KEY]] = \
                            per_slice.threshold.value_threshold.lower_bound.value
    return floors


def _threshold_text(threshold) -> str:
    if threshold.HasField("value_threshold"):
        bound = threshold.value_threshold
        parts = [f">= {bound.lower_bound.value:g}" if bound.HasField("lower_bound") else "",
                 f"<= {bound.upper_bound.value:g}" if bound.HasField("upper_bound") else ""]
        return " and ".join(p for p in parts if p)
    change = threshold.change_threshold
    return f"absolute change >= {change.absolute.value:g}" if change.HasField("absolute") else str(change).strip()


def _add_serving_check(record: RunRecord) -> None:

    check = record.component("ServingCheck")
    blessing = check.outputs.get("blessing") if check else None
    path = os.path.join(blessing[0].uri, contract.SERVING_CHECK_FILE) if blessing else None
    if path and os.path.exists(path):
        with open(path) as f:
            record.serving_check = json.load(f)


def _add_push(record: RunRecord) -> None:
    pusher = record.component("Pusher")
    if not pusher:
        return
    pushed = pusher.outputs.get("pushed_model")
    if pushed and pushed[0].properties.get("pushed") == 1:
        props = pushed[0].properties
        record.pushed_dir = props.get("pushed_destination", "")
        record.pushed_version = props.get("pushed_version", "")
        record.model_card = model_card_file(record.pushed_dir)


def model_card_file(pushed_dir: Optional[str]) -> Optional[str]:
    """The model_card.html in a pushed model's folder, if it is there."""
    if not pushed_dir:
        return None
    path = os.path.join(pushed_dir, "model_card.html")
    return path if os.path.isfile(path) else None


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
    record: RunRecord
    statistics: list  # [SplitStatistics]
    schema: list  # [(feature, type, presence, domain)]
    schema_uri: Optional[str]
    lineage: list  # [LineageNode] roots
    examples_uri: Optional[str]  # for the HTML report's sample images
    schema_diff: list = dataclasses.field(default_factory=list)  # schema.diff rows: SchemaGen vs curated
    inferred_schema_uri: Optional[str] = None  # SchemaGen's schema.pbtxt
    # {class name: [(file name, small PNG)]} from the train split (read_samples; None until read).
    samples: Optional[dict] = None


def inspect_run(sqlite_path: str, pipeline_name: str, run_id: Optional[str] = None) -> Inspection:
    """read_run(), and what `happysad inspect` adds: statistics, schema, lineage (samples: read_samples)."""
    record = read_run(sqlite_path, pipeline_name, run_id)
    store = metadata.open_store(sqlite_path)
    schema_rows, schema_path = _schema(record)
    inferred_path = inferred_schema_path(record)
    return Inspection(
        record=record,
        statistics=_statistics(record),
        schema=schema_rows,
        schema_uri=schema_path,
        lineage=_lineage(store, record),
        examples_uri=_first_uri(record, "ImportExampleGen", "examples"),
        schema_diff=schema.diff(schema.read(schema_path), schema.read(inferred_path))
        if schema_path and inferred_path else [],
        inferred_schema_uri=inferred_path,
    )


def inferred_schema_path(record) -> Optional[str]:
    """SchemaGen's schema.pbtxt in this run (None if it did not run)."""
    uri = _first_uri(record, "SchemaGen", "schema")
    return os.path.join(uri, "schema.pbtxt") if uri else None


def _first_uri(record, node: str, key: str) -> Optional[str]:
    component = record.component(node)
    artifacts = component.outputs.get(key) if component else None
    return artifacts[0].uri if artifacts else None


def _statistics(record) -> list:
    stats_uri = _first_uri(record, "StatisticsGen", "statistics")
    if not stats_uri:
        return []
    import tensorflow_data_validation as tfdv

    images_uri = _first_uri(record, "ImageValidator", "anomalies")
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


def _schema(record):
    uri = _first_uri(record, "ImportSchemaGen", "schema")
    if not uri:
        return [], None
    path = os.path.join(uri, "schema.pbtxt")
    return schema.describe(schema.read(path)), path


def _lineage(store, record) -> list:
    """Trees from the run's final artefacts back to its inputs.

    Roots: the pushed model (if any) and the anomalies the DataGate judged;
    without either, every artefact the run output that no execution of the
    run read."""
    run_executions = {c.execution_id for c in record.components}
    events = store.get_events_by_execution_ids(list(run_executions))
    consumed = {e.artifact_id for e in events if e.type == metadata_store_pb2.Event.INPUT}
    produced = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    pushed = record.component("Pusher")
    pushed_ids = [a.id for a in (pushed.outputs.get("pushed_model", []) if pushed else [])
                  if a.properties.get("pushed") == 1]
    gate = record.component(configs.DATA_GATE_ID)
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


def read_samples(examples_uri: Optional[str], per_class: int) -> Optional[dict]:
    """{class name: [(file name, PNG bytes)]}: the first per_class images of each class in the
    train split, re-encoded at 75x75 at most (None without examples). An image that does not
    decode is left out."""
    if not examples_uri:
        return None
    import io

    import tensorflow as tf
    from PIL import Image

    from happysad.components.examples_artifact import split_records

    per_class_found: dict = {}
    for record in split_records(examples_uri, "train"):
        feature = tf.train.Example.FromString(record).features.feature
        name = feature[contract.CLASS_NAME_KEY].bytes_list.value[0].decode(errors="replace")
        if len(per_class_found.setdefault(name, [])) < per_class:
            try:  # re-encode small: the report stays light and shows what decodes
                image = Image.open(io.BytesIO(feature[contract.IMAGE_KEY].bytes_list.value[0])).convert("RGB")
                image.thumbnail((75, 75))
                buf = io.BytesIO()
                image.save(buf, "PNG")
                per_class_found[name].append(
                    (feature[contract.FILENAME_KEY].bytes_list.value[0].decode(errors="replace"), buf.getvalue()))
            except Exception:
                continue
    return per_class_found
