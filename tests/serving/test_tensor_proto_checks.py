"""gRPC TensorProtos are checked from their declared dtype and shape before
they are materialised: a 45-byte proto can declare [1, 200000000] floats."""
import re

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from happysad.serving import grpc_api, inference, server_config

SPECS = {"images": (tf.string, tf.TensorShape([None]))}
LIMITS = server_config.Limits()


def _proto(dtype, dims, unknown_rank=False, **values):
    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims],
                                              unknown_rank=unknown_rank)
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, **values)


@pytest.mark.parametrize("proto,says", [
    (_proto(types_pb2.DT_FLOAT, [1, 200_000_000], float_val=[1.0]), "expects string, but float32 was provided"),
    (_proto(types_pb2.DT_STRING, [1, 100], string_val=[b"x"]), "expected shape (None,), got [1, 100]"),
    (_proto(types_pb2.DT_STRING, [-1], string_val=[b"x"]), "dimensions must not be negative"),
    (_proto(types_pb2.DT_STRING, [], unknown_rank=True), "must give its dimensions"),
    (_proto(types_pb2.DT_STRING, [100_000_000], string_val=[b"x"]), "Task size 100000000 is larger"),
    (_proto(999, [1]), "dtype 999 was provided"),
])
def test_a_proto_that_does_not_fit_the_signature_is_refused_in_words(proto, says):
    with pytest.raises(inference.InvalidArgument, match=re.escape(says)):
        grpc_api.check_tensor_proto("images", proto, SPECS, "serving_default", LIMITS)


def test_elements_are_bounded_where_the_signature_leaves_dimensions_open():
    specs = {"x": (tf.float32, tf.TensorShape([None, None]))}
    grpc_api.check_tensor_proto("x", _proto(types_pb2.DT_FLOAT, [2, 1000]), specs, "s", LIMITS)
    with pytest.raises(inference.InvalidArgument, match="declares 256000000 elements, over the limit of 16777216"):
        grpc_api.check_tensor_proto("x", _proto(types_pb2.DT_FLOAT, [256, 1_000_000], float_val=[0.0]), specs, "s",
                                    LIMITS)


def test_any_declared_shape_is_refused_or_materialises_within_the_limit():
    """Property: random dtypes, ranks and dimensions (negative, huge, unknown)
    never get past the check with more elements than the limit, and what gets
    past it materialises or fails as an invalid proto, never anything worse."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    specs = {"x": (tf.float32, tf.TensorShape([None, None, 3]))}
    limits = server_config.Limits(max_batch_size=64, max_tensor_elements=1 << 16)
    dim = st.one_of(st.integers(-3, 8), st.integers(0, 100_000), st.integers(-2 ** 63, 2 ** 63 - 1))
    # Any rank, and shapes that fit the signature's rank and last dimension.
    fitting = st.tuples(st.integers(0, 64), dim, st.sampled_from([3, 3, -3, 2 ** 40])).map(list)
    dims = st.lists(dim, max_size=5) | fitting

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.just(types_pb2.DT_FLOAT) | st.sampled_from([types_pb2.DT_DOUBLE, types_pb2.DT_STRING, 0, 77]),
           dims, st.booleans(), st.lists(st.floats(width=32), max_size=4))
    def attack(dtype, shape, unknown_rank, values):
        proto = _proto(dtype, shape, unknown_rank, float_val=values)
        try:
            grpc_api.check_tensor_proto("x", proto, specs, "s", limits)
        except inference.InvalidArgument:
            return
        assert int(np.prod(shape, dtype=object)) <= limits.max_tensor_elements
        try:
            tf.make_ndarray(proto)
        except (ValueError, TypeError):  # content short of the declared shape: the server's 400
            pass

    attack()
