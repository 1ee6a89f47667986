"""The exported SavedModel's signatures, as TF Serving will see them."""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.python.tools import saved_model_utils

import emoji_cnn
import serving_signatures


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    tf.keras.utils.set_random_seed(3)
    path = str(tmp_path_factory.mktemp("export") / "1")
    serving_signatures.export(emoji_cnn.build_model(), ["happy", "sad"], path)
    return path


def _png(colour, size=(150, 150), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    return buf.getvalue()


def _example(image: bytes) -> bytes:
    return tf.train.Example(features=tf.train.Features(feature={
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image]))})).SerializeToString()


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
