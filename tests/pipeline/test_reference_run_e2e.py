"""End to end: `happysad run --arch reference` (the seed's CNN) on a copy of the default data:
it trains, exports a model TF Serving loads, reads the held-out vendors and explains."""
import re
from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2

from happysad.pipeline import configs

from e2e_workspace import check_explain, held_out_faces, workspace
from helpers import removed_unless_failed


# The reference CNN (`--arch reference`) on the held-out vendors, measured: EmojiOne 0.920-1.000
# and Noto 1.000 over machines and seeds (README). Its gate is the default's, 0.9.
REFERENCE_HELD_OUT_FLOOR = 0.88


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, request):
    """The default run's data, trained with `--arch reference`: (workspace, stdout, Trainer's model dir)."""
    with removed_unless_failed(request.session, tmp_path_factory.mktemp("reference")) as base:
        ref = workspace(base)
        result = ref.run("--arch", "reference", expect=(0, 3))
        (trainer,) = ref.executions("Trainer")
        model_dir = Path(ref.io(trainer, metadata_store_pb2.Event.OUTPUT, "model")[0].uri) / "Format-Serving"
        yield ref, result.stdout, model_dir


def test_the_reference_option_still_trains_and_exports_a_model_tf_serving_loads(reference_run):
    """`--arch reference`: the seed's CNN, through the same Trainer, checks and export."""
    import numpy as np

    from happysad.components.saved_model_bundle import SavedModelBundle

    ref, out, model_dir = reference_run
    # Trained under the 0.999 stop callback: stopped by it, or at the 15-epoch cap. Seed 42 stopped at
    # epoch 11 here before the decoder framed images, and now ends at 15 with training accuracy 0.997
    # (seeds 1-3: epochs 7, 8, 12; benchmarks/RESULTS.md, robustness).
    trained = re.search(r"training: (?:reached 0\.999 at epoch (\d+)|did NOT reach 0\.999 in 15 epochs);.*"
                        r"; model reference\n", out)
    assert trained, out
    epoch = trained.group(1) or "15 (the cap)"
    assert "serving check (TF Serving's session loader, then happysad serve on loopback): passed" in out, out
    bundle = SavedModelBundle(str(model_dir))
    for held_out in configs.HELD_OUT_SOURCES:
        files = held_out_faces(held_out)
        answer = bundle.run("serving_default", {"images": np.array([f.read_bytes() for f in files], dtype=object)})
        accuracy = sum(n.decode() == f.parent.name for n, f in zip(answer["class_name"], files)) / len(files)
        print(f"\nreference CNN on held-out {held_out}: {accuracy:.3f} ({len(files)} faces), epoch {epoch}")
        assert accuracy >= REFERENCE_HELD_OUT_FLOOR, (held_out, accuracy)
    bundle.close()
    for version in ref.versions():  # pushed when blessed: its card names the reference CNN
        assert "the reference CNN" in (ref.serving / "happysad" / version / "model_card.md").read_text()


def test_explain_shows_the_model_looks_at_the_expression(reference_run, tmp_path):
    check_explain(str(reference_run[2]), 3, "reference", tmp_path)
