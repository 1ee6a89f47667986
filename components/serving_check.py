"""ServingCheck: before the Pusher, the candidate must load and answer as TF Serving would run it.

TFX's InfraValidator starts a real model server in Docker or Kubernetes;
neither runs here. This component does the same job with what runs here,
twice: in process, it loads the candidate through the session-based loader
TF Serving uses (components/saved_model_bundle.py) and runs every signature on
real eval examples by tensor name; then it serves the candidate with a
`happysad serve` on free loopback ports and asks it over gRPC and REST, as a
client would. Both check the answers' shapes, dtypes and class names, and a
latency budget. It writes an InfraBlessing (custom property `blessed`, as
InfraValidator's); the Pusher takes it, so a model TF Serving could not serve
is never pushed. `serving_check.json` beside it says why, and `serve.log`
holds the server's log.
"""

import base64
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts  # not tfx.v1: it imports Google Cloud clients, ~4 s on every run

from happysad.components.examples_artifact import split_records
from happysad.components.saved_model_bundle import SavedModelBundle, error_summary, warmup_logs
from happysad import contract
from happysad.serving import client, loopback

SAMPLE_SIZE = 8  # eval examples replayed through each signature
SERVED_NAME = "candidate"  # the model's name on the check's own server
SERVER_LOG_FILE = "serve.log"  # the server's log, kept beside serving_check.json
LATENCY_CALLS = 5  # batch-1 calls per API over the server; the median is checked against the budget
RPC_TIMEOUT_S = 30.0


def check_model(model_dir: str, examples: list, class_names: list, latency_budget_ms: float,
                over_server: bool = True, log_dir: Optional[str] = None) -> dict:
    """Loads model_dir as TF Serving does and runs each signature on `examples`;
    with `over_server`, asks a `happysad serve` on a free loopback port the
    same, over gRPC and REST (its log goes to log_dir/serve.log).

    Replays the model's warm-up requests first, as TF Serving does at load.
    Returns {"blessed": bool, "problems": [sentence], "checks": [sentence],
    "latency_ms": {signature: batch-1 ms in process, after one warm-up call},
    "server_latency_ms": {API call: median batch-1 ms over the server}}. Never
    raises for a bad model: a model that cannot load is a problem, not a crash."""
    with tempfile.TemporaryDirectory(prefix="serving-check-") as tmp:
        starting = None
        if over_server:  # the server starts (~4 s: it imports TensorFlow) while the in-process check runs
            base = os.path.join(tmp, SERVED_NAME)
            os.makedirs(base)
            os.symlink(os.path.abspath(model_dir), os.path.join(base, "1"))
            log = os.path.join(log_dir or tmp, SERVER_LOG_FILE)
            pool = ThreadPoolExecutor(1)
            starting = pool.submit(loopback.start, log, ["--model-base-path", base, "--model-name", SERVED_NAME])
            pool.shutdown(wait=False)  # the thread ends when the server listens
        try:
            problems, checks, latency = _check_in_process(model_dir, examples, class_names, latency_budget_ms)
        except BaseException:
            if starting is not None:
                _stop(starting)
            raise
        server_latency = {}
        if starting is not None:
            server_problems, server_checks, server_latency = _check_over_server(
                starting, model_dir, examples, class_names, latency_budget_ms)
            problems += server_problems
            checks += server_checks
    return {"blessed": not problems, "problems": problems, "checks": checks, "latency_ms": latency,
            "server_latency_ms": server_latency}


