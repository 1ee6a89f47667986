"""TF Serving's gRPC API (the official tensorflow-serving-api protos) on grpcio's threaded server.

PredictionService: Predict, Classify, GetModelMetadata (Regress and
MultiInference answer UNIMPLEMENTED: the model has no such signatures).
ModelService: GetModelStatus, HandleReloadConfigRequest. Each call runs TensorFlow on the server's own
worker thread: grpc.aio with a hop to a thread pool added more latency at
batch 1 than this threaded server does (benchmarks/RESULTS.md, Figures from
code comments; today's overhead is under Serving).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from happysad import contract
from happysad.serving import inference, model_registry
from happysad.serving.metrics import ServingMetrics
from happysad.serving.model_registry import Models, NotFound
from happysad.serving.server_config import Limits

log = logging.getLogger(__name__)
_INFERENCE_CALLS = {"_predict", "_classify"}  # the calls that run TensorFlow


def _version_choice(spec) -> tuple:
    """(version, label) a ModelSpec asks for; both None means the latest."""
    which = spec.WhichOneof("version_choice")
    return (spec.version.value if which == "version" else None,
            spec.version_label if which == "version_label" else None)


def _resolve(models: Models, spec):
    registry = models.get(spec.name)
    return registry, registry.resolve(*_version_choice(spec))


def _fill_spec(target, registry, loaded, signature_name: str) -> None:
    target.name = registry.name
    target.version.value = loaded.version
    target.signature_name = signature_name


class Busy(Exception):
    """More inference calls are in flight than the server admits: RESOURCE_EXHAUSTED."""


class InferenceSlots:
    """Admits at most `running` inference calls to TensorFlow at once and
    `waiting` more in line; past that a call is refused at once. So inference
    never holds more than running + waiting of the server's threads, and the
    CONTROL_THREADS beyond them stay free for status, metadata and reload."""

    def __init__(self, running: int, waiting: int):
        self.capacity = running + waiting
        self._running = threading.BoundedSemaphore(running)
        self._admitted = threading.BoundedSemaphore(self.capacity)

    @contextlib.contextmanager
    def admit(self):
        if not self._admitted.acquire(blocking=False):
            raise Busy(f"the server is running or queueing {self.capacity} inference calls: retry shortly")
        try:
            with self._running:
                yield
        finally:
            self._admitted.release()


CONTROL_THREADS = 2  # gRPC threads no inference call may take: status, metadata and reload stay responsive


class _Calls:
    """Maps our errors to gRPC status codes."""

    def __init__(self, models: Models, limits: Limits = Limits(),
                 metrics: Optional[ServingMetrics] = None, slots: Optional[InferenceSlots] = None):
        self.models, self.limits = models, limits
        self.metrics = metrics or ServingMetrics(models)
        self.slots = slots or InferenceSlots(4, 12)

    def call(self, context, fn, request):
        spec = getattr(request, "model_spec", None)
        status = ["INTERNAL"]
        with self.metrics.timed(spec.name if spec else "",
                                (spec.signature_name or contract.SERVING_SIGNATURE) if spec else "",
                                f"gRPC:{fn.__name__.lstrip('_')}", lambda: status[0]):
            response = self._call(context, fn, request, status)
            status[0] = "OK"
            return response

    def _call(self, context, fn, request, status):
        try:
            if fn.__name__ in _INFERENCE_CALLS:
                with self.slots.admit():
                    return fn(request)
            return fn(request)
        except Busy as e:
            code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, str(e)
        except NotFound as e:
            code, message = grpc.StatusCode.NOT_FOUND, str(e)
        except inference.FailedPrecondition as e:
            code, message = grpc.StatusCode.FAILED_PRECONDITION, str(e)
        except inference.InvalidArgument as e:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(e)
        except RecursionError:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, "the request is nested too deeply"
        except Exception as e:  # a bug must cost one call, never the server
            log.exception("gRPC call failed")
            code, message = grpc.StatusCode.INTERNAL, f"{type(e).__name__} while serving the call; see the server log"
        status[0] = code.name
        context.abort(code, message)


def check_tensor_proto(key: str, proto, specs: dict, signature: str, limits: Limits) -> None:
    """InvalidArgument unless the TensorProto's declared dtype and shape fit the
    signature's input `key` and its element count is within the limits: read
    from the proto's header fields alone, before make_ndarray expands it."""
    import tensorflow as tf

    if key not in specs:
        raise inference.InvalidArgument(f"signature {signature!r} takes inputs {sorted(specs)}; got {key!r}")
    dtype, shape = specs[key]
    if proto.dtype != dtype.as_datatype_enum:
        try:
            got = tf.dtypes.as_dtype(proto.dtype).name
        except TypeError:  # not a DataType at all
            got = f"dtype {proto.dtype}"
        raise inference.InvalidArgument(f"input {key!r}: expects {dtype.name}, but {got} was provided")
    if proto.tensor_shape.unknown_rank:
        raise inference.InvalidArgument(f"input {key!r}: the tensor_shape must give its dimensions")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise inference.InvalidArgument(f"input {key!r}: dimensions must not be negative, got {dims}")
    if not shape.is_compatible_with(dims):
        raise inference.InvalidArgument(f"input {key!r}: expected shape {shape}, got {dims}")
    if dims:
        inference.check_batch_size(dims[0], limits)
    elements = math.prod(dims)
    if elements > limits.max_tensor_elements:
        raise inference.InvalidArgument(f"input {key!r} declares {elements} elements, over the limit of "
                                        f"{limits.max_tensor_elements}")


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer, _Calls):
    def Predict(self, request, context):
        return self.call(context, self._predict, request)

    def _predict(self, request):
        import tensorflow as tf

        registry, loaded = _resolve(self.models, request.model_spec)
        name = inference.signature_name(loaded, request.model_spec.signature_name)
        specs = inference.input_specs(loaded, name)
        inputs = {}
        for key, proto in request.inputs.items():
            check_tensor_proto(key, proto, specs, name, self.limits)  # before the tensor is materialised
            try:
                inputs[key] = tf.make_ndarray(proto)
            except Exception as e:  # a TensorProto whose content does not match its dtype/shape
                raise inference.InvalidArgument(f"input {key!r} is not a valid TensorProto: {e}") from e
        outputs = inference.run(loaded, name, inputs, tuple(request.output_filter), self.limits)
        response = predict_pb2.PredictResponse()
        _fill_spec(response.model_spec, registry, loaded, name)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def Classify(self, request, context):
        return self.call(context, self._classify, request)

    def _classify(self, request):
        registry, loaded = _resolve(self.models, request.model_spec)
        name = request.model_spec.signature_name or contract.SERVING_SIGNATURE
        which = request.input.WhichOneof("kind")
        if which in ("example_list", "example_list_with_context"):
            inference.check_batch_size(len(getattr(request.input, which).examples), self.limits)
        if which == "example_list":
            examples = [e.SerializeToString() for e in request.input.example_list.examples]
        elif which == "example_list_with_context":
            context = request.input.example_list_with_context.context
            examples = []
            for example in request.input.example_list_with_context.examples:
                merged = type(example)()
                merged.CopyFrom(context)
                merged.MergeFrom(example)
                examples.append(merged.SerializeToString())
        else:
            raise inference.InvalidArgument("Input is empty: set input.example_list")
        response = classification_pb2.ClassificationResponse()
        _fill_spec(response.model_spec, registry, loaded, name)
        for row in inference.classify(loaded, name, examples, self.limits):
            classification = response.result.classifications.add()
            for label, score in row:
                classification.classes.add(label=label, score=score)
        return response

    def GetModelMetadata(self, request, context):
        return self.call(context, self._metadata, request)

    def _metadata(self, request):
        if list(request.metadata_field) != ["signature_def"]:
            raise inference.InvalidArgument("Metadata field signature_def is the only one supported; got "
                                            f"{list(request.metadata_field)}")
        registry, loaded = _resolve(self.models, request.model_spec)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for key, signature in loaded.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        _fill_spec(response.model_spec, registry, loaded, "")
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def Regress(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the model has no regression signature")

    def MultiInference(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not served here")


class ModelService(model_service_pb2_grpc.ModelServiceServicer, _Calls):
    def GetModelStatus(self, request, context):
        return self.call(context, self._status, request)

    def _status(self, request):
        registry = self.models.get(request.model_spec.name)
        rows = registry.status(*_version_choice(request.model_spec))
        states = get_model_status_pb2.ModelVersionStatus.State
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state, error in rows:
            status = response.model_version_status.add(version=version, state=states.Value(state))
            status.status.error_code = 0 if not error else 2  # OK / UNKNOWN
            status.status.error_message = error
        return response

    def HandleReloadConfigRequest(self, request, context):
        return self.call(context, self._reload, request)

    def _reload(self, request):
        """Applies the request's model list and loads it before answering, as TF Serving does."""
        if request.config.WhichOneof("config") != "model_config_list":
            raise inference.InvalidArgument("only a model_config_list config can be reloaded")
        try:
            configs = model_registry.models_from_config(request.config, os.getcwd())
            self.models.reconfigure(configs)
        except ValueError as e:
            raise inference.InvalidArgument(str(e)) from e
        self.models.poll()
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0
        return response


def server(models: Models, threads: int, max_request_bytes: int,
           limits: Limits = Limits(), metrics: Optional[ServingMetrics] = None) -> grpc.Server:
    """`threads` inference calls run at once and 3x as many wait; the pool has
    CONTROL_THREADS more, which only status, metadata and reload calls reach."""
    metrics = metrics or ServingMetrics(models)
    slots = InferenceSlots(threads, 3 * threads)
    srv = grpc.server(ThreadPoolExecutor(slots.capacity + CONTROL_THREADS, thread_name_prefix="grpc"),
                      options=[("grpc.max_receive_message_length", max_request_bytes)])
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(models, limits, metrics, slots), srv)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(models, limits, metrics, slots), srv)
    return srv
