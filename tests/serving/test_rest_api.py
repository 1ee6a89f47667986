"""TF Serving's documented REST shapes, replayed against `happysad serve`."""
import base64
import json

import numpy as np
import pytest
import requests
import tensorflow as tf

from live_server import MAX_REQUEST_BYTES, MODEL


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def _post(server, path, body, raw=None):
    return requests.post(f"{server.rest}/v1/models/{path}", data=raw if raw is not None else json.dumps(body),
                         timeout=60)


@pytest.fixture(scope="module")
def reference(in_process, faces):
    out = in_process.signatures["serving_default"](images=tf.constant(faces))
    return {k: v.numpy() for k, v in out.items()}


def test_model_status(server):
    for path in (MODEL, f"{MODEL}/versions/1", f"{MODEL}/labels/stable"):
        response = requests.get(f"{server.rest}/v1/models/{path}", timeout=30)
        assert response.status_code == 200, path
        assert response.json() == {"model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}


def test_model_metadata_lists_the_signature_defs(server):
    body = requests.get(f"{server.rest}/v1/models/{MODEL}/metadata", timeout=30).json()
    assert body["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert set(signatures) == {"serving_default", "classify", "evaluation"}
    assert signatures["serving_default"]["method_name"] == "tensorflow/serving/predict"
    assert signatures["serving_default"]["inputs"]["images"]["dtype"] == "DT_STRING"
    assert signatures["classify"]["method_name"] == "tensorflow/serving/classify"
    assert set(signatures["classify"]["outputs"]) == {"classes", "scores"}


def test_predict_row_format_matches_the_signature_in_process(server, faces, reference):
    for route in (MODEL, f"{MODEL}/versions/1", f"{MODEL}/labels/stable"):
        response = _post(server, f"{route}:predict", {"instances": [_b64(f) for f in faces]})
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert len(predictions) == len(faces)
        assert set(predictions[0]) == {"probabilities", "class_index", "class_name"}
        np.testing.assert_allclose([p["probabilities"] for p in predictions], reference["probabilities"], rtol=1e-5)
        assert [p["class_name"] for p in predictions] == [n.decode() for n in reference["class_name"]]
        assert [p["class_index"] for p in predictions] == reference["class_index"].tolist()


def test_predict_named_instances_and_columnar_format(server, faces, reference):
    named = _post(server, f"{MODEL}:predict", {"signature_name": "serving_default",
                                                "instances": [{"images": _b64(f)} for f in faces]}).json()
    np.testing.assert_allclose([p["probabilities"] for p in named["predictions"]], reference["probabilities"],
                               rtol=1e-5)
    for inputs in ([_b64(f) for f in faces], {"images": [_b64(f) for f in faces]}):
        outputs = _post(server, f"{MODEL}:predict", {"inputs": inputs}).json()["outputs"]
        np.testing.assert_allclose(outputs["probabilities"], reference["probabilities"], rtol=1e-5)
        assert outputs["class_name"] == [n.decode() for n in reference["class_name"]]


def test_classify_returns_labels_and_scores(server, faces, reference):
    body = {"signature_name": "classify", "examples": [{"image": _b64(f)} for f in faces]}
    results = _post(server, f"{MODEL}:classify", body).json()["results"]
    assert [[label for label, _ in row] for row in results] == [["happy", "sad"]] * len(faces)
    np.testing.assert_allclose([[score for _, score in row] for row in results], reference["probabilities"],
                               rtol=1e-5)
    # Context features are merged into each example, as TF Serving does.
    with_context = _post(server, f"{MODEL}:classify", {"signature_name": "classify", "context": {"image": _b64(faces[0])},
                                                        "examples": [{}, {}]}).json()["results"]
    np.testing.assert_allclose([s for _, s in with_context[1]], reference["probabilities"][0], rtol=1e-5)


@pytest.mark.parametrize("path, body, raw, status, says", [
    (f"{MODEL}:predict", None, b"{not json", 400, "JSON Parse error"),
    (f"{MODEL}:predict", {"signature_name": "serving_default"}, None, 400, "Missing 'inputs' or 'instances'"),
    (f"{MODEL}:predict", {"instances": [{"b64": "aGk="}], "inputs": [{"b64": "aGk="}]}, None, 400, "Not both"),
    (f"{MODEL}:predict", {"instances": [{"b64": "@@not base64@@"}]}, None, 400, "base64"),
    (f"{MODEL}:predict", {"instances": [_b64(b"these bytes are not an image")]}, None, 400, "Unknown image file format"),
    (f"{MODEL}:predict", {"signature_name": "nope", "instances": [{"b64": "aGk="}]}, None, 400,
     'Serving signature name: "nope" not found'),
    (f"{MODEL}:classify", {"examples": [{"image": {"b64": "aGk="}}]}, None, 400,
     "Expected classification signature method_name"),
    ("no_such_model:predict", {"instances": [{"b64": "aGk="}]}, None, 404, "Servable not found"),
    (f"{MODEL}/versions/99:predict", {"instances": [{"b64": "aGk="}]}, None, 404, "Specific(happysad, 99)"),
    (f"{MODEL}/labels/canary:predict", {"instances": [{"b64": "aGk="}]}, None, 404, "label: canary"),
    (f"{MODEL}:explode", {}, None, 404, "Malformed request"),
    (f"{MODEL}:predict", None, b"{\"instances\": [\"" + b"A" * (MAX_REQUEST_BYTES + 10) + b"\"]}", 413, "larger than"),
])
def test_bad_requests_get_tf_serving_errors_and_the_server_keeps_serving(server, faces, path, body, raw, status,
                                                                         says):
    response = _post(server, path, body, raw)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]
    healthy = _post(server, f"{MODEL}:predict", {"instances": [_b64(faces[0])]})
    assert healthy.status_code == 200
    assert server.proc.poll() is None
