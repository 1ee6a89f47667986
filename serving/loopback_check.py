"""The serving check's second half: the candidate served by a real `happysad serve` on loopback.

The pipeline hands `start` to the ServingCheck by its dotted name
(pipeline/configs.py, SERVING_CHECK_OVER_SERVER), as it hands the Trainer its
run_fn, so components/ never imports serving/. `start` brings the server up
in the background while the ServingCheck runs its in-process half; `check`
then asks the candidate over gRPC and REST, as a client would, and stops the
server.
"""
from __future__ import annotations

import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from happysad import contract
from happysad.components.saved_model_bundle import warmup_logs
from happysad.serving import client, loopback

SERVED_NAME = "candidate"  # the model's name on the check's own server
LATENCY_CALLS = 5  # batch-1 calls per API over the server; the median is checked against the budget
RPC_TIMEOUT_S = 30.0
WHERE = "over happysad serve"  # how each of this half's sentences begins


class ServedCandidate:
    """A candidate being brought up by `happysad serve` on free loopback ports.

    check() asks it, then stops it. Used as a context manager it is stopped on
    the way out whatever happened (the in-process half may raise first)."""

    def __init__(self, model_dir: str, workdir: str, log_path: str):
        self.model_dir = model_dir
        base = os.path.join(workdir, SERVED_NAME)
        os.makedirs(base)
        os.symlink(os.path.abspath(model_dir), os.path.join(base, "1"))
        pool = ThreadPoolExecutor(1)
        self._starting = pool.submit(loopback.start, log_path, ["--model-base-path", base, "--model-name", SERVED_NAME])
        pool.shutdown(wait=False)  # the thread ends when the server listens

    def __enter__(self) -> "ServedCandidate":
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._starting.result().stop()  # a no-op once check() stopped it
        except loopback.ServerDidNotStart:
            pass

    def check(self, examples: list, class_names: list, latency_budget_ms: float) -> tuple:
        """(problems, checks, latency_ms) of the served candidate: its version
        status, its warm-up requests replayed over gRPC, then gRPC Predict and
        Classify and REST :predict and :classify on the examples (serialized
        tf.Examples); latency_ms holds each call's median batch-1 ms."""
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        try:
            server = self._starting.result()
        except loopback.ServerDidNotStart as e:
            return [f"{WHERE}: {e}"], [], {}
        problems, checks, latency = [], [], {}
        channel = grpc.insecure_channel(server.grpc)
        try:
            status = _rest(server, "")["model_version_status"]
            states = {row["version"]: row for row in status}
            if states.get("1", {}).get("state") != "AVAILABLE":
                row = states.get("1", {})
                return [f"{WHERE}: the candidate is not AVAILABLE ({row.get('state', 'not found')}): "
                        f"{row.get('status', {}).get('error_message', '')[:500]}"], checks, latency
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            warmed = 0
            for log in warmup_logs(self.model_dir):
                kind = log.WhichOneof("log_type")
                request = getattr(log, kind).request
                request.model_spec.name = SERVED_NAME
                try:
                    (stub.Predict if kind == "predict_log" else stub.Classify)(request, timeout=RPC_TIMEOUT_S)
                    warmed += 1
                except grpc.RpcError as e:
                    problems.append(f"{WHERE}: warm-up {kind} fails over gRPC: {e.code().name}: {e.details()[:500]}")
            checks.append(f"{WHERE}: version 1 AVAILABLE; {warmed} warm-up requests replayed over gRPC")
            parsed = [tf.train.Example.FromString(e) for e in examples]
            images = [p.features.feature[contract.IMAGE_KEY].bytes_list.value[0] for p in parsed]
            n, k = len(images), len(class_names)
            for name, classify, call in (("gRPC Predict", False, lambda batch: _grpc_predict(stub, batch)),
                                         ("gRPC Classify", True, lambda batch: _grpc_classify(stub, batch)),
                                         ("REST predict", False, lambda batch: _rest_predict(server, batch)),
                                         ("REST classify", True, lambda batch: _rest_classify(server, batch))):
                try:
                    names, scores = call(images)
                    times = []
                    for _ in range(LATENCY_CALLS):
                        started = time.perf_counter()
                        call(images[:1])
                        times.append((time.perf_counter() - started) * 1000)
                except (grpc.RpcError, OSError, ValueError, KeyError) as e:
                    detail = (f"{e.code().name}: {e.details()}" if isinstance(e, grpc.RpcError)
                              else f"{type(e).__name__}: {e}")
                    problems.append(f"{WHERE}: {name} fails: {detail[:500]}")
                    continue
                latency[name] = round(sorted(times)[len(times) // 2], 2)
                if len(names) != n or any(len(row) != k for row in scores):
                    problems.append(f"{WHERE}: {name} answered {len(names)} rows of "
                                    f"{sorted({len(r) for r in scores})} scores for {n} examples and {k} classes")
                unknown = sorted({c for row in names for c in row} - set(class_names))
                if unknown:
                    problems.append(f"{WHERE}: {name} names classes outside {list(class_names)}: {unknown}")
                if classify:  # every row names every class, in label order
                    wrong = [row for row in names if list(row) != list(class_names)]
                    if wrong:
                        problems.append(f"{WHERE}: {name} names classes {wrong[0]}, expected {list(class_names)}")
                if latency[name] > latency_budget_ms:
                    problems.append(f"{WHERE}: {name} took {latency[name]} ms for one example (median of "
                                    f"{LATENCY_CALLS}), over the {latency_budget_ms} ms budget")
                checks.append(f"{WHERE}: {name} answered {n} examples")
        except (OSError, ValueError, KeyError) as e:  # the status call itself failed
            problems.append(f"{WHERE}: {type(e).__name__}: {e}")
        finally:
            channel.close()
            code = server.stop()
            if code != 0:
                problems.append(f"{WHERE}: the server exited with code {code} on SIGTERM; see {server.log}")
        return problems, checks, latency


def start(model_dir: str, workdir: str, log_path: str) -> ServedCandidate:
    """Starts serving model_dir as version 1 of SERVED_NAME (its base path made
    in workdir, the server's log written to log_path) and returns at once; the
    server is up when ServedCandidate.check asks it. The ServingCheck's
    `over_server_fn` names this function."""
    return ServedCandidate(model_dir, workdir, log_path)


# Each client call returns (class names per example, scores per example), as a
# TF Serving client reads them; a wrong dtype raises ValueError.

def _grpc_predict(stub, images: list) -> tuple:
    import tensorflow as tf

    outputs = stub.Predict(client.predict_request(SERVED_NAME, images), timeout=RPC_TIMEOUT_S).outputs
    for name, dtype in ((contract.PROBABILITIES_OUTPUT, tf.float32), (contract.CLASS_INDEX_OUTPUT, tf.int32),
                        (contract.CLASS_NAME_OUTPUT, tf.string)):
        if name not in outputs:
            raise ValueError(f"no output {name!r} (has {sorted(outputs)})")
        if outputs[name].dtype != dtype.as_datatype_enum:
            got = tf.dtypes.as_dtype(outputs[name].dtype).name
            raise ValueError(f"output {name!r} is {got}, expected {dtype.name}")
    names = [[c.decode()] for c in tf.make_ndarray(outputs[contract.CLASS_NAME_OUTPUT]).tolist()]
    return names, tf.make_ndarray(outputs[contract.PROBABILITIES_OUTPUT]).tolist()


def _grpc_classify(stub, images: list) -> tuple:
    from tensorflow_serving.apis import classification_pb2

    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = SERVED_NAME
    request.model_spec.signature_name = contract.CLASSIFY_SIGNATURE
    for image in images:
        request.input.example_list.examples.add().features.feature[contract.IMAGE_KEY].bytes_list.value.append(image)
    rows = stub.Classify(request, timeout=RPC_TIMEOUT_S).result.classifications
    return [[c.label for c in row.classes] for row in rows], [[c.score for c in row.classes] for row in rows]


def _rest(server, suffix: str, body: Optional[dict] = None) -> dict:
    """GET (or POST `body` to) the candidate's REST URL + suffix; an HTTP error raises OSError with its body."""
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.rest}/v1/models/{SERVED_NAME}{suffix}", data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=RPC_TIMEOUT_S) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:
        raise OSError(f"HTTP {e.code}: {e.read().decode(errors='replace')[:500]}") from None


def _b64(image: bytes) -> dict:
    return {"b64": base64.b64encode(image).decode()}


def _rest_predict(server, images: list) -> tuple:
    predictions = _rest(server, ":predict", client.predict_body(images))["predictions"]
    return ([[p[contract.CLASS_NAME_OUTPUT]] for p in predictions],
            [p[contract.PROBABILITIES_OUTPUT] for p in predictions])


def _rest_classify(server, images: list) -> tuple:
    results = _rest(server, ":classify", {"signature_name": contract.CLASSIFY_SIGNATURE,
                                          "examples": [{contract.IMAGE_KEY: _b64(i)} for i in images]})["results"]
    return [[label for label, _ in row] for row in results], [[score for _, score in row] for row in results]
