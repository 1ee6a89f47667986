"""`happysad compile --target kubeflow-v2`: the same pipeline as a KFP v2 / Vertex AI spec, offline."""
import json
import subprocess

from helpers import HAPPYSAD, REPO

COMPONENTS = ["ImportExampleGen", "ImportSchemaGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
              "SkewValidator", "DriftValidator", "ImageValidator", "DataGate", "Trainer", "Evaluator", "PixelExamples",
              "TFLiteEvaluator", "ServingCheck", "Pusher"]


def test_compiles_every_component_and_the_trainer_module(tmp_path):
    out = tmp_path / "spec" / "happysad.json"
    root = tmp_path / "shared" / "root"  # stands in for gs://: compile writes the schema here
    result = subprocess.run(
        [HAPPYSAD, "compile", "--target", "kubeflow-v2", str(out), "--pipeline-root", str(root),
         "--examples-dir", str(tmp_path / "shared" / "tfrecords"), "--serving-dir", str(tmp_path / "shared" / "serving"),
         "--classes", "happy,sad,surprised", "--image", "example.registry/happysad:1",
         "--beam-arg=--runner=DataflowRunner", "--beam-arg=--region=europe-west4"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "INFO" not in result.stdout  # the compiler's noise went to the log
    spec = json.loads(out.read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    for component in COMPONENTS:
        assert component in tasks, component
    assert any(t.startswith("latest_blessed_model_resolver") for t in tasks)
    assert "previous_statistics_resolver" in tasks
    assert "DataGate" in tasks["Trainer"]["dependentTasks"]  # no training on rejected data

    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    assert {e["container"]["image"] for e in executors.values() if "container" in e} == {"example.registry/happysad:1"}
    assert "components.image_validator.ImageValidator_Executor" in json.dumps(executors)
    trainer = json.dumps(tasks["Trainer"])
    # The image's installed package holds the Trainer's code; its hash travels in the spec, so a
    # code change is a new Trainer execution (no user-code wheel to upload).
    from happysad.components import TRAINER_RUN_FN, trainer_code_version

    assert TRAINER_RUN_FN in trainer and trainer_code_version() in trainer
    assert not (root / "_wheels").exists()
    # The schema the run imports is the curated one for this class set, also on the shared root.
    (schema,) = (root / "schema").glob("schema-*.pbtxt")
    assert 'value: "surprised"' in schema.read_text() and str(schema) in json.dumps(tasks["ImportSchemaGen"])
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == str(root)
    assert "--runner=DataflowRunner" in json.dumps(tasks["StatisticsGen"]) + json.dumps(executors)

    # The gate travels with the spec: the Evaluator's thresholds, its baseline, and both blessings at the Pusher.
    evaluator = tasks["Evaluator"]
    assert evaluator["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"]["producerTask"].startswith(
        "latest_blessed_model_resolver")
    eval_config = json.loads(evaluator["inputs"]["parameters"]["eval_config"]["runtimeValue"]["constantValue"]
                             ["stringValue"])
    (accuracy,) = [m for spec_ in eval_config["metrics_specs"] for m in spec_["metrics"]
                   if m["class_name"] == "SparseCategoricalAccuracy"]  # three classes: the categorical gate
    threshold = accuracy["per_slice_thresholds"][0]["threshold"]
    assert threshold["value_threshold"]["lower_bound"] == 0.75
    assert threshold["change_threshold"] == {"absolute": -1e-06, "direction": "HIGHER_IS_BETTER"}
    pusher = tasks["Pusher"]["inputs"]["artifacts"]
    assert pusher["model_blessing"]["taskOutputArtifact"]["producerTask"] == "Evaluator"
    assert pusher["infra_blessing"]["taskOutputArtifact"]["producerTask"] == "ServingCheck"
