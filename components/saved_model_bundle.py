"""A SavedModel loaded the way TensorFlow Serving loads it.

TF Serving's C++ SavedModelBundle does not use TF2's object loader
(`tf.saved_model.load`). It imports the MetaGraph tagged "serve" into a
session, runs the restore and init ops, then runs each signature by feeding
and fetching the tensor names its SignatureDef lists. A model can pass the
TF2 path and fail this one ("Could not find variable ...", tensorflow#72963),
so everything here that stands in for TF Serving - `happysad serve`, the
in-process `happysad predict`, the pipeline's serving check - loads through
this class.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping

import numpy as np

from happysad import contract

SERVE_TAG = "serve"
WARMUP_FILE = os.path.join("assets.extra", contract.WARMUP_FILE)
# SavedModel's own entry for running initialisers, not a signature to serve.
_INTERNAL_PREFIX = "__"


def error_summary(message: str) -> str:
    """The useful line of a TensorFlow error: the op's own words, without the
    "Graph execution error" header, node names and stack noise."""
    lines = [line.strip() for line in str(message).splitlines()]
    useful = [line for line in lines if line and not line.startswith(
        ("Graph execution error", "Detected at node", "<stack traces", "[[", "File "))]
    return useful[0] if useful else next((line for line in lines if line), "")


def warmup_logs(model_dir: str) -> list:
    """The PredictionLogs in model_dir/assets.extra/tf_serving_warmup_requests (none without the file)."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(model_dir, WARMUP_FILE)
    if not os.path.exists(path):
        return []
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


class SavedModelBundle:
    """One loaded SavedModel: a TF1 session plus its SignatureDefs.

    Session.run is thread-safe, so one bundle serves concurrent requests."""

    def __init__(self, path: str):
        """Loads the "serve" MetaGraph of the SavedModel at `path`; raises what
        the loader raises (e.g. OSError, tf.errors.OpError, DecodeError)."""
        import tensorflow as tf
        from tensorflow.python.util import deprecation

        self.path = path
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        try:
            with deprecation.silence():  # TF2 calls the session loader deprecated; TF Serving is built on it
                meta_graph = tf.compat.v1.saved_model.loader.load(self.session, [SERVE_TAG], path)
        except BaseException:
            self.session.close()
            raise
        self.signature_defs = {name: sig for name, sig in meta_graph.signature_def.items()
                               if not name.startswith(_INTERNAL_PREFIX)}

    def input_specs(self, signature_name: str) -> dict:
        """{input name: (tf.DType, tf.TensorShape)} of one signature."""
        import tensorflow as tf

        inputs = self.signature_defs[signature_name].inputs
        return {name: (tf.dtypes.as_dtype(info.dtype), tf.TensorShape(info.tensor_shape))
                for name, info in inputs.items()}

    def run(self, signature_name: str, inputs: Mapping[str, np.ndarray],
            output_names: Iterable[str] = ()) -> dict:
        """Feeds {input name: array} to the signature's tensors and fetches its
        outputs (or only `output_names`); returns {output name: numpy array}.
        TensorFlow's own errors (tf.errors.OpError) pass through."""
        signature = self.signature_defs[signature_name]
        wanted = list(output_names) or list(signature.outputs)
        feeds = {signature.inputs[name].name: value for name, value in inputs.items()}
        fetches = {name: signature.outputs[name].name for name in wanted}
        return self.session.run(fetches, feeds)

    def warm_up(self) -> int:
        """Replays assets.extra/tf_serving_warmup_requests (PredictionLogs) as
        TF Serving does before a version becomes AVAILABLE: Predict logs through
        their signature's tensors, Classify logs as serialized tf.Examples into
        the classify signature. Returns how many requests ran (0 without the
        file). A failing request raises, as it fails the load in TF Serving."""
        import tensorflow as tf

        count = 0
        for log in warmup_logs(self.path):
            kind = log.WhichOneof("log_type")
            if kind == "predict_log":
                request = log.predict_log.request
                self.run(request.model_spec.signature_name or contract.SERVING_SIGNATURE,
                         {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()})
            elif kind == "classify_log":
                request = log.classify_log.request
                name = request.model_spec.signature_name or contract.SERVING_SIGNATURE
                (input_name,) = self.signature_defs[name].inputs  # a classify signature has one input
                examples = [e.SerializeToString() for e in request.input.example_list.examples]
                self.run(name, {input_name: np.array(examples, dtype=object)})
            else:
                continue  # Regress and MultiInference: this project's models have no such signatures
            count += 1
        return count

    def close(self) -> None:
        self.session.close()
