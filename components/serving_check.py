"""ServingCheck: before the Pusher, the candidate must load and answer as TF Serving would run it.

TFX's InfraValidator starts a real model server in Docker or Kubernetes;
neither runs here. This component does the part that catches real failures
without one: it loads the candidate through the session-based loader TF
Serving uses (components/saved_model_bundle.py), runs every signature on real
eval examples by tensor name, and checks the answers' shapes, dtypes and class
names, and a latency budget. It writes an InfraBlessing (custom property
`blessed`, as InfraValidator's); the Pusher takes it, so a model TF Serving
could not serve is never pushed. `serving_check.json` beside it says why.
"""

import json
import os
import time

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts  # not tfx.v1: it imports Google Cloud clients, ~4 s on every run

from happysad.components.examples_artifact import split_records
from happysad.components.saved_model_bundle import SavedModelBundle, error_summary
from happysad.components.trainer import features

SAMPLE_SIZE = 8  # eval examples replayed through each signature


def check_model(model_dir: str, examples: list, class_names: list, latency_budget_ms: float) -> dict:
    """Loads model_dir as TF Serving does and runs each signature on `examples`.

    Replays the model's warm-up requests first, as TF Serving does at load.
    Returns {"blessed": bool, "problems": [sentence], "checks": [sentence],
    "latency_ms": {signature: batch-1 ms, after one warm-up call}}. Never raises for a bad model: a
    model that cannot load is a problem, not a crash."""
    import numpy as np
    import tensorflow as tf

    problems, checks, latency = [], [], {}
    try:
        bundle = SavedModelBundle(model_dir)
    except Exception as e:  # any loader failure is the verdict
        return {"blessed": False, "checks": checks, "latency_ms": latency,
                "problems": [f"the SavedModel does not load through TF Serving's session-based loader: "
                             f"{type(e).__name__}: {error_summary(e)[:500]}"]}
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
        images = np.array([p.features.feature[features.IMAGE_KEY].bytes_list.value[0] for p in parsed],
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

        served = run(features.SERVING_SIGNATURE, {"images": images}, {
            features.PROBABILITIES_OUTPUT: (np.float32, [n, k]), features.CLASS_INDEX_OUTPUT: (np.int32, [n]),
            features.CLASS_NAME_OUTPUT: (object, [n])})
        if served is not None and features.CLASS_NAME_OUTPUT in served:
            unknown = {c.decode() for c in served[features.CLASS_NAME_OUTPUT]} - set(class_names)
            if unknown:
                problems.append(f"serving_default names classes outside {class_names}: {sorted(unknown)}")
        if features.CLASSIFY_SIGNATURE in bundle.signature_defs:
            method = bundle.signature_defs[features.CLASSIFY_SIGNATURE].method_name
            if method != features.CLASSIFY_METHOD:
                problems.append(f"signature 'classify' has method_name {method!r}; TF Serving's Classify "
                                f"API needs {features.CLASSIFY_METHOD!r}")
        classified = run(features.CLASSIFY_SIGNATURE, {"inputs": client_examples},
                         {"classes": (object, [n, k]), "scores": (np.float32, [n, k])})
        if classified is not None and "classes" in classified and len(classified["classes"]):
            names = [c.decode() for c in classified["classes"][0]]
            if names != list(class_names):
                problems.append(f"classify names classes {names}, expected {list(class_names)}")
        run(features.EVAL_SIGNATURE, {"examples": np.array(examples, dtype=object)},
            {features.EVAL_PREDICTION_KEY: (np.float32, [n, 1 if k == 2 else k])})
    finally:
        bundle.close()
    return {"blessed": not problems, "problems": problems, "checks": checks, "latency_ms": latency}


def _image_only(example) -> bytes:
    """What a TF Serving client sends to classify: a tf.Example with the image and no label."""
    import tensorflow as tf

    image = example.features.feature[features.IMAGE_KEY]
    return tf.train.Example(features=tf.train.Features(feature={features.IMAGE_KEY: image})).SerializeToString()


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
    result = check_model(serving_model_dir(model.uri), list(split_records(examples.uri, "eval", SAMPLE_SIZE)),
                         names, latency_budget_ms)
    os.makedirs(blessing.uri, exist_ok=True)
    with open(os.path.join(blessing.uri, features.SERVING_CHECK_FILE), "w") as f:
        json.dump(result, f, indent=2)
    # The Pusher reads `blessed`, as it does from InfraValidator's blessing.
    blessing.set_int_custom_property("blessed", 1 if result["blessed"] else 0)
    if result["problems"]:
        blessing.set_string_custom_property("problems", "; ".join(result["problems"])[:2000])