def _check_in_process(model_dir: str, examples: list, class_names: list, latency_budget_ms: float) -> tuple:
    """(problems, checks, latency_ms) of the session-based loader in this process."""
    import numpy as np
    import tensorflow as tf

    problems, checks, latency = [], [], {}
    try:
        bundle = SavedModelBundle(model_dir)
    except Exception as e:  # any loader failure is the verdict
        return [f"the SavedModel does not load through TF Serving's session-based loader: "
                f"{type(e).__name__}: {error_summary(e)[:500]}"], checks, latency
    try:
        try:
            warmup = bundle.warm_up()
        except Exception as e:
            warmup = 0
            problems.append(f"its warm-up requests (assets.extra/tf_serving_warmup_requests) fail, which fails "
                            f"the load in TF Serving: {type(e).__name__}: {error_summary(e)[:500]}")
        checks.append(f"warm-up: {warmup} requests replayed")
        if not examples:
            problems.append("no eval examples to replay through the signatures")
        parsed = [tf.train.Example.FromString(e) for e in examples]
        images = np.array([p.features.feature[contract.IMAGE_KEY].bytes_list.value[0] for p in parsed],
                          dtype=object)
        client_examples = np.array([_image_only(p) for p in parsed], dtype=object)
        n, k = len(examples), len(class_names)

        def run(signature, inputs, expect):
            if signature not in bundle.signature_defs:
                problems.append(f"signature {signature!r} is missing (has {sorted(bundle.signature_defs)})")
                return None
            try:
                outputs = bundle.run(signature, inputs)  # the first call also builds the session's kernels
                started = time.perf_counter()
                bundle.run(signature, {name: value[:1] for name, value in inputs.items()})
                latency[signature] = round((time.perf_counter() - started) * 1000, 2)
            except Exception as e:
                problems.append(f"signature {signature!r} fails through the session path: "
                                f"{type(e).__name__}: {error_summary(e)[:500]}")
                return None
            for name, (dtype, shape) in expect.items():
                got = outputs.get(name)
                if got is None:
                    problems.append(f"signature {signature!r} has no output {name!r}")
                elif got.dtype != dtype or list(got.shape) != shape:
                    problems.append(f"signature {signature!r} output {name!r}: expected {np.dtype(dtype).name} "
                                    f"{shape}, got {got.dtype.name} {list(got.shape)}")
            if latency.get(signature, 0) > latency_budget_ms:
                problems.append(f"signature {signature!r} took {latency[signature]} ms for one example, "
                                f"over the {latency_budget_ms} ms budget")
            checks.append(f"{signature}: {n} examples answered through the session path")
            return outputs

        served = run(contract.SERVING_SIGNATURE, {"images": images}, {
            contract.PROBABILITIES_OUTPUT: (np.float32, [n, k]), contract.CLASS_INDEX_OUTPUT: (np.int32, [n]),
            contract.CLASS_NAME_OUTPUT: (object, [n])})
        if served is not None and contract.CLASS_NAME_OUTPUT in served:
            unknown = {c.decode() for c in served[contract.CLASS_NAME_OUTPUT]} - set(class_names)
            if unknown:
                problems.append(f"serving_default names classes outside {class_names}: {sorted(unknown)}")
        if contract.CLASSIFY_SIGNATURE in bundle.signature_defs:
            method = bundle.signature_defs[contract.CLASSIFY_SIGNATURE].method_name
            if method != contract.CLASSIFY_METHOD:
                problems.append(f"signature 'classify' has method_name {method!r}; TF Serving's Classify "
                                f"API needs {contract.CLASSIFY_METHOD!r}")
        classified = run(contract.CLASSIFY_SIGNATURE, {"inputs": client_examples},
                         {"classes": (object, [n, k]), "scores": (np.float32, [n, k])})
        if classified is not None and "classes" in classified and len(classified["classes"]):
            names = [c.decode() for c in classified["classes"][0]]
            if names != list(class_names):
                problems.append(f"classify names classes {names}, expected {list(class_names)}")
        run(contract.EVAL_SIGNATURE, {"examples": np.array(examples, dtype=object)},
            {contract.EVAL_PREDICTION_KEY: (np.float32, [n, 1 if k == 2 else k])})
    finally:
        bundle.close()
    return problems, checks, latency


