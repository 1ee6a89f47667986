"""TF Serving's gRPC API through the official tensorflow-serving-api stubs."""
import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from live_server import MAX_REQUEST_BYTES, MODEL


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.grpc, options=[("grpc.max_send_message_length", 4 * MAX_REQUEST_BYTES)]) as ch:
        yield ch


@pytest.fixture(scope="module")
def predictions(channel):
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def _predict_request(images, version=None, label=None, signature="serving_default"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
    return request


def test_predict(predictions, faces, in_process):
    reference = in_process.signatures["serving_default"](images=tf.constant(faces))
    for spec in ({}, {"version": 1}, {"label": "stable"}):
        response = predictions.Predict(_predict_request(faces, **spec), timeout=60)
        assert response.model_spec.name == MODEL and response.model_spec.version.value == 1
        assert response.model_spec.signature_name == "serving_default"
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["probabilities"]),
                                   reference["probabilities"].numpy(), rtol=1e-5)
        assert tf.make_ndarray(response.outputs["class_name"]).tolist() == reference["class_name"].numpy().tolist()


def test_predict_output_filter(predictions, faces):
    request = _predict_request(faces[:1])
    request.output_filter.append("class_name")
    assert list(predictions.Predict(request, timeout=60).outputs) == ["class_name"]


def test_classify(predictions, faces, in_process):
    reference = in_process.signatures["serving_default"](images=tf.constant(faces))["probabilities"].numpy()
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = MODEL
    request.model_spec.signature_name = "classify"
    for face in faces:
        example = request.input.example_list.examples.add()
        example.features.feature["image"].bytes_list.value.append(face)
    response = predictions.Classify(request, timeout=60)
    classifications = response.result.classifications
    assert [[c.label for c in row.classes] for row in classifications] == [["happy", "sad"]] * len(faces)
    np.testing.assert_allclose([[c.score for c in row.classes] for row in classifications], reference, rtol=1e-5)


def test_classify_with_context_merges_the_context_into_each_example(predictions, faces, in_process):
    reference = in_process.signatures["serving_default"](images=tf.constant(faces[:1]))["probabilities"].numpy()
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL, "classify"
    with_context = request.input.example_list_with_context
    with_context.context.features.feature["image"].bytes_list.value.append(faces[0])
    with_context.examples.add()  # the image comes from the context
    with_context.examples.add().features.feature["image"].bytes_list.value.append(faces[3])  # the example wins
    rows = [[c.score for c in row.classes] for row in predictions.Classify(request, timeout=60).result.classifications]
    assert len(rows) == 2
    np.testing.assert_allclose(rows[0], reference[0], rtol=1e-5)
    assert not np.allclose(rows[1], rows[0])


def test_get_model_metadata(predictions):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = MODEL
    request.metadata_field.append("signature_def")
    response = predictions.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 1
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert signatures.signature_def["classify"].method_name == "tensorflow/serving/classify"
    assert signatures.signature_def["serving_default"].method_name == "tensorflow/serving/predict"
    assert "images" in signatures.signature_def["serving_default"].inputs


def test_get_model_status(channel):
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = MODEL
    response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
    (status,) = response.model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE
    assert status.status.error_code == 0


@pytest.mark.parametrize("change, code", [
    (lambda r: setattr(r.model_spec, "name", "no_such_model"), grpc.StatusCode.NOT_FOUND),
    (lambda r: r.model_spec.version.__setattr__("value", 99), grpc.StatusCode.NOT_FOUND),
    (lambda r: setattr(r.model_spec, "signature_name", "nope"), grpc.StatusCode.FAILED_PRECONDITION),
    (lambda r: r.inputs["images"].CopyFrom(tf.make_tensor_proto([b"not an image"])),
     grpc.StatusCode.INVALID_ARGUMENT),
    (lambda r: r.inputs["pixels"].CopyFrom(tf.make_tensor_proto([1.0])), grpc.StatusCode.INVALID_ARGUMENT),
    (lambda r: r.inputs["images"].CopyFrom(tf.make_tensor_proto([b"x" * (MAX_REQUEST_BYTES + 1)])),
     grpc.StatusCode.RESOURCE_EXHAUSTED),
])
def test_bad_calls_get_status_codes_and_the_server_keeps_serving(predictions, faces, server, change, code):
    request = _predict_request(faces[:1])
    change(request)
    with pytest.raises(grpc.RpcError) as error:
        predictions.Predict(request, timeout=60)
    assert error.value.code() == code, error.value.details()
    assert predictions.Predict(_predict_request(faces[:1]), timeout=60).outputs["class_name"]
    assert server.proc.poll() is None
