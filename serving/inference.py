"""Running a signature of a loaded version: what both the REST and gRPC APIs call.

Inputs and outputs are {name: numpy array}; the APIs convert their wire
formats to and from these. Errors carry TF Serving's meaning: InvalidArgument
(400 / INVALID_ARGUMENT) for anything wrong with the request.
"""
from __future__ import annotations

import numpy as np

from serving.model_registry import LoadedVersion

DEFAULT_SIGNATURE = "serving_default"
CLASSIFY_METHOD = "tensorflow/serving/classify"


class InvalidArgument(ValueError):
    """The request is malformed or does not fit the signature."""


class FailedPrecondition(InvalidArgument):
    """The model cannot serve this kind of request (no such signature, wrong
    method): TF Serving's FAILED_PRECONDITION, 400 over REST."""


def signature(loaded: LoadedVersion, name: str):
    name = name or DEFAULT_SIGNATURE
    if name not in loaded.signatures:
        raise FailedPrecondition(f"Serving signature name: \"{name}\" not found in signature def")
    return loaded.signatures[name]


def input_specs(function) -> dict:
    """{input name: tf.TensorSpec} of a signature function."""
    return dict(function.structured_input_signature[1])


def run(loaded: LoadedVersion, signature_name: str, inputs: dict, output_filter=()) -> dict:
    """Calls one signature; returns {output name: numpy array}."""
    import tensorflow as tf

    function = signature(loaded, signature_name)
    specs = input_specs(function)
    missing, extra = set(specs) - set(inputs), set(inputs) - set(specs)
    if missing or extra:
        raise InvalidArgument(f"signature {signature_name or DEFAULT_SIGNATURE!r} takes inputs "
                              f"{sorted(specs)}; got {sorted(inputs)}")
    tensors = {}
    for name, spec in specs.items():
        try:
            tensors[name] = tf.convert_to_tensor(inputs[name], dtype=spec.dtype)
        except (TypeError, ValueError) as e:
            raise InvalidArgument(f"input {name!r}: expected {spec.dtype.name} values: {e}") from e
        if not spec.shape.is_compatible_with(tensors[name].shape):
            raise InvalidArgument(f"input {name!r}: expected shape {spec.shape}, got {tensors[name].shape}")
    try:
        outputs = function(**tensors)
    except tf.errors.InvalidArgumentError as e:  # e.g. bytes that are not an image
        raise InvalidArgument(_op_error(e.message)) from e
    if output_filter:
        unknown = set(output_filter) - set(outputs)
        if unknown:
            raise InvalidArgument(f"output_filter names outputs the signature lacks: {sorted(unknown)}")
        outputs = {k: v for k, v in outputs.items() if k in output_filter}
    return {k: v.numpy() for k, v in outputs.items()}


def _op_error(message: str) -> str:
    """The op's own words from a graph execution error (not the stack noise)."""
    lines = [line.strip() for line in message.splitlines()]
    useful = [line for line in lines if line and not line.startswith(("Graph execution error", "Detected at node",
                                                                      "<stack traces", "[[", "File "))]
    return useful[0] if useful else lines[0]


def classify(loaded: LoadedVersion, signature_name: str, serialized_examples: list) -> list:
    """Runs a classification signature; returns [[(class, score), ...] per example]."""
    function = signature(loaded, signature_name)
    method = loaded.signature_defs[signature_name or DEFAULT_SIGNATURE].method_name
    if method != CLASSIFY_METHOD:
        raise FailedPrecondition(f"Expected classification signature method_name to be {CLASSIFY_METHOD}. "
                                 f"Was: {method}")
    if not serialized_examples:
        raise InvalidArgument("Input is empty: give at least one example")
    outputs = run(loaded, signature_name, {next(iter(input_specs(function))): np.array(serialized_examples,
                                                                                        dtype=object)})
    classes, scores = outputs.get("classes"), outputs["scores"]
    return [[((classes[i][j].decode() if classes is not None else str(j)), float(scores[i][j]))
             for j in range(scores.shape[1])] for i in range(scores.shape[0])]
