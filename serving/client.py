"""`happysad predict`: classify images in-process, or through TF Serving's REST or gRPC API.

The paths a user has in production: load the SavedModel, call TF Serving's
REST :predict with {"b64": ...}, or its gRPC Predict with the official
stubs; or, as on a phone, the TFLite model beside the SavedModel. Each
returns [(class name, probability of that class)].
"""
from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Iterable, Iterator, Sequence

from happysad import contract
from happysad.serving.server_config import Limits, ServerConfig

# What one request may carry: `happysad serve`'s defaults (TF Serving's batch
# parameter of that name, and the body's bytes). A server set lower answers
# 413 or RESOURCE_EXHAUSTED: such a batch is halved until it fits.
MAX_BATCH_SIZE = ServerConfig.max_batch_size
MAX_REQUEST_BYTES = ServerConfig.max_request_bytes
# In process, images are decoded and run this many at a time, as the server
# runs a request: memory stays bounded however many files are given.
IN_PROCESS_CHUNK = Limits.chunk_size
_BODY_OVERHEAD = 128  # the REST body's fixed part: {"signature_name": ..., "instances": []}
_INSTANCE_OVERHEAD = 16  # per image: {"b64": ""},


def request_bytes(images: Sequence[bytes]) -> int:
    """The size of the REST :predict body for `images` (base64 in JSON); a
    gRPC request for them is smaller."""
    return _BODY_OVERHEAD + sum(4 * ((len(i) + 2) // 3) + _INSTANCE_OVERHEAD for i in images)


def batch_limits(server: str = "") -> tuple[int, int]:
    """(images, request bytes) one call may carry: a server's, or in process a chunk."""
    return (MAX_BATCH_SIZE if server else IN_PROCESS_CHUNK), MAX_REQUEST_BYTES


def batches(items: Iterable, max_count: int, max_bytes: int, size: Callable = lambda item: item) -> Iterator[list]:
    """Lists of consecutive items, each at most max_count long and with a REST
    body (request_bytes of size(item)) of at most max_bytes; an item over that
    alone is a batch of its own (the server will say it is too large).
    Consumes `items` lazily: only one batch is held at a time."""
    batch, used = [], _BODY_OVERHEAD
    for item in items:
        n = request_bytes([size(item)]) - _BODY_OVERHEAD
        if batch and used + n > max_bytes:  # this item starts the next batch
            yield batch
            batch, used = [], _BODY_OVERHEAD
        batch.append(item)
        used += n
        if len(batch) == max_count:
            yield batch
            batch, used = [], _BODY_OVERHEAD
    if batch:
        yield batch


def latest_version_dir(base_path: str) -> str:
    """The newest version folder with a SavedModel under a TF Serving base path."""
    from happysad.serving.model_registry import versions_on_disk

    versions = versions_on_disk(base_path)
    if not versions:
        raise FileNotFoundError(f"no pushed model under {base_path}: run `make run` first, or pass --model-dir")
    return os.path.join(base_path, str(versions[-1]))


def _rows(class_names, probabilities) -> list:
    rows = []
    for name, probs in zip(class_names, probabilities):
        name = name.decode() if isinstance(name, bytes) else name
        rows.append((name, float(max(probs))))
    return rows


class RequestRejected(RuntimeError):
    """The model refused the images (HTTP 400, INVALID_ARGUMENT, or a TensorFlow
    error in process): one of them is not an image it can read."""


class RequestTooLarge(RequestRejected):
    """The server refused the request for its size (HTTP 413, RESOURCE_EXHAUSTED
    for a message over its limit, or more examples than its batch size)."""


def _too_large(message: str) -> bool:
    return "larger than maximum input batch size" in message


def _in_process(model_dir: str):
    """A predict function over one SavedModel, loaded as TF Serving does (a session)."""
    import numpy as np
    import tensorflow as tf

    from happysad.components.saved_model_bundle import SavedModelBundle, error_summary

    bundle = SavedModelBundle(model_dir)

    def call(images):
        try:
            out = bundle.run(contract.SERVING_SIGNATURE, {"images": np.array(list(images), dtype=object)})
        except tf.errors.OpError as e:
            raise RequestRejected(error_summary(e.message) or "refused") from e
        return _rows(out[contract.CLASS_NAME_OUTPUT].tolist(), out[contract.PROBABILITIES_OUTPUT].tolist())

    return call


def _tflite(model_dir: str):
    """A predict function over the TFLite model in a version folder (`tflite`, `tflite.json`),
    fed by the documented preprocessing, as a phone would run it."""
    import numpy as np

    from happysad.components.trainer import tflite_model

    path = os.path.join(model_dir, tflite_model.TFLITE_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no TFLite model in {model_dir} ({tflite_model.TFLITE_FILE}): models pushed "
                                "before TFLite export have none; run `make run` again")
    with open(os.path.join(model_dir, tflite_model.TFLITE_REPORT_FILE)) as f:
        class_names = json.load(f)["class_names"]
    model = tflite_model.TFLiteModel(path)

    def call(images):
        try:
            pixels = np.stack([tflite_model.preprocess(image) for image in images])
        except ValueError as e:
            raise RequestRejected(str(e)) from e
        probabilities = model.probabilities(pixels)
        return _rows([class_names[i] for i in np.argmax(probabilities, axis=1)], probabilities.tolist())

    return call


def predict_in_process(model_dir: str, images: Sequence[bytes]) -> list:
    """Loads the SavedModel as TF Serving does (a session) and runs serving_default."""
    return _in_process(model_dir)(images)


def predict_body(images: Sequence[bytes]) -> dict:
    """TF Serving's REST :predict body for serving_default (images as {"b64": ...})."""
    return {"signature_name": contract.SERVING_SIGNATURE,
            "instances": [{"b64": base64.b64encode(i).decode()} for i in images]}


def predict_request(model: str, images: Sequence[bytes]):
    """TF Serving's gRPC PredictRequest for `model`'s serving_default."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = contract.SERVING_SIGNATURE
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(list(images), dtype=tf.string))
    return request


def predict_rest(server: str, model: str, images: Sequence[bytes], timeout: float = 30) -> list:
    body = json.dumps(predict_body(images)).encode()
    url = f"{server.rstrip('/')}/v1/models/{urllib.parse.quote(model)}:predict"
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            predictions = json.load(response)["predictions"]
    except urllib.error.HTTPError as e:
        message = f"{url}: HTTP {e.code}: {e.read().decode(errors='replace')}"
        if e.code == 413 or (e.code == 400 and _too_large(message)):
            raise RequestTooLarge(message) from e
        raise (RequestRejected if e.code == 400 else RuntimeError)(message) from e
    except (urllib.error.URLError, OSError) as e:  # refused, unreachable, timed out
        raise RuntimeError(f"{url}: {getattr(e, 'reason', e)} (is `happysad serve` or TF Serving running?)") from e
    return _rows([p[contract.CLASS_NAME_OUTPUT] for p in predictions],
                 [p[contract.PROBABILITIES_OUTPUT] for p in predictions])


def predict_grpc(target: str, model: str, images: Sequence[bytes], timeout: float = 30) -> list:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    request = predict_request(model, images)
    with grpc.insecure_channel(target) as channel:
        try:
            response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)
        except grpc.RpcError as e:
            message = f"{target}: {e.code().name}: {e.details()}"
            if (e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in (e.details() or "")
                    or e.code() == grpc.StatusCode.INVALID_ARGUMENT and _too_large(message)):
                raise RequestTooLarge(message) from e
            error = RequestRejected if e.code() == grpc.StatusCode.INVALID_ARGUMENT else RuntimeError
            raise error(message) from e
    return _rows(tf.make_ndarray(response.outputs[contract.CLASS_NAME_OUTPUT]).tolist(),
                 tf.make_ndarray(response.outputs[contract.PROBABILITIES_OUTPUT]).tolist())


def answer(call, images: Sequence[bytes]) -> list:
    """call(images), one row per image. A refused batch is halved until the
    images the model cannot read, or too large to send, stand alone: those get
    (None, the RequestRejected or RequestTooLarge); the rest are answered."""
    try:
        return call(images)
    except RequestRejected as e:
        if len(images) == 1:
            return [(None, e)]
        half = len(images) // 2
        return answer(call, images[:half]) + answer(call, images[half:])


def predictor(*, server: str = "", model: str = "happysad", model_dir: str = "", tflite: bool = False):
    """A function images -> rows, over one model: "" in process from model_dir
    (its SavedModel, or with `tflite` its TFLite model), http://..., or
    grpc://HOST:PORT. Images are sent in batches of batch_limits(server).

    A row is (class name, probability), or (None, why) for an image the model
    refused or the server would not take; the other images are still classified."""
    if tflite:
        call = _tflite(model_dir)
    elif not server:
        call = _in_process(model_dir)
    else:
        scheme = urllib.parse.urlparse(server).scheme
        if scheme in ("http", "https"):
            call = lambda batch: predict_rest(server, model, batch)  # noqa: E731
        elif scheme == "grpc":
            call = lambda batch: predict_grpc(server[len("grpc://"):], model, batch)  # noqa: E731
        else:
            raise ValueError(f"--server {server}: expected http://HOST:PORT (REST) or grpc://HOST:PORT")
    max_count, max_bytes = batch_limits(server)

    def predict_all(images: Sequence[bytes]) -> list:
        return [row for batch in batches(images, max_count, max_bytes) for row in answer(call, batch)]

    return predict_all


def predict(images: Sequence[bytes], *, server: str = "", model: str = "happysad", model_dir: str = "",
            tflite: bool = False) -> list:
    """predictor(...)(images): see predictor."""
    return predictor(server=server, model=model, model_dir=model_dir, tflite=tflite)(images)
