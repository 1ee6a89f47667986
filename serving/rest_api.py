"""TF Serving's REST API on aiohttp.

GET  /v1/models/{name}[/versions/{v}|/labels/{l}]            model status
GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata   signature defs
POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict    row or columnar
POST /v1/models/{name}[/versions/{v}|/labels/{l}]:classify   tf.Example features
Errors are {"error": "..."} with TF Serving's status codes: 400 invalid
argument, 404 not found, 408 a body that does not arrive in time, 413 body over
the limit (refused from its Content-Length, before reading). TensorFlow runs in
a thread pool, so a slow batch never blocks the event loop.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

from aiohttp import web

from happysad import contract
from happysad.serving import inference, rest_json
from happysad.serving import metrics as metrics_lib
from happysad.serving.metrics import ServingMetrics
from happysad.serving.model_registry import Models, NotFound
from happysad.serving.server_config import Limits, ServerConfig

log = logging.getLogger(__name__)
_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)"
                   r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
                   r"(?::(?P<method>[a-z]+)|/(?P<metadata>metadata))?$")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def signature_defs_json(loaded) -> dict:
    from google.protobuf import json_format

    return {name: json_format.MessageToDict(sig, preserving_proto_field_name=True,
                                            including_default_value_fields=True)
            for name, sig in sorted(loaded.signature_defs.items())}


class RestApi:
    def __init__(self, models: Models, executor: ThreadPoolExecutor, max_request_bytes: int,
                 limits: Limits = Limits(), body_timeout_seconds: float = ServerConfig.body_timeout_seconds,
                 metrics: Optional[ServingMetrics] = None):
        self.models, self.executor, self.max_request_bytes = models, executor, max_request_bytes
        self.limits, self.body_timeout_seconds = limits, body_timeout_seconds
        self.metrics = metrics or ServingMetrics(models)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_request_bytes)
        app.router.add_route("*", "/v1/{tail:.*}", self.handle)
        app.router.add_get(metrics_lib.PATH, self.scrape)
        return app

    async def scrape(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.text(), headers={"Content-Type": metrics_lib.CONTENT_TYPE})

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        labels = {"model": "", "signature": "", "api": "REST:unknown"}
        request["metric_labels"] = labels  # _handle fills them in as it learns them
        try:
            response = await self._handle(request)
        except Exception:  # a bug must cost one request, never the server
            log.exception("%s %s failed", request.method, request.path)
            response = _error(500, f"Internal error while serving {request.method} {request.path}; "
                                   "see the server log")
        self.metrics.observe(labels["model"], labels["signature"], labels["api"], str(response.status),
                             time.perf_counter() - started)
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        match = _PATH.match(request.path)
        if not match:
            return _error(404, f"Malformed request: {request.method} {request.path}")
        parts = match.groupdict()
        labels = request["metric_labels"]
        labels["model"] = parts["name"]
        labels["api"] = "REST:" + (parts["method"] or parts["metadata"] or "status")
        try:
            version = self._version(parts["version"])
            registry = self.models.get(parts["name"])
            if parts["method"] is None:
                if request.method != "GET":
                    return _error(405, f"Malformed request: {request.method} {request.path}")
                if parts["metadata"]:
                    return web.json_response(self._metadata(registry, version, parts["label"]))
                return web.json_response(self._status(registry, version, parts["label"]))
            if request.method != "POST":
                return _error(405, f"Malformed request: {request.method} {request.path}")
            too_large = _error(413, f"Request body is larger than the server's limit of {self.max_request_bytes} "
                                    "bytes (happysad serve --max-request-bytes)")
            if (request.content_length or 0) > self.max_request_bytes:
                return too_large  # refused from the header: nothing is read
            try:
                raw = await asyncio.wait_for(request.read(), self.body_timeout_seconds)
            except web.HTTPRequestEntityTooLarge:
                return too_large
            except asyncio.TimeoutError:
                return _error(408, f"Request body did not arrive within {self.body_timeout_seconds:g} s "
                                   "(is Content-Length larger than the body?)")
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                return _error(400, f"JSON Parse error: {e}")
            except RecursionError:
                return _error(400, "JSON Parse error: nested too deeply")
            if isinstance(body, dict) and isinstance(body.get("signature_name", ""), str):
                labels["signature"] = body.get("signature_name") or contract.SERVING_SIGNATURE
            loaded = registry.resolve(version, parts["label"])
            loop = asyncio.get_running_loop()
            if parts["method"] == "predict":
                result = await loop.run_in_executor(self.executor, self._predict, loaded, body, self.limits)
            elif parts["method"] == "classify":
                result = await loop.run_in_executor(self.executor, self._classify, loaded, body, self.limits)
            elif parts["method"] == "regress":
                return _error(400, "Expected regression signature method_name to be "
                                   "tensorflow/serving/regress: this model has none")
            else:
                return _error(404, f"Malformed request: {request.method} {request.path}")
            return web.json_response(result)
        except NotFound as e:
            return _error(404, str(e))
        except inference.InvalidArgument as e:
            return _error(400, str(e))
        except RecursionError:  # e.g. thousands of nested lists inside "instances"
            return _error(400, "the request's JSON is nested too deeply for a tensor")

    @staticmethod
    def _version(text: Optional[str]) -> Optional[int]:
        if text is None:
            return None
        # "²".isdigit() is True and int("²") fails; a version is an int64, and its
        # length is checked first: int() refuses over 4,300 digits with a ValueError.
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) < 2 ** 63):
            raise inference.InvalidArgument(f"Failed to convert version: {text[:40]} to numeric.")
        return int(text)

    @staticmethod
    def _status(registry, version, label) -> dict:
        return {"model_version_status": [
            {"version": str(v), "state": state,
             "status": {"error_code": "OK" if not error else "UNKNOWN", "error_message": error}}
            for v, state, error in registry.status(version, label)]}

    @staticmethod
    def _metadata(registry, version, label) -> dict:
        loaded = registry.resolve(version, label)
        return {"model_spec": {"name": registry.name, "signature_name": "", "version": str(loaded.version)},
                "metadata": {"signature_def": {"signature_def": signature_defs_json(loaded)}}}

    @staticmethod
    def _predict(loaded, body, limits) -> dict:
        if not isinstance(body, dict):
            raise inference.InvalidArgument("Request body must be a JSON object")
        name = inference.signature_name(loaded, body.get("signature_name", ""))
        inputs, row_format = rest_json.predict_request(body, list(inference.input_specs(loaded, name)), limits)
        return rest_json.predict_response(inference.run(loaded, name, inputs, limits=limits), row_format)

    @staticmethod
    def _classify(loaded, body, limits) -> dict:
        name = body.get("signature_name", "") if isinstance(body, dict) else ""
        examples = rest_json.classify_examples(body, limits)
        return rest_json.classify_response(inference.classify(loaded, name, examples, limits))
