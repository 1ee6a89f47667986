"""What the end-to-end tests share: a workspace holding a copy of the default
run's data, run through the `happysad` CLI in a subprocess as a user types it,
and the readers of what its runs left in ML Metadata."""
import json
import os
import shutil
import subprocess
import types
from pathlib import Path

from ml_metadata.proto import metadata_store_pb2

from happysad.data import emoji_faces, ingest
from happysad.pipeline import configs, metadata

from helpers import HAPPYSAD, REPO

COMPONENTS = ["ImportExampleGen", "ImportSchemaGen", "StatisticsGen", "SchemaGen", "ExampleValidator",
              "SkewValidator", "previous_statistics_resolver", "DriftValidator", "ImageValidator", "DataGate",
              "Trainer", "latest_blessed_model_resolver", "Evaluator", "PixelExamples", "TFLiteEvaluator",
              "ServingCheck", "Pusher"]
RESOLVERS = ("previous_statistics_resolver", "latest_blessed_model_resolver")
State = metadata_store_pb2.Execution.State
class Workspace(types.SimpleNamespace):
    """data: the generated faces' folder; sources: the --data/--held-out flags (default: --data data)."""

    @property
    def tmp(self) -> Path:
        """The runs' TMPDIR, beside the pipeline root."""
        return self.root.parent / "tmp"

    def files_left_in_tmp(self) -> list:
        return sorted(str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*") if p.is_file())

    def run(self, *extra, expect=(0,)):
        sources = getattr(self, "sources", None) or ["--data", str(self.data)]
        self.tmp.mkdir(exist_ok=True)
        result = subprocess.run(
            [HAPPYSAD, "run", *sources, "--pipeline-root", str(self.root),
             "--serving-dir", str(self.serving), *extra],
            cwd=REPO, capture_output=True, text=True, timeout=900, env={**os.environ, "TMPDIR": str(self.tmp)})
        assert result.returncode in expect, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    def store(self):
        return metadata.open_store(str(self.root / "metadata.sqlite"))

    def executions(self, node):
        """All executions of one component, oldest first."""
        found = metadata.node_executions(self.store(), configs.PIPELINE_NAME, node)
        assert found, f"no MLMD execution of {node}"
        return found

    def io(self, execution, direction, key):
        """The artifacts an execution read (INPUT) or wrote (OUTPUT) under `key`."""
        return metadata.artifacts(self.store(), execution.id, direction).get(key, [])

    def run_executions(self, run_id):
        """The ids of the executions of one pipeline run."""
        store = self.store()
        return {e.id for e in metadata.executions(store, store.get_context_by_type_and_name("pipeline_run", run_id))}

    def versions(self):
        push_dir = self.serving / "happysad"
        return sorted(p.name for p in push_dir.iterdir()) if push_dir.exists() else []


def workspace(base: Path) -> Workspace:
    """A copy of the default run's data (every source, same names), run with the same flags."""
    sources = []
    for source in ingest.default_sources(configs.HELD_OUT_SOURCES):
        copy = base / "data" / source.name
        shutil.copytree(source.folder, copy)
        sources += ["--held-out" if source.held_out else "--data", str(copy)]
    return Workspace(data=base / "data" / "generated", sources=sources, root=base / "pipeline_output",
                     serving=base / "serving_model")


def ingest_report(ws) -> dict:
    """What ingestion wrote for the latest run: counts per source and split."""
    return json.loads((ws.root / "tfrecords" / ingest.REPORT_NAME).read_text())


def inspect(ws, *extra, expect=0):
    result = subprocess.run([HAPPYSAD, "inspect", "--pipeline-root", str(ws.root), *extra],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == expect, result.stdout + result.stderr
    return result


def held_out_faces(held_out: str) -> list:
    from happysad.data import real_emoji_pack

    return [f for cls in emoji_faces.CLASS_NAMES for f in sorted((real_emoji_pack.PACK_DIR / held_out / cls).glob("*.png"))]


# Saliency on the expression / elsewhere, measured on the generated pairs below: the reference
# CNN 3.68-5.29 (an earlier machine) and 6.91-9.53 (this one); lite0 1.32-2.26 (a deep network's
# gradients spread over the whole face).
def check_explain(model_dir: str, floor: float, label: str, tmp_path: Path) -> None:
    """Faces come in pairs that differ only in expression, so the pixels that
    differ within a pair are the expression (mouth, brows, eyes, tear/blush).
    The saliency map must sit on them more than on the face or the background."""
    import numpy as np
    from PIL import Image, ImageFilter

    from happysad.serving import explain

    faces = emoji_faces.DEFAULT_DIR  # what ws.data held for the first run
    face = faces / "sad" / "sad_003.png"
    out = tmp_path / "sad_003.png"
    result = subprocess.run([HAPPYSAD, "explain", str(face), "--model-dir", model_dir, "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{face}\t")
    assert Image.open(out).size[0] > 800  # the picture: a row of maps and one row per conv layer

    def on_white(path):
        image = Image.open(path).convert("RGBA")
        canvas = Image.new("RGBA", image.size, "white")
        canvas.alpha_composite(image)
        return np.asarray(canvas.convert("RGB"), np.int16)

    ratios, explainer = [], explain.Explainer(model_dir)
    for i in (1, 11, 21, 31):
        happy, sad = faces / "happy" / f"happy_{i:03d}.png", faces / "sad" / f"sad_{i:03d}.png"
        differ = np.abs(on_white(happy) - on_white(sad)).max(axis=2) > 30
        expression = np.asarray(Image.fromarray(differ.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(9))) > 0
        for path in (happy, sad):
            saliency = explainer(path.read_bytes()).saliency
            ratios.append(saliency[expression].mean() / saliency[~expression].mean())
    print(f"\n{label}: saliency on the expression / elsewhere {min(ratios):.2f}-{max(ratios):.2f}")
    assert min(ratios) > floor, ratios
    # A real vendor's sad face, never trained on, read as sad.
    face = held_out_faces(configs.HELD_OUT_SOURCES[0])[-1]
    explained = subprocess.run([HAPPYSAD, "explain", str(face), "--model-dir", model_dir, "--out",
                                str(tmp_path / "vendor.png")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert explained.returncode == 0 and explained.stdout.startswith(f"{face}\tsad\t"), explained.stderr
