"""Requests meant to knock the server over: each is refused in words, and the server stays up and small."""
import base64
import io
import json
import socket
import time

import grpc
import pytest
import requests
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from live_server import MODEL, start_server


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


def _png(size, mode="1") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size).save(out, "PNG")
    return out.getvalue()


def _post(server, path, body=None, raw=None):
    return requests.post(f"{server.rest}/v1/models/{path}", data=raw if raw is not None else json.dumps(body),
                         timeout=120)


def _rss_mb(server) -> float:
    with open(f"/proc/{server.proc.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def _still_serving(server, face):
    assert _post(server, f"{MODEL}:predict", {"instances": [_b64(face)]}).status_code == 200
    assert server.proc.poll() is None


def test_a_batch_over_the_limit_is_refused_before_it_is_decoded(server, faces):
    tiny = _png((1, 1), "RGB")
    started = time.monotonic()
    response = _post(server, f"{MODEL}:predict", {"instances": [_b64(tiny)] * 3000})
    assert response.status_code == 400, response.text
    assert "Task size 3000 is larger than maximum input batch size 256" in response.json()["error"]
    assert time.monotonic() - started < 10  # refused, not run (it used to take 56 s and 19 GB)
    for body, route in (({"inputs": {"images": [_b64(tiny)] * 300}}, "predict"),
                        ({"signature_name": "classify", "examples": [{"image": _b64(tiny)}] * 300}, "classify")):
        response = _post(server, f"{MODEL}:{route}", body)
        assert response.status_code == 400 and "Task size 300" in response.json()["error"], response.text
    _still_serving(server, faces[0])


def test_a_batch_under_the_limit_runs_in_chunks_with_the_same_answers(server, faces, in_process):
    def coloured(i):
        out = io.BytesIO()
        Image.new("RGB", (30, 30), (i * 3, 255 - i * 3, (i * 37) % 256)).save(out, "PNG")
        return out.getvalue()

    images = [coloured(i) for i in range(70)]  # more than two 32-image chunks
    response = _post(server, f"{MODEL}:predict", {"instances": [_b64(f) for f in images]})
    assert response.status_code == 200, response.text
    expected = in_process.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    got = [p["probabilities"] for p in response.json()["predictions"]]
    assert len(got) == 70
    assert max(abs(a - b) for row_a, row_b in zip(got, expected) for a, b in zip(row_a, row_b)) < 1e-5


def test_images_over_the_pixel_limit_are_refused_and_memory_stays_flat(server, faces):
    bomb = _png((10000, 10000))  # 100 MP in a few KB; decoded it would take 1.2 GB as float32
    assert len(bomb) < 200_000
    before = _rss_mb(server)
    response = _post(server, f"{MODEL}:predict", {"instances": [_b64(bomb)] * 4})
    assert response.status_code == 400, response.text
    assert ("declares 10000 x 10000 pixels; all images of the request declare 400000000, over the limit of 40000000"
            in response.json()["error"])
    grown = _rss_mb(server) - before
    print(f"\nRSS {before:.0f} MB -> +{grown:.0f} MB after 4 x 100 MP images")
    assert grown < 100, grown  # the unguarded server grew by 4 GB
    _still_serving(server, faces[0])


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"signature_name": "classify", "examples": [{"image": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
])
def test_deeply_nested_json_is_a_bad_request(server, faces, raw):
    path = f"{MODEL}:classify" if b"classify" in raw else f"{MODEL}:predict"
    response = _post(server, path, raw=raw)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["error"]
    _still_serving(server, faces[0])


def test_a_tensorflow_error_is_an_invalid_argument_over_rest_and_grpc(server, faces):
    # The evaluation signature takes serialized tf.Examples; PNG bytes do not parse.
    response = _post(server, f"{MODEL}:predict", {"signature_name": "evaluation", "instances": [_b64(faces[0])]})
    assert response.status_code == 400, response.text
    assert "parse" in response.json()["error"].lower()
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL, "evaluation"
    request.inputs["examples"].CopyFrom(tf.make_tensor_proto([faces[0]], dtype=tf.string))
    with grpc.insecure_channel(server.grpc) as channel:
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        request.inputs["images"].CopyFrom(tf.make_tensor_proto([b"x"] * 300, dtype=tf.string))
        with pytest.raises(grpc.RpcError) as error:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=60)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Task size 300 is larger than maximum input batch size 256" in error.value.details()
    _still_serving(server, faces[0])


def test_a_non_ascii_digit_version_is_a_bad_request(server, faces):
    for path in (f"{MODEL}/versions/%C2%B2", f"{MODEL}/versions/%C2%B2/metadata"):
        response = requests.get(f"{server.rest}/v1/models/{path}", timeout=30)
        assert response.status_code == 400, response.text
        assert "Failed to convert version" in response.json()["error"]
    assert _post(server, f"{MODEL}/versions/%C2%B2:predict", {"instances": [_b64(faces[0])]}).status_code == 400
    _still_serving(server, faces[0])


def test_a_declared_length_over_the_limit_is_refused_at_once(server):
    host, port = server.rest.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {10 ** 9}\r\n\r\n".encode())
        reply = sock.recv(4096).decode()  # answered without sending the body
    assert reply.startswith("HTTP/1.1 413"), reply


@pytest.fixture(scope="module")
def impatient_server(model_base, tmp_path_factory):
    """A server with 1-second idle and body timeouts."""
    tmp = tmp_path_factory.mktemp("impatient")
    srv = start_server(tmp, "--model-base-path", str(model_base), "--idle-timeout-seconds", "1",
                       "--body-timeout-seconds", "1")
    yield srv
    assert srv.stop() == 0


def test_idle_and_slow_clients_are_cut_off(impatient_server):
    host, port = impatient_server.rest.split("//")[1].split(":")
    idle = [socket.create_connection((host, int(port)), timeout=10) for _ in range(20)]
    time.sleep(3)
    for sock in idle:  # the server closed every idle socket: recv sees the end of the stream
        sock.settimeout(5)
        assert sock.recv(1) == b""
        sock.close()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # A body that never fully arrives: 408 once the body timeout passes.
        sock.sendall(f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode())
        sock.settimeout(10)
        started = time.monotonic()
        reply = sock.recv(4096).decode()
    assert reply.startswith("HTTP/1.1 408"), reply
    assert time.monotonic() - started < 5
