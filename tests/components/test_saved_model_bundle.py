"""Loading as TF Serving does: the session path, and the warm-up requests it replays at load."""
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from happysad.components.saved_model_bundle import SavedModelBundle
from happysad.components.trainer import emoji_cnn, serving_signatures
from happysad.data import emoji_faces

FACES = [(emoji_faces.DEFAULT_DIR / c / f"{c}_{i:03d}.png").read_bytes() for c in ("happy", "sad") for i in range(2)]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    tf.keras.utils.set_random_seed(4)
    path = str(tmp_path_factory.mktemp("bundle") / "1")
    serving_signatures.export(emoji_cnn.build_model(), ["happy", "sad"], path, warmup_images=FACES)
    return path


def test_the_export_carries_tf_serving_warmup_requests(export_dir):
    records = list(tf.data.TFRecordDataset(f"{export_dir}/assets.extra/tf_serving_warmup_requests"))
    assert len(records) == len(FACES)
    for record, face in zip(records, FACES):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        assert tf.make_ndarray(request.inputs["images"]).tolist() == [face]


def test_warm_up_replays_every_request_and_makes_the_first_user_request_fast(export_dir):
    def first_request_ms(warm: bool) -> float:
        bundle = SavedModelBundle(export_dir)
        if warm:
            assert bundle.warm_up() == len(FACES)
        started = time.perf_counter()
        bundle.run("serving_default", {"images": np.array([FACES[0]], dtype=object)})
        elapsed = (time.perf_counter() - started) * 1000
        bundle.close()
        return elapsed

    cold = sorted(first_request_ms(False) for _ in range(3))[1]
    warm = sorted(first_request_ms(True) for _ in range(3))[1]
    print(f"\nfirst request: {cold:.1f} ms cold, {warm:.1f} ms after warm-up ({cold / warm:.0f}x)")
    assert warm * 3 < cold, (cold, warm)


def test_a_model_without_a_warmup_file_replays_nothing(tmp_path):
    tf.keras.utils.set_random_seed(4)
    serving_signatures.export(emoji_cnn.build_model(), ["happy", "sad"], str(tmp_path / "1"))
    assert SavedModelBundle(str(tmp_path / "1")).warm_up() == 0
