"""A push is atomic: a disk that fills up half way (ENOSPC) leaves no version
folder without saved_model.pb, and the next push leaves one complete version.

The Pusher's executor is called as TFX calls it (artifacts in, PushedModel
out), on a small stand-in SavedModel; the copy is made to fail with ENOSPC
after writing part of the model. Seconds, no pipeline run.
"""
import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import io_utils, proto_utils

from happysad.components import atomic_pusher
from happysad.pipeline import configs, metadata, pipeline, schema

Executor = atomic_pusher.Executor


def _model(tmp_path: Path):
    serving = tmp_path / "model" / "Format-Serving"
    (serving / "variables").mkdir(parents=True, exist_ok=True)
    (serving / "assets").mkdir(exist_ok=True)
    (serving / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(1 << 20))
    (serving / "variables" / "variables.index").write_bytes(b"index")
    (serving / "fingerprint.pb").write_bytes(b"fingerprint")
    (serving / "saved_model.pb").write_bytes(b"graph")
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    return model


def _blessing(artifact_class):
    blessing = artifact_class()
    blessing.set_int_custom_property("blessed", 1)
    return blessing


def _push(tmp_path: Path, base: Path, n: int):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed" / str(n))
    os.makedirs(pushed.uri)
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(
        base_directory=str(base)))
    Executor().Do({"model": [_model(tmp_path)], "model_blessing": [_blessing(standard_artifacts.ModelBlessing)],
                   "infra_blessing": [_blessing(standard_artifacts.InfraBlessing)]},
                  {"pushed_model": [pushed]},
                  {"push_destination": proto_utils.proto_to_json(destination)})
    return pushed


def _disk_fills_up_in_serving_dir(monkeypatch, base: Path) -> list:
    """io_utils.copy_dir into `base` writes the variables, then fails as a full
    disk does. Returns the version folders without saved_model.pb that TF
    Serving would have seen at that moment (filled in when it fails)."""
    real = io_utils.copy_dir
    seen_mid_copy = []

    def copy_dir(src, dst, *args, **kwargs):
        if not str(dst).startswith(str(base)):
            return real(src, dst, *args, **kwargs)
        os.makedirs(os.path.join(dst, "variables"), exist_ok=True)
        for name in os.listdir(os.path.join(src, "variables")):
            io_utils.copy_file(os.path.join(src, "variables", name), os.path.join(dst, "variables", name))
        seen_mid_copy.extend(_incomplete_versions(base))
        raise OSError(errno.ENOSPC, "No space left on device", dst)

    monkeypatch.setattr(io_utils, "copy_dir", copy_dir)
    return seen_mid_copy


def _incomplete_versions(base: Path) -> list:
    return [p.name for p in base.iterdir() if p.is_dir() and not (p / "saved_model.pb").is_file()
            and not p.name.startswith(".")] if base.exists() else []


def test_a_push_that_fills_the_disk_leaves_nothing_and_the_next_push_is_whole(tmp_path, monkeypatch):
    base = tmp_path / "serving" / "happysad"
    clock = iter([1_700_000_000, 1_700_000_100])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    with monkeypatch.context() as patched:
        seen_mid_copy = _disk_fills_up_in_serving_dir(patched, base)
        with pytest.raises(OSError) as failed:
            _push(tmp_path, base, 1)
    assert failed.value.errno == errno.ENOSPC
    assert seen_mid_copy == []  # not even while it was being written
    assert _incomplete_versions(base) == []
    assert sorted(os.listdir(base)) == []  # no partial folder either

    pushed = _push(tmp_path, base, 2)  # space freed: the next run's push
    assert sorted(os.listdir(base)) == ["1700000100"]
    assert (base / "1700000100" / "saved_model.pb").read_bytes() == b"graph"
    assert (base / "1700000100" / "variables" / "variables.index").is_file()
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(base / "1700000100")
    assert pushed.get_string_custom_property("pushed_version") == "1700000100"
    assert (Path(pushed.uri) / "Format-Serving" / "saved_model.pb").is_file() or \
        (Path(pushed.uri) / "saved_model.pb").is_file()  # the archive copy, as TFX's Pusher makes it


def test_a_killed_runs_partial_push_is_removed_and_a_live_ones_kept(tmp_path, monkeypatch):
    base = tmp_path / "serving" / "happysad"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = base / f".1699999999.{dead.pid}.partial"
    (killed / "variables").mkdir(parents=True)  # what a kill -9 mid-copy leaves
    live = base / f".1699999998.{os.getppid()}.partial"  # another push in progress (its process is alive)
    live.mkdir()
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000)
    _push(tmp_path, base, 1)
    assert sorted(os.listdir(base)) == [live.name, "1700000000"]


def test_the_pipelines_pusher_pushes_atomically(tmp_path):
    built = pipeline.create_pipeline(
        pipeline_name=configs.PIPELINE_NAME, pipeline_root=str(tmp_path / "root"),
        examples_dir=str(tmp_path / "examples"),
        schema_file=schema.write_for_classes(["happy", "sad"], tmp_path / "schema"),
        trainer_run_fn="happysad.components.trainer.trainer_module.run_fn", trainer_code_version="v1",
        serving_model_dir=str(tmp_path / "serving"), class_names=["happy", "sad"],
        metadata_connection_config=metadata.connection_config(str(tmp_path / "metadata.sqlite")))
    (pusher,) = [c for c in built.components if c.id == "Pusher"]
    assert pusher.executor_spec.executor_class is atomic_pusher.Executor
    assert type(pusher).__name__ == "Pusher"  # TFX's component: its PushedModel output, its blessing inputs
