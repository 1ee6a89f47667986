"""The exported SavedModel's signatures, as TF Serving will see them."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.python.tools import saved_model_utils

from happysad.components.trainer import serving_signatures
from happysad.components.trainer.models import reference_cnn
from helpers import example, removed_unless_failed, saved_model_cli_run


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, request):
    tf.keras.utils.set_random_seed(3)
    with removed_unless_failed(request.session, tmp_path_factory.mktemp("export")) as base:
        path = str(base / "1")
        serving_signatures.export(reference_cnn.build_model(), ["happy", "sad"], path)
        yield path


def _png(colour, size=(150, 150), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    return buf.getvalue()


def _example(image: bytes) -> bytes:
    return example(image=image)


def test_signature_defs_carry_tf_serving_method_names(export_dir):
    signatures = saved_model_utils.get_meta_graph_def(export_dir, "serve").signature_def
    assert signatures["serving_default"].method_name == "tensorflow/serving/predict"
    assert list(signatures["serving_default"].inputs) == ["images"]
    assert set(signatures["serving_default"].outputs) == {"probabilities", "class_index", "class_name"}
    classify = signatures["classify"]
    assert classify.method_name == "tensorflow/serving/classify"
    assert list(classify.inputs) == ["inputs"] and classify.inputs["inputs"].dtype == tf.string.as_datatype_enum
    assert set(classify.outputs) == {"classes", "scores"}
    assert "evaluation" in signatures


def test_classify_agrees_with_serving_default(export_dir):
    model = tf.saved_model.load(export_dir)
    images = [_png((250, 200, 40)), _png((30, 60, 200), size=(64, 80)), _png(128, mode="L")]
    predicted = model.signatures["serving_default"](images=tf.constant(images))
    classified = model.signatures["classify"](inputs=tf.constant([_example(i) for i in images]))
    assert classified["classes"].numpy().tolist() == [[b"happy", b"sad"]] * 3
    np.testing.assert_allclose(classified["scores"].numpy(), predicted["probabilities"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(classified["scores"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    names = [["happy", "sad"][i] for i in predicted["class_index"].numpy()]
    assert [n.decode() for n in predicted["class_name"].numpy()] == names


def _evaluation_example(image: bytes, label: int) -> bytes:
    return example(image=image, label=label)


def test_every_signature_answers_through_tf_servings_session_loader_as_through_tf2(export_dir):
    """TF Serving runs a SavedModel through a TF1 session by tensor name, not
    through tf.saved_model.load; both must give the same answers."""
    from happysad.components.saved_model_bundle import SavedModelBundle

    images = [_png((250, 200, 40)), _png((30, 60, 200), size=(64, 80)), _png(128, mode="L")]
    calls = {
        "serving_default": {"images": images},
        "classify": {"inputs": [_example(i) for i in images]},
        "evaluation": {"examples": [_evaluation_example(i, n % 2) for n, i in enumerate(images)]},
    }
    bundle = SavedModelBundle(export_dir)
    tf2 = tf.saved_model.load(export_dir)
    assert set(bundle.signature_defs) == set(calls)
    for name, inputs in calls.items():
        session = bundle.run(name, {k: np.array(v, dtype=object) for k, v in inputs.items()})
        eager = tf2.signatures[name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert set(session) == set(eager), name
        for key, value in eager.items():
            if value.dtype == tf.string:
                assert session[key].tolist() == value.numpy().tolist(), (name, key)
            else:
                np.testing.assert_allclose(session[key], value.numpy(), atol=1e-6, rtol=0, err_msg=name)
    bundle.close()


def test_saved_model_cli_runs_serving_default(export_dir, tmp_path):
    """`saved_model_cli run` uses the same session loader as TF Serving."""
    result = saved_model_cli_run(export_dir, [_png((250, 200, 40))], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key class_name:" in result.stdout
    assert "Result for output key probabilities:" in result.stdout


def test_probability_columns_follow_the_keras_model(export_dir):
    """Column 1 is P(class index 1) as the Keras model itself says it, column 0 its complement."""
    import keras

    from happysad.components.trainer import image_decoding

    model = keras.models.load_model(f"{export_dir}/assets.extra/model.keras")
    images = [_png((250, 200, 40)), _png((30, 60, 200)), _png((200, 30, 60))]
    own = model(image_decoding.decode_batch(tf.constant(images)), training=False).numpy()[:, 0]
    served = tf.saved_model.load(export_dir).signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(served["probabilities"].numpy()[:, 1], own, atol=1e-6)
    np.testing.assert_allclose(served["probabilities"].numpy()[:, 0], 1 - own, atol=1e-6)
