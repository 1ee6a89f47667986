"""What a pipeline run did, read back from ML Metadata (not by globbing folders).

read_run() -> RunSummary; format_summary() turns it into the lines
`happysad run` ends with.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2

from happysad.components.examples_artifact import span_of
from happysad import contract
from happysad.pipeline import metadata

# On a one-class slice only these mean anything (AUC, precision, recall do not).
ACCURACY_METRICS = ("binary_accuracy", "sparse_categorical_accuracy")  # 2 classes / 3 or more
CLASS_METRICS = (*ACCURACY_METRICS, "example_count")


def accuracy(metrics: dict) -> Optional[float]:
    """The accuracy TFMA reported, whichever head the model has."""
    return next((metrics[k] for k in ACCURACY_METRICS if k in metrics), None)


CACHE_DIR = "summary_cache"  # beside metadata.sqlite: what was read from immutable artefacts
_STATES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


@dataclasses.dataclass
class ComponentRun:
    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
    seconds: float
    outputs: dict  # output key -> [MLMD Artifact]
    execution_id: int
    note: str = ""  # e.g. why a killed run's execution was marked CANCELED


@dataclasses.dataclass
class RunSummary:
    run_id: str
    components: list  # [ComponentRun] in execution order
    training: Optional[dict]  # the Trainer's training_summary.json
    training_curves: Optional[str]
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

    def component(self, node_id: str) -> Optional[ComponentRun]:
        return next((c for c in self.components if c.node_id == node_id), None)


def read_run(sqlite_path: str, pipeline_name: str, run_id: Optional[str] = None) -> RunSummary:
    """Summarises one run of `pipeline_name` (default: the newest)."""
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
            outputs=metadata.artifacts(store, execution.id),
            execution_id=execution.id,
            note=execution.custom_properties["abandoned"].string_value
            if "abandoned" in execution.custom_properties else "",
        ))
    summary = RunSummary(run.name, components, None, None, {}, {}, [], None, None, None)
    _add_spans(summary, store)
    _add_validation(summary)
    _add_label_drift(summary, store)
    _add_training(summary)
    cache_dir = os.path.join(os.path.dirname(os.path.abspath(sqlite_path)), CACHE_DIR)
    _add_evaluation(summary, cache_dir)
    _add_tflite(summary, cache_dir)
    _add_serving_check(summary)
    _add_push(summary)
    return summary


def _add_spans(summary: RunSummary, store) -> None:
    example_gen = summary.component("ImportExampleGen")
    examples = example_gen.outputs.get("examples", []) if example_gen else []
    current = span_of(examples[0]) if examples else 0
    if not current:  # not a span root (ExampleGen records span 0)
        return
    summary.spans = {"current": current}
    trainer = summary.component("Trainer")
    if trainer:
        trained = metadata.artifacts(store, trainer.execution_id, metadata.INPUT).get("examples", [])
        summary.spans["trained_on"] = sorted(span_of(a) for a in trained)


def format_spans(summary: RunSummary) -> list:
    if not summary.spans:
        return []
    trained = summary.spans.get("trained_on")
    return [f"spans: this run took span {summary.spans['current']}"
            + (f"; the model trained on span{'s' if len(trained) > 1 else ''} {', '.join(map(str, trained))}"
               if trained else "; nothing was trained")]


def _add_validation(summary: RunSummary) -> None:
    from happysad.components import anomalies as anomalies_lib

    for c in summary.components:
        for artifact in c.outputs.get("anomalies", []):
            summary.anomalies[c.node_id] = anomalies_lib.read(artifact.uri)


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


def _add_label_drift(summary: RunSummary, store) -> None:
    """The class-balance distance the DriftValidator compared, also when it
    passed: a drift past half its threshold is worth a warning."""
    drift = summary.component("DriftValidator")
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
            summary.label_drift[split] = max(abs(now.get(k, 0) - before.get(k, 0)) for k in {*now, *before})


def format_anomalies(summary: RunSummary) -> list:
    """One line per validator, then one per anomaly it found."""
    lines = []
    for node, found in summary.anomalies.items():
        lines.append(f"  {node}: " + (f"{len(found)} anomal{'y' if len(found) == 1 else 'ies'}" if found
                                      else "no anomalies"))
        lines.extend(f"    {a.sentence()}" for a in found)
    return lines


def _add_training(summary: RunSummary) -> None:
    trainer = summary.component("Trainer")
    if not trainer or not trainer.outputs.get("model_run"):
        return
    run_dir = trainer.outputs["model_run"][0].uri
    path = os.path.join(run_dir, contract.TRAINING_SUMMARY_FILE)
    if os.path.exists(path):
        with open(path) as f:
            summary.training = json.load(f)
    curves = os.path.join(run_dir, contract.TRAINING_CURVES_FILE)
    summary.training_curves = curves if os.path.exists(curves) else None


def _evaluator_output(summary: RunSummary, node: str, class_names: list, cache_dir: str) -> tuple:
    """(blessed or None, _read_evaluation's result or None) of an Evaluator node in this run."""
    evaluator = summary.component(node)
    if not evaluator:
        return None, None
    blessing, evaluation = evaluator.outputs.get("blessing"), evaluator.outputs.get("evaluation")
    blessed = blessing[0].custom_properties["blessed"].int_value == 1 if blessing else None
    result = _cached(cache_dir, ["evaluation", evaluation[0].uri, *class_names],
                     lambda: _read_evaluation(evaluation[0].uri, class_names)) if evaluation else None
    return blessed, result


def _add_evaluation(summary: RunSummary, cache_dir: str) -> None:
    class_names = (summary.training or {}).get("class_names") or []
    summary.blessed, result = _evaluator_output(summary, "Evaluator", class_names, cache_dir)
    if result is None:
        return
    summary.metrics, summary.class_metrics = result["metrics"], result["class_metrics"]
    summary.source_metrics, summary.held_out = result["source_metrics"], result["held_out"]
    summary.failed_thresholds.extend(result["failed_thresholds"])


def _add_tflite(summary: RunSummary, cache_dir: str) -> None:
    report = (summary.training or {}).get("tflite")
    if not report or not summary.component("TFLiteEvaluator"):
        return
    summary.tflite = dict(report)
    blessed, result = _evaluator_output(summary, "TFLiteEvaluator", report.get("class_names", []), cache_dir)
    if blessed is not None:
        summary.tflite["blessed"] = blessed
    if result is not None:
        for key in ("metrics", "source_metrics", "failed_thresholds"):
            summary.tflite[key] = result[key]


def format_tflite(summary: RunSummary) -> list:
    """The TFLite model's line: chosen variant and size, TFMA's accuracy beside the SavedModel's, latency."""
    t = summary.tflite
    if not t:
        return []
    chosen, other = t["chosen"], "float32" if t["chosen"] == "int8" else "int8"
    variants = t["variants"]
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
    lines = [f"TFLite ({chosen}, {variants[chosen]['bytes'] / 1e6:.1f} MB; {other} {variants[other]['bytes'] / 1e6:.1f}"
             f" MB): {shown}; batch-1 on one core {variants[chosen]['latency_ms_one_core']} ms; {verdict}".rstrip("; ")]
    lines.extend(f"  {reason}" for reason in t.get("failed_thresholds", []) if t.get("blessed") is False)
    return lines


def _cached(cache_dir: str, key: list, read) -> dict:
    """read() once per key, kept as JSON in cache_dir. Only for what an
    artefact's URI fixes (artefacts are never rewritten): a cached run re-reads
    the same Evaluator output, and parsing it needs TFMA, ~3 s to import here."""
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
    except OSError:  # a read-only root still gets its summary, uncached
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


def _add_serving_check(summary: RunSummary) -> None:

    check = summary.component("ServingCheck")
    blessing = check.outputs.get("blessing") if check else None
    path = os.path.join(blessing[0].uri, contract.SERVING_CHECK_FILE) if blessing else None
    if path and os.path.exists(path):
        with open(path) as f:
            summary.serving_check = json.load(f)


def _add_push(summary: RunSummary) -> None:
    pusher = summary.component("Pusher")
    if not pusher:
        return
    pushed = pusher.outputs.get("pushed_model")
    if pushed and pushed[0].custom_properties["pushed"].int_value == 1:
        props = pushed[0].custom_properties
        summary.pushed_dir = props["pushed_destination"].string_value
        summary.pushed_version = props["pushed_version"].string_value


def source_rows(summary: RunSummary) -> list:
    """(source, examples, accuracy, floor or None, failed) per source, held-out
    ones first; failed: a held-out source under its floor (or unmeasured)."""
    rows = []
    for name, values in summary.source_metrics.items():
        acc, floor = accuracy(values), summary.held_out.get(name)
        failed = floor is not None and (acc is None or acc < floor)
        rows.append((name, int(values.get("example_count", 0)), acc, floor, failed))
    return sorted(rows, key=lambda r: (r[3] is None, r[0]))


def format_sources(summary: RunSummary) -> list:
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


def model_card_path(summary: RunSummary) -> Optional[str]:
    """The pushed model's model_card.html, if it has one."""
    if not summary.pushed_dir:
        return None
    path = os.path.join(summary.pushed_dir, "model_card.html")
    return path if os.path.isfile(path) else None


def format_serving_check(summary: RunSummary) -> list:
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


def format_summary(summary: RunSummary) -> str:
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
                     f"eval accuracy {t['final_val_accuracy']:.4f}; model {t.get('architecture', 'reference')}")
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
        card = model_card_path(summary)
        if card:
            lines.append(f"model card: {card}")
    elif summary.blessed is not None or summary.serving_check is not None:
        lines.append("pushed: nothing (only a model that is blessed and passes the serving check is pushed)")
    return "\n".join(lines)
