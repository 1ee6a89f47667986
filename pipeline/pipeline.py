"""create_pipeline(): the happysad TFX pipeline, with no physical paths of its own.

ImportExampleGen + ImportSchemaGen (the curated schema) -> StatisticsGen -> SchemaGen (its
inference, shown beside the curated schema, never gated on), and four checks:
  ExampleValidator  statistics vs. the schema
  SkewValidator     eval vs. train class balance
  DriftValidator    vs. the previous run's statistics
  ImageValidator    decodes every image: format, size, colour mode, label
-> DataGate (fails the run on any anomaly) -> Trainer (a SavedModel, and TFLite beside it)
-> Evaluator (vs. the latest blessed model) and ServingCheck (loads and runs it as TF
Serving does, in process and over `happysad serve`) -> Pusher (only a model both bless).
Beside them, PixelExamples -> TFLiteEvaluator judges the TFLite model (reported).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Optional, Sequence

import tensorflow_model_analysis as tfma
from ml_metadata.proto import metadata_store_pb2
from tfx import v1 as tfx
from tfx.components import DistributionValidator  # not exported by tfx.v1 in 1.16
from tfx.dsl.components.base import executor_spec

from happysad.components import atomic_pusher, resolvers
from happysad.components.data_gate import DataGate
from happysad.components.image_validator import ImageValidator
from happysad.components.pixel_examples import PixelExamples
from happysad.components.serving_check import ServingCheck
from happysad import contract
from happysad.pipeline import configs


EVALUATOR_ID = "Evaluator"  # the baseline resolver counts only this node's blessings


def _overall(threshold: tfma.MetricThreshold) -> list:
    # A plain `threshold` would also apply to the per-class slices, where AUC is
    # undefined (one class only) and would fail every model.
    return [tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=threshold)]


def _eval_config(gate: configs.GateConfig, num_classes: int, held_out_sources: Sequence[str] = (),
                 tflite: bool = False) -> tfma.EvalConfig:
    """Two classes: binary accuracy and AUC gate the model. Three or more:
    categorical accuracy does (AUC has no single multi-class value), and
    per-class recall is reported. Metrics are sliced by class and by source;
    the accuracy on each held-out source (art the model never trained on)
    must reach gate.min_unseen_accuracy: our own faces alone would bless a
    model that reads real emoji at chance. tflite: the same metrics and
    thresholds for the TFLite model beside the SavedModel (TFMA's tf_lite
    model type, fed PixelExamples; no baseline, so no change threshold)."""
    no_regression = tfma.GenericChangeThreshold(direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                                                absolute={"value": -gate.max_accuracy_drop})

    def at_least(bound: float) -> tfma.GenericValueThreshold:
        return tfma.GenericValueThreshold(lower_bound={"value": bound})

    # A held-out source missing from the eval data fails the gate (TFMA: missing slice).
    def floor(name: str) -> float:
        return gate.min_variants_accuracy if name == contract.VARIANTS_SOURCE else gate.min_unseen_accuracy

    unseen = [tfma.PerSliceMetricThreshold(
        slicing_specs=[tfma.SlicingSpec(feature_values={contract.SOURCE_KEY: name})],
        threshold=tfma.MetricThreshold(value_threshold=at_least(floor(name)))) for name in held_out_sources]
    if num_classes == 2:
        metrics_specs = [tfma.MetricsSpec(metrics=[
            tfma.MetricConfig(class_name="ExampleCount"),
            tfma.MetricConfig(class_name="BinaryAccuracy", per_slice_thresholds=_overall(tfma.MetricThreshold(
                value_threshold=at_least(gate.min_accuracy), change_threshold=no_regression)) + unseen),
            tfma.MetricConfig(class_name="AUC", per_slice_thresholds=_overall(tfma.MetricThreshold(
                value_threshold=at_least(gate.min_auc)))),
            tfma.MetricConfig(class_name="Precision"),
            tfma.MetricConfig(class_name="Recall"),
        ])]
    else:
        metrics_specs = [
            tfma.MetricsSpec(metrics=[
                tfma.MetricConfig(class_name="ExampleCount"),
                tfma.MetricConfig(class_name="SparseCategoricalAccuracy",
                                  per_slice_thresholds=_overall(tfma.MetricThreshold(
                                      value_threshold=at_least(gate.min_accuracy),
                                      change_threshold=no_regression)) + unseen),
            ]),
            tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="Recall")],
                             binarize=tfma.BinarizationOptions(class_ids={"values": list(range(num_classes))})),
        ]
    model_spec = (tfma.ModelSpec(model_type=tfma.TF_LITE, label_key=contract.LABEL_KEY) if tflite else
                  tfma.ModelSpec(signature_name=contract.EVAL_SIGNATURE, label_key=contract.LABEL_KEY,
                                 prediction_key=contract.EVAL_PREDICTION_KEY))
    return tfma.EvalConfig(
        model_specs=[model_spec],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=[contract.CLASS_NAME_KEY]),
                       tfma.SlicingSpec(feature_keys=[contract.SOURCE_KEY])],
        metrics_specs=metrics_specs,
    )


def _label_comparator(threshold: float, split_pairs) -> dict:
    """DistributionValidator arguments: compare the class-name distribution of
    each (test, baseline) split pair by L-infinity distance."""
    from tensorflow_metadata.proto.v0 import path_pb2, schema_pb2

    comparator = tfx.proto.DistributionValidatorConfig
    return {
        "config": comparator(default_slice_config=comparator.DatasetConfig(feature=[
            tfx.proto.FeatureComparator(
                path=path_pb2.Path(step=[contract.CLASS_NAME_KEY]),
                distribution_comparator=schema_pb2.FeatureComparator(
                    infinity_norm=schema_pb2.InfinityNorm(threshold=threshold)))])),
        "include_split_pairs": split_pairs,
    }


def _resolver(builtin: bool, strategy, producer, pipeline_name: str, gate_id: str = "", num_spans: int = 0,
              blessed_by: str = "", **channels) -> tfx.dsl.Resolver:
    """A Resolver for earlier runs' output of `producer`.

    Ours (components/resolvers.py) leave out the producer's latest output, so
    they run after it: where a cached producer's latest output is this run's
    own, TFX's strategies would hand it back. With `gate_id` (the DataGate's)
    they also leave out what runs the gate rejected; with `blessed_by`, blessings
    from any other node. With builtin=True, TFX's own
    strategy runs instead, with no upstream edge - the only strategies the
    Kubeflow V2 compiler accepts; there resolvers run as queries before the
    run, and a rejected run's output is not left out."""
    if builtin:
        if strategy is resolvers.AcceptedSpansStrategy:
            raise ValueError("spans need the span-window resolver, which only the local runners run: the Kubeflow "
                             "V2 compiler accepts TFX's latest-artifact and latest-blessed-model resolvers alone")
        tfx_strategy = (tfx.dsl.experimental.LatestBlessedModelStrategy
                        if issubclass(strategy, tfx.dsl.experimental.LatestBlessedModelStrategy)
                        else tfx.dsl.experimental.LatestArtifactStrategy)
        return tfx.dsl.Resolver(strategy_class=tfx_strategy, **channels)
    config = {"producer_context": f"{pipeline_name}.{producer.id}"}
    if gate_id:
        config["gate_context"] = f"{pipeline_name}.{gate_id}"
    if num_spans:
        config["num_spans"] = num_spans
    if blessed_by:
        config["blessing_context"] = f"{pipeline_name}.{blessed_by}"
    node = tfx.dsl.Resolver(strategy_class=strategy, config=config, **channels)
    node.add_upstream_node(producer)
    return node


