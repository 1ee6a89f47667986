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

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from happysad import contract
from happysad.components.trainer import image_decoding

SERVING_SIGNATURE = contract.SERVING_SIGNATURE
CLASSIFY_SIGNATURE = contract.CLASSIFY_SIGNATURE
CLASSIFY_METHOD = contract.CLASSIFY_METHOD
KERAS_MODEL_FILE = "model.keras"  # in <export dir>/assets.extra/


def signature_functions(model, class_names) -> dict:
    """{signature name: (function, input TensorSpec)} around the Keras model.

    The three share two tf.functions, the decode and the model's call, so each
    is traced once and saved once, not once per signature."""
    names = list(class_names)
    decode = tf.function(image_decoding.decode_batch, input_signature=[tf.TensorSpec([None], tf.string)])
    size = contract.IMAGE_SIZE
    output = tf.function(lambda pixels: model(pixels, training=False),
                         input_signature=[tf.TensorSpec([None, size, size, image_decoding.CHANNELS], tf.float32)])

    def probabilities(pixels):
        scores = output(pixels)
        if scores.shape[-1] == 1:  # the binary head: [N, 1] = P(class 1)
            return tf.concat([1.0 - scores, scores], axis=1)
        return scores  # softmax: [N, classes]

    def serve_images(images):
        scores = probabilities(decode(images))
        index = tf.argmax(scores, axis=1, output_type=tf.int32)
        return {
            contract.PROBABILITIES_OUTPUT: scores,
            contract.CLASS_INDEX_OUTPUT: index,
            contract.CLASS_NAME_OUTPUT: tf.gather(tf.constant(names), index),
        }

    def classify_examples(inputs):
        # Only the image is needed: a client's tf.Example has no label.
        parsed = tf.io.parse_example(inputs, {contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
        scores = probabilities(decode(parsed[contract.IMAGE_KEY]))
        classes = tf.tile(tf.constant(names)[tf.newaxis, :], [tf.shape(scores)[0], 1])
        return {"classes": classes, "scores": scores}

    def evaluate_examples(examples):
        parsed = tf.io.parse_example(examples, contract.feature_spec())
        return {contract.EVAL_PREDICTION_KEY: output(decode(parsed[contract.IMAGE_KEY]))}

    return {
        SERVING_SIGNATURE: (serve_images, tf.TensorSpec([None], tf.string, name="images")),
        CLASSIFY_SIGNATURE: (classify_examples, tf.TensorSpec([None], tf.string, name="inputs")),
        contract.EVAL_SIGNATURE: (evaluate_examples, tf.TensorSpec([None], tf.string, name="examples")),
    }


WARMUP_FILE = contract.WARMUP_FILE


def export(model, class_names, export_dir: str, warmup_images=()) -> None:
    """Writes a SavedModel with the three signatures to export_dir, and
    warmup_images (encoded bytes) as TF Serving warm-up requests.

    Keras' ExportArchive tracks the model's variables so that the session-based
    loader TF Serving uses (SavedModelBundle) finds them. A Keras 3 model held
    by a tf.Module and written with tf.saved_model.save answers only through
    tf.saved_model.load: the session path fails with "Could not find variable"
    (tensorflow#72963, keras#20095)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, (function, spec) in signature_functions(model, class_names).items():
        archive.add_endpoint(name, function, input_signature=[spec])
    archive.write_out(export_dir, verbose=False)
    _set_method_name(export_dir, CLASSIFY_SIGNATURE, CLASSIFY_METHOD)
    extra = os.path.join(export_dir, "assets.extra")
    tf.io.gfile.makedirs(extra)
    model.save(os.path.join(extra, KERAS_MODEL_FILE))
    if warmup_images:
        write_warmup_requests(os.path.join(extra, WARMUP_FILE), warmup_images)


def write_warmup_requests(path: str, images) -> None:
    """Per image, a batch-1 serving_default Predict and a classify Classify of a
    tf.Example holding only the image: the format TF Serving replays before it
    marks a version AVAILABLE, so neither signature's first user request pays for
    the session's first run, and a version whose signatures fail never serves."""
    from tensorflow_serving.apis import classification_pb2, predict_pb2, prediction_log_pb2

    with tf.io.TFRecordWriter(path) as writer:
        for image in images:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = SERVING_SIGNATURE
            request.inputs["images"].CopyFrom(tf.make_tensor_proto([image], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
            classify = classification_pb2.ClassificationRequest()
            classify.model_spec.signature_name = CLASSIFY_SIGNATURE
            classify.input.example_list.examples.add().features.feature[contract.IMAGE_KEY].bytes_list.value.append(image)
            log = prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=classify))
            writer.write(log.SerializeToString())


def _set_method_name(export_dir: str, signature: str, method_name: str) -> None:
    # A SavedModel export marks every signature "predict" and has no argument
    # for another method; the SignatureDef in saved_model.pb is edited instead.
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        meta_graph.signature_def[signature].method_name = method_name
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString())
