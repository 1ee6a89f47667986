"""`happysad serve`: a development stand-in for TensorFlow Serving.

It speaks TF Serving's REST and gRPC APIs over the models in a TF Serving
base path, so clients, curl lines and tests written for one work against the
other. Production runs TF Serving itself (see serving/README.md); this exists
for machines where its binary cannot be installed.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from aiohttp import web

from happysad.serving import grpc_api, model_registry, rest_api
from happysad.serving.metrics import ServingMetrics
from happysad.serving.model_registry import Models
from happysad.serving.server_config import ServerConfig

log = logging.getLogger(__name__)
WEB_DIR = Path(__file__).resolve().parent / "web"  # the live page: plain HTML + JS, no build step


async def serve(config: ServerConfig, ready=None, stop: Optional[asyncio.Event] = None) -> None:
    """Runs until `stop` is set (or SIGINT/SIGTERM). `ready(rest_port, grpc_port)`
    is called once both APIs listen."""
    models = Models(config.models)
    executor = ThreadPoolExecutor(config.threads, thread_name_prefix="tf")
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(executor, models.poll)  # serve nothing until the first load is done
    stop = stop or asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass

    metrics = ServingMetrics(models)
    app = rest_api.RestApi(models, executor, config.max_request_bytes, config.limits,
                           config.body_timeout_seconds, metrics).app()
    first_model = config.models[0].name

    async def home(request):  # the live page, pointed at the first model
        raise web.HTTPFound(f"/ui/index.html?model={first_model}")

    app.router.add_get("/", home)
    app.router.add_static("/ui/", WEB_DIR)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=config.idle_timeout_seconds)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.rest_port)
    await site.start()
    rest_port = site._server.sockets[0].getsockname()[1]  # the real port when 0 was asked
    grpc_server = grpc_api.server(models, config.threads, config.max_request_bytes, config.limits, metrics)
    grpc_port = grpc_server.add_insecure_port(f"{config.host}:{config.grpc_port}")
    grpc_server.start()
    if ready:
        ready(rest_port, grpc_port)

    async def watch():
        while not stop.is_set():
            try:
                await loop.run_in_executor(executor, models.poll)
            except Exception:  # a bad poll must not take the server down
                log.exception("polling the model base paths failed")
            model_registry.release_freed_memory()  # what the requests since the last poll freed
            try:
                await asyncio.wait_for(stop.wait(), config.poll_seconds)
            except asyncio.TimeoutError:
                pass

    async def watch_config():
        seen = _read_text(config.model_config_file)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), config.config_poll_seconds)
            except asyncio.TimeoutError:
                pass
            text = _read_text(config.model_config_file)
            if text is None or text == seen:
                continue
            seen = text
            try:  # a config being edited may not parse yet: keep the old one until it does
                models.reconfigure(model_registry.read_model_config(config.model_config_file))
            except (ValueError, OSError) as e:
                log.warning("model config not applied, still serving the previous one: %s", e)
                continue
            await loop.run_in_executor(executor, models.poll)

    watchers = [asyncio.create_task(watch())]
    if config.model_config_file and config.config_poll_seconds > 0:
        watchers.append(asyncio.create_task(watch_config()))
    await stop.wait()
    await asyncio.gather(*watchers)
    await loop.run_in_executor(None, grpc_server.stop(grace=5).wait)  # in-flight calls finish
    await runner.cleanup()
    executor.shutdown(wait=True)


def _read_text(path: Optional[str]) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except (OSError, TypeError):
        return None


def run(config: ServerConfig) -> None:
    def ready(rest_port: int, grpc_port: int) -> None:
        for model in config.models:
            print(f"model {model.name}: {model.base_path}")
        print(f"REST  http://{config.host}:{rest_port}/v1/models/{config.models[0].name}", flush=True)
        print(f"page  http://{config.host}:{rest_port}/", flush=True)
        print(f"gRPC  {config.host}:{grpc_port}", flush=True)
        print("(a development stand-in for TensorFlow Serving; Ctrl-C stops it)", flush=True)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(config, ready))
