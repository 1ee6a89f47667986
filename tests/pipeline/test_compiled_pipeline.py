"""The runner's compiled-pipeline cache: a run with unchanged configuration and
code reuses TFX's IR instead of building every component again."""
from pathlib import Path

import pytest

from happysad.pipeline import configs, local_runner, metadata, pipeline, schema


def _arguments(tmp_path: Path, **changes) -> dict:
    arguments = dict(
        pipeline_name=configs.PIPELINE_NAME, pipeline_root=str(tmp_path / "root"),
        examples_dir=str(tmp_path / "examples"),
        schema_file=schema.write_for_classes(["happy", "sad"], tmp_path / "schema"),
        trainer_run_fn="happysad.components.trainer.trainer_module.run_fn", trainer_code_version="v1",
        serving_model_dir=str(tmp_path / "serving"), class_names=["happy", "sad"], presplit=True,
        held_out_sources=["noto"], training=configs.TrainingConfig(),
        metadata_connection_config=metadata.connection_config(str(tmp_path / "metadata.sqlite")),
        beam_pipeline_args=["--direct_num_workers=1"], enable_cache=True)
    arguments.update(changes)
    return arguments


@pytest.fixture
def builds(monkeypatch):
    """Counts create_pipeline calls (each is a full build of the components)."""
    calls = []
    real = pipeline.create_pipeline

    def counting(**arguments):
        calls.append(arguments)
        return real(**arguments)

    monkeypatch.setattr(pipeline, "create_pipeline", counting)
    return calls


def test_the_same_configuration_is_compiled_once(tmp_path, builds):
    ir_dir = tmp_path / "ir"
    first = local_runner.compiled_pipeline(ir_dir, _arguments(tmp_path))
    second = local_runner.compiled_pipeline(ir_dir, _arguments(tmp_path))
    assert len(builds) == 1
    assert first == second
    assert {n.pipeline_node.node_info.id for n in second.nodes} >= {"Trainer", "Evaluator", "Pusher", "DataGate"}


@pytest.mark.parametrize("change", [
    {"training": configs.TrainingConfig(epochs=3)},
    {"held_out_sources": ["twemoji"]},
    {"trainer_code_version": "v2"},
    {"enable_cache": False},
])
def test_any_change_in_configuration_compiles_again(tmp_path, builds, change):
    ir_dir = tmp_path / "ir"
    local_runner.compiled_pipeline(ir_dir, _arguments(tmp_path))
    changed = local_runner.compiled_pipeline(ir_dir, _arguments(tmp_path, **change))
    assert len(builds) == 2
    assert len(list(ir_dir.glob("pipeline-*.pb"))) == 1  # the other configuration's IR is dropped
    if "training" in change:  # and the new IR carries the change
        trainer = next(n.pipeline_node for n in changed.nodes if n.pipeline_node.node_info.id == "Trainer")
        assert '"epochs": 3' in trainer.parameters.parameters["custom_config"].field_value.string_value


def test_a_change_in_the_package_code_compiles_again(tmp_path, builds, monkeypatch):
    ir_dir = tmp_path / "ir"
    local_runner.compiled_pipeline(ir_dir, _arguments(tmp_path))
    monkeypatch.setattr(local_runner, "package_code_version", lambda: "edited")
    local_runner.compiled_pipeline(ir_dir, _arguments(tmp_path))
    assert len(builds) == 2


def test_a_damaged_ir_file_is_compiled_again(tmp_path, builds):
    ir_dir = tmp_path / "ir"
    good = local_runner.compiled_pipeline(ir_dir, _arguments(tmp_path))
    (path,) = ir_dir.glob("pipeline-*.pb")
    path.write_bytes(b"\xff not a pipeline")
    assert local_runner.compiled_pipeline(ir_dir, _arguments(tmp_path)) == good
    assert len(builds) == 2
