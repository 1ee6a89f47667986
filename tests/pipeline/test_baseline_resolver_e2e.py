"""The Evaluator's baseline, over real runs (SQLite ML Metadata, the reference CNN:
these test runs, not models).

Three runs on one root, each after an edit a user or a fault could make:
  run 1            model A, blessed by the Evaluator (and by the TFLiteEvaluator).
  (edit)           the Evaluator's blessing of A says "not blessed"; the TFLiteEvaluator's still says blessed.
  run 2 --seed 43  model B: no baseline. A was never blessed by the Evaluator, and the
                   TFLiteEvaluator's blessing must not make it one (it did: A was the baseline).
  (edit)           A's Evaluator blessing restored; B's model folder (Trainer/model/<id>) deleted.
  run 3 --seed 43  TFX 1.16 finds the cached Trainer's output gone, so it trains again (B');
                   the baseline falls back to A, the newest blessed model whose files exist
                   (it was B: the Evaluator died with "SavedModel file does not exist").
Every push leaves complete versions only, and no partial folder.
"""
import shutil
import subprocess
import types
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2

from happysad.data import emoji_faces
from happysad.pipeline import configs, metadata

from helpers import HAPPYSAD, REPO, removed_unless_failed

State = metadata_store_pb2.Execution.State
INPUT, OUTPUT = metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.OUTPUT


class Root(types.SimpleNamespace):
    def run(self, *extra):
        result = subprocess.run(
            [HAPPYSAD, "run", "--data", str(emoji_faces.DEFAULT_DIR), "--pipeline-root", str(self.root),
             "--serving-dir", str(self.serving), "--arch", "reference", *extra],
            cwd=REPO, capture_output=True, text=True, timeout=900)
        result.run_id = result.stdout.split("\nrun ", 1)[1].split()[0] if "\nrun " in result.stdout else None
        return result

    def store(self, writable=False):
        return metadata.open_store(str(self.root / "metadata.sqlite"), writable=writable)

    def execution(self, run_id: str, node: str):
        store = self.store()
        run = store.get_context_by_type_and_name("pipeline_run", run_id)
        (found,) = [e for e in metadata.executions(store, run) if metadata.node_of(store, e) == node]
        return found

    def io(self, execution, direction, key) -> list:
        return metadata.artifacts(self.store(), execution.id, direction).get(key, [])

    def set_blessed(self, blessing, value: int) -> None:
        store = self.store(writable=True)
        (artifact,) = store.get_artifacts_by_id([blessing.id])
        artifact.custom_properties["blessed"].int_value = value
        store.put_artifacts([artifact])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, request):
    with removed_unless_failed(request.session, tmp_path_factory.mktemp("baseline")) as base:
        r = Root(root=base / "pipeline_output", serving=base / "serving_model")
        r.first = r.run()
        # 3: blessed but not pushed (the ServingCheck's verdict; not what these tests are about).
        assert r.first.returncode in (0, 3), r.first.stdout + r.first.stderr
        (r.model_a,) = r.io(r.execution(r.first.run_id, "Trainer"), OUTPUT, "model")
        (r.evaluator_a,) = r.io(r.execution(r.first.run_id, "Evaluator"), OUTPUT, "blessing")
        (r.tflite_a,) = r.io(r.execution(r.first.run_id, "TFLiteEvaluator"), OUTPUT, "blessing")
        assert r.evaluator_a.custom_properties["blessed"].int_value == 1
        # The Evaluator "did not bless" A; the TFLiteEvaluator did (it blesses on its own thresholds).
        r.set_blessed(r.evaluator_a, 0)
        r.set_blessed(r.tflite_a, 1)
        r.second = r.run("--seed", "43")
        yield r


@pytest.fixture(scope="module")
def third_run(runs):
    r = runs
    (r.model_b,) = r.io(r.execution(r.second.run_id, "Trainer"), OUTPUT, "model")
    (r.evaluator_b,) = r.io(r.execution(r.second.run_id, "Evaluator"), OUTPUT, "blessing")
    r.set_blessed(r.evaluator_a, 1)
    r.set_blessed(r.evaluator_b, 1)  # B is the newest blessed model...
    shutil.rmtree(r.model_b.uri)  # ...and its files are gone
    r.third = r.run("--seed", "43")
    return r


def test_a_model_only_the_tflite_evaluator_blessed_is_no_baseline(runs):
    assert runs.second.returncode in (0, 3), runs.second.stdout + runs.second.stderr
    resolver = runs.execution(runs.second.run_id, "latest_blessed_model_resolver")
    assert [m.id for m in runs.io(resolver, OUTPUT, "model")] == []
    evaluator = runs.execution(runs.second.run_id, "Evaluator")
    assert runs.io(evaluator, INPUT, "baseline_model") == []


def test_a_baseline_whose_files_are_gone_is_skipped_for_an_older_one(third_run):
    r = third_run
    assert r.third.returncode in (0, 3), r.third.stdout + r.third.stderr
    trainer = r.execution(r.third.run_id, "Trainer")
    assert trainer.last_known_state == State.COMPLETE  # TFX 1.16: a cached output that is gone is made again
    (retrained,) = r.io(trainer, OUTPUT, "model")
    assert retrained.id != r.model_b.id and Path(retrained.uri, "Format-Serving", "saved_model.pb").is_file()
    evaluator = r.execution(r.third.run_id, "Evaluator")
    assert evaluator.last_known_state == State.COMPLETE
    assert [m.id for m in r.io(evaluator, INPUT, "baseline_model")] == [r.model_a.id]


def test_every_push_is_a_complete_version_and_leaves_no_partial_folder(third_run):
    push_dir = configs.model_base(third_run.serving)
    entries = sorted(p.name for p in push_dir.iterdir()) if push_dir.exists() else []
    assert all(name.isdigit() for name in entries), entries  # no partial folder
    for version in entries:
        assert (push_dir / version / "saved_model.pb").is_file(), version
