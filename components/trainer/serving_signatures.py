"""Signatures of the exported SavedModel.

- serving_default: encoded image bytes -> class probabilities and class name.
  Over TF Serving's REST API clients send {"b64": ...}; the server turns that
  into raw bytes, so the graph decodes the image but never base64.
- classify: serialized tf.Example (`inputs`) -> `classes` and `scores`, with
  TF Serving's classification method name, so its :classify API and the gRPC
  Classify call work.
- evaluation: serialized tf.Example -> the model's own output, for the
  Evaluator: P(class index 1) [N, 1] for two classes, [N, classes] otherwise.

Beside the signatures, assets.extra/model.keras keeps the Keras model itself
(TF Serving ignores assets.extra): `happysad explain` needs its layers.
"""
import os

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import features
import image_decoding

SERVING_SIGNATURE = "serving_default"
CLASSIFY_SIGNATURE = "classify"
# TF Serving's method names: it checks them before a Classify call.
CLASSIFY_METHOD = "tensorflow/serving/classify"
KERAS_MODEL_FILE = "model.keras"  # in <export dir>/assets.extra/


class ExportModule(tf.Module):
    """Wraps the Keras model with the graph-side decoding and class names."""

    def __init__(self, model, class_names):
        super().__init__()
        self.model = model
        self.class_names = tf.constant(list(class_names))

    def _probabilities(self, pixels):
        output = self.model(pixels, training=False)
        if output.shape[-1] == 1:  # the binary head: [N, 1] = P(class 1)
            return tf.concat([1.0 - output, output], axis=1)
        return output  # softmax: [N, classes]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve_images(self, images):
        probabilities = self._probabilities(image_decoding.decode_batch(images))
        index = tf.argmax(probabilities, axis=1, output_type=tf.int32)
        return {
            "probabilities": probabilities,
            "class_index": index,
            "class_name": tf.gather(self.class_names, index),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify_examples(self, inputs):
        # Only the image is needed: a client's tf.Example has no label.
        parsed = tf.io.parse_example(inputs, {features.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
        scores = self._probabilities(image_decoding.decode_batch(parsed[features.IMAGE_KEY]))
        classes = tf.tile(self.class_names[tf.newaxis, :], [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def evaluate_examples(self, examples):
        parsed = tf.io.parse_example(examples, features.feature_spec())
        pixels = image_decoding.decode_batch(parsed[features.IMAGE_KEY])
        return {features.EVAL_PREDICTION_KEY: self.model(pixels, training=False)}


def export(model, class_names, export_dir: str) -> None:
    """Writes a SavedModel with the three signatures to export_dir."""
    module = ExportModule(model, class_names)
    tf.saved_model.save(module, export_dir, signatures={
        SERVING_SIGNATURE: module.serve_images,
        CLASSIFY_SIGNATURE: module.classify_examples,
        features.EVAL_SIGNATURE: module.evaluate_examples,
    })
    _set_method_name(export_dir, CLASSIFY_SIGNATURE, CLASSIFY_METHOD)
    extra = os.path.join(export_dir, "assets.extra")
    tf.io.gfile.makedirs(extra)
    model.save(os.path.join(extra, KERAS_MODEL_FILE))


def _set_method_name(export_dir: str, signature: str, method_name: str) -> None:
    # tf.saved_model.save marks every signature "predict" and has no argument
    # for another method; the SignatureDef in saved_model.pb is edited instead.
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        meta_graph.signature_def[signature].method_name = method_name
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString())