def import_example_gen(examples_dir: str, presplit: bool, spans: bool = False) -> tfx.components.ImportExampleGen:
    """ImportExampleGen over examples_dir. presplit: ingestion's train and eval
    files, as they are (ingestion split them, holding out whole sources); with
    `spans`, those of the newest span-N/ folder, recorded as the artifact's
    span. Otherwise every *.tfrecord.gz there (made elsewhere), split 4:1 into
    train/eval by a hash of the file name."""
    span = f"{contract.SPAN_PREFIX}{{SPAN}}/" if spans else ""
    if presplit:
        return tfx.components.ImportExampleGen(
            input_base=examples_dir,
            input_config=tfx.proto.Input(splits=[
                tfx.proto.Input.Split(name=split, pattern=f"{span}{split}.tfrecord.gz") for split in contract.SPLITS]))
    return tfx.components.ImportExampleGen(
        input_base=examples_dir,
        input_config=tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name="all", pattern=f"{span}*.tfrecord.gz")]),
        output_config=tfx.proto.Output(split_config=tfx.proto.SplitConfig(
            splits=[tfx.proto.SplitConfig.Split(name="train", hash_buckets=configs.TRAIN_BUCKETS),
                    tfx.proto.SplitConfig.Split(name="eval", hash_buckets=configs.EVAL_BUCKETS)],
            partition_feature_name=configs.SPLIT_FEATURE)),
    )


