"""Running a signature of a loaded version: what both the REST and gRPC APIs call.

Inputs and outputs are {name: numpy array}; the APIs convert their wire
formats to and from these. Errors carry TF Serving's meaning: InvalidArgument
(400 / INVALID_ARGUMENT) for anything wrong with the request.
"""
from __future__ import annotations

import functools

import numpy as np

from happysad.components.saved_model_bundle import error_summary
from happysad import contract
from happysad.serving.model_registry import LoadedVersion
from happysad.serving.server_config import Limits


def check_batch_size(size: int, limits: Limits) -> None:
    """InvalidArgument in TF Serving's words when a request carries too many examples."""
    if size > limits.max_batch_size:
        raise InvalidArgument(f"Task size {size} is larger than maximum input batch size {limits.max_batch_size}: "
                              f"send at most {limits.max_batch_size} examples a request "
                              "(happysad serve --max-batch-size)")


class InvalidArgument(ValueError):
    """The request is malformed or does not fit the signature."""


class FailedPrecondition(InvalidArgument):
    """The model cannot serve this kind of request (no such signature, wrong
    method): TF Serving's FAILED_PRECONDITION, 400 over REST."""


def signature_name(loaded: LoadedVersion, name: str) -> str:
    """The signature a request names ("" is serving_default); FailedPrecondition if the model lacks it."""
    if not isinstance(name, str):
        raise InvalidArgument(f"signature_name must be a string, got {name!r}")
    name = name or contract.SERVING_SIGNATURE
    if name not in loaded.signature_defs:
        raise FailedPrecondition(f"Serving signature name: \"{name}\" not found in signature def")
    return name


def input_specs(loaded: LoadedVersion, name: str) -> dict:
    """{input name: (tf.DType, tf.TensorShape)} of a signature."""
    return loaded.bundle.input_specs(signature_name(loaded, name))


def run(loaded: LoadedVersion, name: str, inputs: dict, output_filter=(), limits: Limits = Limits()) -> dict:
    """Runs one signature through the session, as TF Serving does, chunk by
    chunk; returns {output name: numpy array}."""
    import tensorflow as tf

    name = signature_name(loaded, name)
    specs = input_specs(loaded, name)
    missing, extra = set(specs) - set(inputs), set(inputs) - set(specs)
    if missing or extra:
        raise InvalidArgument(f"signature {name!r} takes inputs {sorted(specs)}; got {sorted(inputs)}")
    arrays = {}
    for key, (dtype, shape) in specs.items():
        try:
            arrays[key] = np.asarray(inputs[key], dtype=dtype.as_numpy_dtype)
        except (TypeError, ValueError, OverflowError) as e:
            raise InvalidArgument(f"input {key!r}: expected {dtype.name} values: {e}") from e
        if dtype == tf.string and not all(isinstance(v, (bytes, str)) for v in arrays[key].flat):
            raise InvalidArgument(f"input {key!r}: expected string values (binary as {{\"b64\": ...}})")
        if not shape.is_compatible_with(arrays[key].shape):
            raise InvalidArgument(f"input {key!r}: expected shape {shape}, got {list(arrays[key].shape)}")
    outputs = loaded.signature_defs[name].outputs
    unknown = set(output_filter) - set(outputs)
    if unknown:
        raise InvalidArgument(f"output_filter names outputs the signature lacks: {sorted(unknown)}")
    sizes = {a.shape[0] for a in arrays.values() if a.ndim}
    if len(sizes) > 1:
        raise InvalidArgument(f"inputs of signature {name!r} differ in batch size: {sorted(sizes)}")
    size = sizes.pop() if sizes else 1
    check_batch_size(size, limits)
    try:
        _check_decode_budget(name, arrays)  # the whole request's images, before its first chunk runs
        if size <= limits.chunk_size or not all(a.ndim for a in arrays.values()):
            return loaded.bundle.run(name, arrays, output_filter)
        chunks = [loaded.bundle.run(name, {k: a[start:start + limits.chunk_size] for k, a in arrays.items()},
                                    output_filter) for start in range(0, size, limits.chunk_size)]
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    except tf.errors.OpError as e:  # e.g. bytes that are not an image, a tf.Example that does not parse
        raise InvalidArgument(error_summary(e.message)) from e
    except UnicodeDecodeError as e:  # TF's error quoted the input's bytes, which are not text
        raise InvalidArgument(f"signature {name!r} could not parse its input: it takes "
                              f"{_describe(loaded, name)} (see the model's /metadata)") from e
    except (TypeError, ValueError) as e:  # a feed the session cannot convert
        raise InvalidArgument(f"signature {name!r}: {e}") from e


@functools.lru_cache(maxsize=None)
def _budget_checks() -> dict:
    """{signature name: a tf.function that fails (InvalidArgumentError) when
    the request's images are over the decoding budget}: the serving graph's own
    check (image_decoding.check_decode_budget), run once over the whole
    request, since the server runs a request in chunks and the graph sees one."""
    import tensorflow as tf

    from happysad.components.trainer import image_decoding

    def check(encoded):
        with tf.control_dependencies([image_decoding.check_decode_budget(encoded)]):
            return tf.constant(True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def images(encoded):
        return check(encoded)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def examples(serialized):
        spec = {contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, default_value=b"")}
        return check(tf.io.parse_example(serialized, spec)[contract.IMAGE_KEY])

    return {contract.SERVING_SIGNATURE: images, contract.CLASSIFY_SIGNATURE: examples,
            contract.EVAL_SIGNATURE: examples}


def _check_decode_budget(name: str, arrays: dict) -> None:
    check = _budget_checks().get(name)
    if check is not None and len(arrays) == 1:
        (array,) = arrays.values()
        if array.ndim == 1:
            check(array)


def _describe(loaded: LoadedVersion, name: str) -> str:
    return ", ".join(f"{key} ({dtype.name} {shape})" for key, (dtype, shape) in input_specs(loaded, name).items())


def classify(loaded: LoadedVersion, name: str, serialized_examples: list, limits: Limits = Limits()) -> list:
    """Runs a classification signature; returns [[(class, score), ...] per example]."""
    name = signature_name(loaded, name)
    method = loaded.signature_defs[name].method_name
    if method != contract.CLASSIFY_METHOD:
        raise FailedPrecondition(f"Expected classification signature method_name to be {contract.CLASSIFY_METHOD}. "
                                 f"Was: {method}")
    if not serialized_examples:
        raise InvalidArgument("Input is empty: give at least one example")
    (input_name,) = input_specs(loaded, name)
    outputs = run(loaded, name, {input_name: np.array(serialized_examples, dtype=object)}, limits=limits)
    classes, scores = outputs.get("classes"), outputs["scores"]
    return [[((classes[i][j].decode() if classes is not None else str(j)), float(scores[i][j]))
             for j in range(scores.shape[1])] for i in range(scores.shape[0])]
