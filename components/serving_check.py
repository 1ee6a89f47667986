"""ServingCheck: before the Pusher, the candidate must load and answer as TF Serving would run it.

TFX's InfraValidator starts a real model server in Docker or Kubernetes;
neither runs here. This component does the same job with what runs here,
twice: in process, it loads the candidate through the session-based loader
TF Serving uses (components/saved_model_bundle.py) and runs every signature on
real eval examples by tensor name; then it has the candidate served and asks
the server, as a client would. That second half is the pipeline's to give,
as it gives the Trainer its run_fn: `over_server_fn` names the function
(happysad.serving.loopback_check.start: a `happysad serve` on free loopback
ports, asked over gRPC and REST), so this module never imports the server.
Both halves check the answers' shapes, dtypes and class names, and a
latency budget. It writes an InfraBlessing (custom property `blessed`, as
InfraValidator's); the Pusher takes it, so a model TF Serving could not serve
is never pushed. `serving_check.json` beside it says why, and `serve.log`
holds the server's log.
"""

import contextlib
import json
import os
import tempfile
import time
from typing import Callable, Optional

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
# Not tfx.v1: its import loads Google Cloud's clients, a cost on every run
# (benchmarks/RESULTS.md, Figures from code comments).
from tfx.types import standard_artifacts
from tfx.utils import import_utils

from happysad import contract
from happysad.components.examples_artifact import split_records
from happysad.components.saved_model_bundle import SavedModelBundle, error_summary

SAMPLE_SIZE = 8  # eval examples replayed through each signature
SERVER_LOG_FILE = "serve.log"  # the server's log, kept beside serving_check.json


def check_model(model_dir: str, examples: list, class_names: list, latency_budget_ms: float,
                serve: Optional[Callable] = None, log_dir: Optional[str] = None) -> dict:
    """Loads model_dir as TF Serving does and runs each signature on `examples`;
    with `serve`, has the candidate served and asks the server the same.

    serve(model_dir, workdir, log_path) starts serving it in the background
    (its log to log_dir/serve.log) and returns a context manager whose
    check(examples, class_names, latency_budget_ms) gives (problems, checks,
    {API call: median batch-1 ms}). The pipeline's is named in pipeline/configs.py.
    Replays the model's warm-up requests first, as TF Serving does at load.
    Returns {"blessed": bool, "problems": [sentence], "checks": [sentence],
    "latency_ms": {signature: batch-1 ms in process, after one warm-up call},
    "server_latency_ms": {API call: median batch-1 ms over the server}}. Never
    raises for a bad model: a model that cannot load is a problem, not a crash."""
    with tempfile.TemporaryDirectory(prefix="serving-check-") as tmp, contextlib.ExitStack() as stack:
        served = None
        if serve is not None:  # the server starts (it imports TensorFlow) while the in-process check runs
            served = stack.enter_context(serve(model_dir, tmp, os.path.join(log_dir or tmp, SERVER_LOG_FILE)))
        problems, checks, latency = _check_in_process(model_dir, examples, class_names, latency_budget_ms)
        server_latency = {}
        if served is not None:
            server_problems, server_checks, server_latency = served.check(examples, class_names, latency_budget_ms)
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
    over_server_fn: Parameter[str],
    latency_budget_ms: Parameter[float] = 500.0,
) -> None:
    """class_names: a JSON list, in label order. over_server_fn: the dotted
    name of check_model's `serve`, imported here as the Trainer imports its run_fn."""
    names = json.loads(class_names)
    module, name = over_server_fn.rsplit(".", 1)
    serve = import_utils.import_func_from_module(module, name)
    os.makedirs(blessing.uri, exist_ok=True)
    result = check_model(serving_model_dir(model.uri), list(split_records(examples.uri, "eval", SAMPLE_SIZE)),
                         names, latency_budget_ms, serve=serve, log_dir=blessing.uri)
    with open(os.path.join(blessing.uri, contract.SERVING_CHECK_FILE), "w") as f:
        json.dump(result, f, indent=2)
    # The Pusher reads `blessed`, as it does from InfraValidator's blessing.
    blessing.set_int_custom_property("blessed", 1 if result["blessed"] else 0)
    if result["problems"]:
        blessing.set_string_custom_property("problems", "; ".join(result["problems"])[:2000])