def create_pipeline(
    *,
    pipeline_name: str,
    pipeline_root: str,
    examples_dir: str,
    schema_file: str,
    trainer_run_fn: str,
    trainer_code_version: str,
    serving_model_dir: str,
    class_names: Sequence[str],
    presplit: bool = False,
    held_out_sources: Sequence[str] = (),
    training: configs.TrainingConfig = configs.TrainingConfig(),
    gate: configs.GateConfig = configs.GateConfig(),
    validation: configs.ValidationConfig = configs.ValidationConfig(),
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_pipeline_args: Optional[Sequence[str]] = None,
    enable_cache: bool = True,
    builtin_resolvers: bool = False,
    span_window: int = 0,
) -> tfx.dsl.Pipeline:
    """Builds the pipeline.

    examples_dir holds GZIP TFRecords of tf.Examples: ingestion's split files
    (presplit) or any `*.tfrecord.gz`; held_out_sources are the `source`
    values the model never trained on, each gated by gate.min_unseen_accuracy;
    schema_file is the curated schema for class_names (pipeline/schema.py);
    serving_model_dir is where blessed models land as <dir>/<version>/;
    builtin_resolvers picks TFX's own resolver strategies (see _resolver);
    span_window > 0: examples_dir holds span-N/ folders, each run takes the
    newest span, and the Trainer trains on the latest span_window spans that
    passed the DataGate (validation, the Evaluator and the ServingCheck see
    the newest span).
    """
    example_gen = import_example_gen(examples_dir, presplit, spans=span_window > 0)
    schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_file)
    # With the schema, TFDV treats the image as bytes (sizes, not top values).
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"])
    # SchemaGen's own inference, beside the curated schema: not gated on, shown
    # against it by `happysad inspect`, and promoted feature by feature on
    # purpose (`happysad schema --promote`).
    inferred_schema = tfx.components.SchemaGen(statistics=statistics_gen.outputs["statistics"],
                                               infer_feature_shape=False)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    skew_validator = DistributionValidator(
        statistics=statistics_gen.outputs["statistics"],
        baseline_statistics=statistics_gen.outputs["statistics"],
        **_label_comparator(validation.max_label_skew, [("eval", "train")]),
    ).with_id("SkewValidator")
    # The statistics of the last run whose data the gate accepted (none on the
    # first run: the drift check then passes).
    previous_statistics = _resolver(
        builtin_resolvers, resolvers.PreviousAcceptedArtifactStrategy, statistics_gen, pipeline_name,
        gate_id=configs.DATA_GATE_ID,
        statistics=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ExampleStatistics),
    ).with_id("previous_statistics_resolver")
    drift_validator = DistributionValidator(
        statistics=statistics_gen.outputs["statistics"],
        baseline_statistics=previous_statistics.outputs["statistics"].as_optional(),
        **_label_comparator(validation.max_label_drift, [("train", "train"), ("eval", "eval")]),
    ).with_id("DriftValidator")
    image_validator = ImageValidator(
        examples=example_gen.outputs["examples"],
        class_names=json.dumps(sorted(class_names)),
        height=validation.image_height,
        width=validation.image_width,
    )
    data_gate = DataGate(
        schema_anomalies=example_validator.outputs["anomalies"],
        image_anomalies=image_validator.outputs["anomalies"],
        skew_anomalies=skew_validator.outputs["anomalies"],
        drift_anomalies=drift_validator.outputs["anomalies"],
    ).with_id(configs.DATA_GATE_ID)

    span_nodes = []
    training_examples = example_gen.outputs["examples"]
    if span_window:
        # The rolling window: the newest spans whose data passed the gate (this
        # run's among them, so the resolver runs after the gate).
        spans = _resolver(
            builtin_resolvers, resolvers.AcceptedSpansStrategy, example_gen, pipeline_name,
            gate_id=configs.DATA_GATE_ID,
            num_spans=span_window, examples=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Examples,
                                                           producer_component_id=example_gen.id,
                                                           output_key="examples"),
        ).with_id("span_window_resolver")
        spans.add_upstream_node(data_gate)
        span_nodes.append(spans)
        training_examples = spans.outputs["examples"]

    trainer = tfx.components.Trainer(
        run_fn=trainer_run_fn,
        examples=training_examples,
        schema=schema_gen.outputs["schema"],
        # Epochs, not steps, drive training (custom_config); TFX requires the args.
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={
            **dataclasses.asdict(training),
            "class_names": sorted(class_names),
            "code_version": trainer_code_version,  # a code change re-runs a cached Trainer
        },
    )

    trainer.add_upstream_node(data_gate)  # no training on rejected data

    # The last model the Evaluator blessed (other than the candidate, and
    # whose files still exist) is its baseline: a new model must not regress.
    model_resolver = _resolver(
        builtin_resolvers, resolvers.LatestBlessedOtherModelStrategy, trainer, pipeline_name, blessed_by=EVALUATOR_ID,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")

    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        example_splits=["eval"],
        eval_config=_eval_config(gate, len(class_names), held_out_sources),
    ).with_id(EVALUATOR_ID)
    # The TFLite model the Trainer wrote beside the SavedModel, judged by TFMA
    # on the eval split as a phone would feed it (decoded by the documented
    # preprocessing), against the same thresholds. Reported, not gating: the
    # Trainer keeps the float model when int8 loses accuracy.
    pixel_examples = PixelExamples(examples=example_gen.outputs["examples"])
    pixel_examples.add_upstream_node(data_gate)  # only data the gate accepted: it would fail on undecodable images
    tflite_evaluator = tfx.components.Evaluator(
        examples=pixel_examples.outputs["pixel_examples"],
        model=trainer.outputs["model"],
        example_splits=["eval"],
        eval_config=_eval_config(gate, len(class_names), held_out_sources, tflite=True),
    ).with_id("TFLiteEvaluator")
    # InfraValidator's job without Docker: TF Serving's session-based loader in
    # process, then a real `happysad serve` on loopback.
    serving_check = ServingCheck(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        class_names=json.dumps(sorted(class_names)),
        over_server_fn=configs.SERVING_CHECK_OVER_SERVER,
    )
    # TFX's Pusher (its PushedModel, its blessing checks), writing each version
    # aside and renaming it into place: TF Serving never sees half a model.
    pusher = tfx.components.Pusher(
        custom_executor_spec=executor_spec.ExecutorClassSpec(atomic_pusher.Executor),
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=serving_check.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=serving_model_dir)),
    )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, inferred_schema, example_validator, skew_validator,
                    previous_statistics, drift_validator, image_validator, data_gate,
                    *span_nodes, trainer, model_resolver, evaluator, pixel_examples, tflite_evaluator, serving_check,
                    pusher],
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args or []),
    )
