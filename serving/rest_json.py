"""TF Serving's REST JSON formats <-> {name: numpy array}.

The shapes follow https://www.tensorflow.org/tfx/serving/api_rest:
- predict, row format: {"instances": [...]} -> {"predictions": [...]};
- predict, columnar format: {"inputs": ...} -> {"outputs": ...};
- classify: {"examples": [{feature: value}], "context": {...}} -> {"results": [[[label, score]]]};
- binary values travel as {"b64": "<base64>"}; the server decodes them, so a
  signature receives raw bytes. String outputs whose name ends in "_bytes" go
  back as {"b64": ...}, other strings as UTF-8 text.
"""
from __future__ import annotations

import base64
import binascii

import numpy as np

from happysad.serving.inference import InvalidArgument, check_batch_size
from happysad.serving.server_config import Limits


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"b64"} and isinstance(value["b64"], str):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError) as e:
                raise InvalidArgument(f"Unable to base64 decode: {e}") from e
        raise InvalidArgument(f"JSON object {sorted(value)!r} where a value was expected "
                              "(binary values are {\"b64\": \"...\"})")
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, str):
        return value.encode()
    return value


def _array(values) -> np.ndarray:
    decoded = _decode(values)
    try:
        array = np.array(decoded)
    except ValueError as e:  # ragged lists
        raise InvalidArgument(f"inputs are not a rectangular tensor: {e}") from e
    if array.dtype.kind in ("S", "U"):
        array = np.array(decoded, dtype=object)
    return array


def _batch_size(values) -> int:
    return len(values) if isinstance(values, list) else 1


def predict_request(body, input_names: list, limits: Limits = Limits()) -> tuple:
    """Parses a :predict body. Returns (inputs {name: array}, row_format).
    The batch size is checked before anything is decoded."""
    if not isinstance(body, dict):
        raise InvalidArgument("Request body must be a JSON object with \"instances\" or \"inputs\"")
    has_rows, has_columns = "instances" in body, "inputs" in body
    if has_rows == has_columns:
        raise InvalidArgument("Missing 'inputs' or 'instances' key" if not has_rows else
                              "Not both 'inputs' and 'instances' can be set")
    if has_rows:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise InvalidArgument("'instances' must be a non-empty JSON list")
        check_batch_size(len(instances), limits)
        named = [isinstance(i, dict) and not (set(i) == {"b64"}) for i in instances]
        if any(named):
            if not all(named):
                raise InvalidArgument("instances mix named (object) and unnamed values")
            keys = {tuple(sorted(i)) for i in instances}
            if len(keys) != 1:
                raise InvalidArgument("every instance must name the same inputs")
            return {k: _array([i[k] for i in instances]) for k in instances[0]}, True
        if len(input_names) != 1:
            raise InvalidArgument(f"the signature has inputs {input_names}: name them in each instance")
        return {input_names[0]: _array(instances)}, True
    inputs = body["inputs"]
    for column in (inputs.values() if isinstance(inputs, dict) and set(inputs) != {"b64"} else [inputs]):
        check_batch_size(_batch_size(column), limits)
    if isinstance(inputs, dict) and set(inputs) != {"b64"}:
        return {k: _array(v) for k, v in inputs.items()}, False
    if len(input_names) != 1:
        raise InvalidArgument(f"the signature has inputs {input_names}: give \"inputs\" as an object")
    return {input_names[0]: _array(inputs)}, False


def _jsonable(array: np.ndarray, name: str):
    if array.dtype == object or array.dtype.kind == "S":
        if name.endswith("_bytes"):
            return np.vectorize(lambda b: {"b64": base64.b64encode(b).decode()}, otypes=[object])(array).tolist()
        return np.vectorize(lambda b: b.decode("utf-8", "replace"), otypes=[object])(array).tolist()
    return array.tolist()


def predict_response(outputs: dict, row_format: bool) -> dict:
    if row_format:
        names = sorted(outputs)
        columns = {n: _jsonable(outputs[n], n) for n in names}
        rows = len(next(iter(columns.values())))
        if len(names) == 1:
            return {"predictions": columns[names[0]]}
        return {"predictions": [{n: columns[n][i] for n in names} for i in range(rows)]}
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        return {"outputs": _jsonable(array, name)}
    return {"outputs": {n: _jsonable(a, n) for n, a in outputs.items()}}


def _feature(value):
    import tensorflow as tf

    values = _decode(value if isinstance(value, list) else [value])
    if all(isinstance(v, bytes) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    raise InvalidArgument(f"feature value {value!r} is not a string, {{\"b64\"}}, int or float (or a list of one kind)")


def classify_examples(body, limits: Limits = Limits()) -> list:
    """Parses a :classify body into serialized tf.Examples (context merged into each)."""
    import tensorflow as tf

    if not isinstance(body, dict) or not isinstance(body.get("examples"), list) or not body["examples"]:
        raise InvalidArgument("Request body must have a non-empty \"examples\" list")
    check_batch_size(len(body["examples"]), limits)
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise InvalidArgument("\"context\" must be a JSON object of features")
    serialized = []
    for example in body["examples"]:
        if not isinstance(example, dict):
            raise InvalidArgument("each example must be a JSON object of features")
        features = {name: _feature(value) for name, value in {**context, **example}.items()}
        serialized.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return serialized


def classify_response(results: list) -> dict:
    return {"results": [[[label, score] for label, score in row] for row in results]}
