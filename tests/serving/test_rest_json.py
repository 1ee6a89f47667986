"""TF Serving's REST JSON conventions, without a server."""
import numpy as np
import pytest
import tensorflow as tf

from happysad.serving import rest_json
from happysad.serving.inference import InvalidArgument


def test_b64_objects_become_raw_bytes_in_both_formats():
    rows, row_format = rest_json.predict_request({"instances": [{"b64": "aGk="}, {"b64": "eW8="}]}, ["images"])
    assert row_format and rows["images"].tolist() == [b"hi", b"yo"]
    columns, row_format = rest_json.predict_request({"inputs": {"images": [{"b64": "aGk="}]}}, ["images"])
    assert not row_format and columns["images"].tolist() == [b"hi"]


def test_outputs_follow_the_format_and_the_bytes_suffix():
    outputs = {"scores": np.array([[0.25, 0.75]], np.float32), "label": np.array([b"sad"], object),
               "thumb_bytes": np.array([b"\x89PNG"], object)}
    rows = rest_json.predict_response(outputs, row_format=True)
    assert rows == {"predictions": [{"scores": [0.25, 0.75], "label": "sad", "thumb_bytes": {"b64": "iVBORw=="}}]}
    assert rest_json.predict_response({"scores": outputs["scores"]}, row_format=False) == {"outputs": [[0.25, 0.75]]}


def test_classify_examples_are_typed_and_take_the_context():
    (serialized,) = rest_json.classify_examples({"context": {"source": "cam"},
                                                 "examples": [{"image": {"b64": "aGk="}, "n": 3, "w": [0.5, 1]}]})
    feature = tf.train.Example.FromString(serialized).features.feature
    assert feature["image"].bytes_list.value == [b"hi"] and feature["source"].bytes_list.value == [b"cam"]
    assert feature["n"].int64_list.value == [3] and list(feature["w"].float_list.value) == [0.5, 1.0]


@pytest.mark.parametrize("body, says", [
    ([1, 2], "JSON object"),
    ({"instances": []}, "non-empty"),
    ({"instances": [{"images": {"b64": "aGk="}}, {"b64": "aGk="}]}, "mix named"),
    ({"instances": [[1, 2], [3]]}, "rectangular"),
    ({"instances": [{"a": 1}, {"b": 2}]}, "same inputs"),
])
def test_malformed_predict_bodies(body, says):
    with pytest.raises(InvalidArgument, match=says):
        rest_json.predict_request(body, ["images"])


def test_any_json_body_parses_or_is_an_invalid_argument():
    """Property: whatever JSON a client sends, the parsers answer with tensors
    or InvalidArgument (400), never another exception (500), and no tensor
    holds more elements than the body had characters."""
    import json

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    scalars = st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats() | st.text(max_size=8)
    b64 = st.builds(lambda s: {"b64": s}, st.text("aGk=+/ \n", max_size=8))
    values = st.recursive(scalars | b64, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["instances", "inputs", "images", "b64", "examples", "context", "signature_name", "x"]),
        inner, max_size=3), max_leaves=30)

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(values, st.sampled_from([["images"], ["images", "other"]]))
    def parse(body, input_names):
        text = json.dumps(body)
        try:
            inputs, _ = rest_json.predict_request(body, input_names)
            assert all(np.asarray(a).size <= len(text) for a in inputs.values())
        except InvalidArgument:
            pass
        try:
            rest_json.classify_examples(body)
        except InvalidArgument:
            pass

    parse()
