"""Loading as TF Serving does: the session path, and the warm-up requests it replays at load."""
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from happysad.components.saved_model_bundle import SavedModelBundle
from happysad.components.trainer import serving_signatures
from happysad.components.trainer.models import reference_cnn
from happysad.data import emoji_faces
from helpers import removed_unless_failed

FACES = [(emoji_faces.DEFAULT_DIR / c / f"{c}_{i:03d}.png").read_bytes() for c in ("happy", "sad") for i in range(2)]


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, request):
    tf.keras.utils.set_random_seed(4)
    with removed_unless_failed(request.session, tmp_path_factory.mktemp("bundle")) as base:
        path = str(base / "1")
        serving_signatures.export(reference_cnn.build_model(), ["happy", "sad"], path, warmup_images=FACES)
        yield path


def test_the_export_carries_tf_serving_warmup_requests_for_both_signatures(export_dir):
    """Per face: a serving_default Predict, then a classify Classify of a tf.Example holding only the image."""
    records = list(tf.data.TFRecordDataset(f"{export_dir}/assets.extra/tf_serving_warmup_requests"))
    assert len(records) == 2 * len(FACES)
    logs = [prediction_log_pb2.PredictionLog.FromString(record.numpy()) for record in records]
    for n, face in enumerate(FACES):
        predict, classify = logs[2 * n].predict_log.request, logs[2 * n + 1].classify_log.request
        assert predict.model_spec.signature_name == "serving_default"
        assert tf.make_ndarray(predict.inputs["images"]).tolist() == [face]
        assert classify.model_spec.signature_name == "classify"
        (example,) = classify.input.example_list.examples
        assert list(example.features.feature) == ["image"]
        assert example.features.feature["image"].bytes_list.value == [face]


def test_warm_up_replays_every_request_and_makes_the_first_user_request_fast(export_dir):
    def first_request_ms(warm: bool) -> float:
        bundle = SavedModelBundle(export_dir)
        if warm:
            assert bundle.warm_up() == 2 * len(FACES)
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
    serving_signatures.export(reference_cnn.build_model(), ["happy", "sad"], str(tmp_path / "1"))
    assert SavedModelBundle(str(tmp_path / "1")).warm_up() == 0


def test_a_classify_warmup_request_that_fails_fails_the_warm_up(export_dir, tmp_path):
    """TF Serving refuses to load a version whose warm-up fails; so does the bundle."""
    import shutil

    from tensorflow_serving.apis import classification_pb2

    path = shutil.copytree(export_dir, tmp_path / "1")
    request = classification_pb2.ClassificationRequest()
    request.model_spec.signature_name = "classify"
    request.input.example_list.examples.add().features.feature["image"].bytes_list.value.append(b"not a PNG")
    log = prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=request))
    with tf.io.TFRecordWriter(str(path / "assets.extra" / "tf_serving_warmup_requests")) as writer:
        writer.write(log.SerializeToString())
    bundle = SavedModelBundle(str(path))
    with pytest.raises(tf.errors.InvalidArgumentError):
        bundle.warm_up()
