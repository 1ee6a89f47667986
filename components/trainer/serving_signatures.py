"""Signatures of the exported SavedModel.

- serving_default: encoded image bytes -> class probabilities and class name.
  Over TF Serving's REST API clients send {"b64": ...}; the server turns that
  into raw bytes, so the graph decodes the image but never base64.
- evaluation: serialized tf.Example -> P(class index 1), for the Evaluator.
"""
import tensorflow as tf

import features
import image_decoding

SERVING_SIGNATURE = "serving_default"


class ExportModule(tf.Module):
    """Wraps the Keras model with the graph-side decoding and class names."""

    def __init__(self, model, class_names):
        super().__init__()
        self.model = model
        self.class_names = tf.constant(list(class_names))

    def _probabilities(self, pixels):
        positive = self.model(pixels, training=False)  # [N, 1] = P(class 1)
        return tf.concat([1.0 - positive, positive], axis=1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve_images(self, images):
        probabilities = self._probabilities(image_decoding.decode_batch(images))
        index = tf.argmax(probabilities, axis=1, output_type=tf.int32)
        return {
            "probabilities": probabilities,
            "class_index": index,
            "class_name": tf.gather(self.class_names, index),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def evaluate_examples(self, examples):
        parsed = tf.io.parse_example(examples, features.feature_spec())
        pixels = image_decoding.decode_batch(parsed[features.IMAGE_KEY])
        return {features.EVAL_PREDICTION_KEY: self.model(pixels, training=False)}


def export(model, class_names, export_dir: str) -> None:
    """Writes a SavedModel with both signatures to export_dir."""
    module = ExportModule(model, class_names)
    tf.saved_model.save(module, export_dir, signatures={
        SERVING_SIGNATURE: module.serve_images,
        features.EVAL_SIGNATURE: module.evaluate_examples,
    })