def _check_over_server(starting, model_dir: str, examples: list, class_names: list,
                       latency_budget_ms: float) -> tuple:
    """(problems, checks, latency_ms) of the candidate served by the `happysad
    serve` that `starting` (a Future of loopback.start) brings up: its version
    status, its warm-up requests replayed over gRPC, then gRPC Predict and
    Classify and REST :predict and :classify on the examples."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    where = "over happysad serve"
    try:
        server = starting.result()
    except loopback.ServerDidNotStart as e:
        return [f"{where}: {e}"], [], {}
    problems, checks, latency = [], [], {}
    channel = grpc.insecure_channel(server.grpc)
    try:
        status = _rest(server, "")["model_version_status"]
        states = {row["version"]: row for row in status}
        if states.get("1", {}).get("state") != "AVAILABLE":
            row = states.get("1", {})
            return [f"{where}: the candidate is not AVAILABLE ({row.get('state', 'not found')}): "
                    f"{row.get('status', {}).get('error_message', '')[:500]}"], checks, latency
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        warmed = 0
        for log in warmup_logs(model_dir):
            kind = log.WhichOneof("log_type")
            request = getattr(log, kind).request
            request.model_spec.name = SERVED_NAME
            try:
                (stub.Predict if kind == "predict_log" else stub.Classify)(request, timeout=RPC_TIMEOUT_S)
                warmed += 1
            except grpc.RpcError as e:
                problems.append(f"{where}: warm-up {kind} fails over gRPC: {e.code().name}: {e.details()[:500]}")
        checks.append(f"{where}: version 1 AVAILABLE; {warmed} warm-up requests replayed over gRPC")
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
                problems.append(f"{where}: {name} fails: {detail[:500]}")
                continue
            latency[name] = round(sorted(times)[len(times) // 2], 2)
            if len(names) != n or any(len(row) != k for row in scores):
                problems.append(f"{where}: {name} answered {len(names)} rows of {sorted({len(r) for r in scores})} "
                                f"scores for {n} examples and {k} classes")
            unknown = sorted({c for row in names for c in row} - set(class_names))
            if unknown:
                problems.append(f"{where}: {name} names classes outside {list(class_names)}: {unknown}")
            if classify:  # every row names every class, in label order
                wrong = [row for row in names if list(row) != list(class_names)]
                if wrong:
                    problems.append(f"{where}: {name} names classes {wrong[0]}, expected {list(class_names)}")
            if latency[name] > latency_budget_ms:
                problems.append(f"{where}: {name} took {latency[name]} ms for one example (median of "
                                f"{LATENCY_CALLS}), over the {latency_budget_ms} ms budget")
            checks.append(f"{where}: {name} answered {n} examples")
    except (OSError, ValueError, KeyError) as e:  # the status call itself failed
        problems.append(f"{where}: {type(e).__name__}: {e}")
    finally:
        channel.close()
        code = server.stop()
        if code != 0:
            problems.append(f"{where}: the server exited with code {code} on SIGTERM; see {server.log}")
    return problems, checks, latency


def _stop(starting) -> None:
    try:
        starting.result().stop()
    except loopback.ServerDidNotStart:
        pass


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


def _image_only(example) -> bytes:
    """What a TF Serving client sends to classify: a tf.Example with the image and no label."""
    import tensorflow as tf

    image = example.features.feature[contract.IMAGE_KEY]
    return tf.train.Example(features=tf.train.Features(feature={contract.IMAGE_KEY: image})).SerializeToString()


def serving_model_dir(model_uri: str) -> str:
    """Where the Trainer put the SavedModel inside a Model artifact."""
    return os.path.join(model_uri, "Format-Serving")


@component
def ServingCheck(
    model: InputArtifact[standard_artifacts.Model],
    examples: InputArtifact[standard_artifacts.Examples],
    blessing: OutputArtifact[standard_artifacts.InfraBlessing],
    class_names: Parameter[str],
    latency_budget_ms: Parameter[float] = 500.0,
) -> None:
    """class_names: a JSON list, in label order."""
    names = json.loads(class_names)
    os.makedirs(blessing.uri, exist_ok=True)
    result = check_model(serving_model_dir(model.uri), list(split_records(examples.uri, "eval", SAMPLE_SIZE)),
                         names, latency_budget_ms, log_dir=blessing.uri)
    with open(os.path.join(blessing.uri, contract.SERVING_CHECK_FILE), "w") as f:
        json.dump(result, f, indent=2)
    # The Pusher reads `blessed`, as it does from InfraValidator's blessing.
    blessing.set_int_custom_property("blessed", 1 if result["blessed"] else 0)
    if result["problems"]:
        blessing.set_string_custom_property("problems", "; ".join(result["problems"])[:2000])
