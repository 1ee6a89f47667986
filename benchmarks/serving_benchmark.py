"""Serving latency and throughput: in-process signature vs. `happysad serve` over REST and gRPC.

A script that prints figures (not a test): `make bench-serving`, or
    .venv/bin/python benchmarks/serving_benchmark.py [--model-dir DIR] [--json OUT]
Every path sends the same faces from data/emoji_faces. Batch 1 and batch 32,
sequential from one client (latency p50/p99, throughput), and batch 1 from 8
concurrent clients (throughput). The overhead ratio is the server's p50 over
the in-process p50. Client and server share this machine's cores, as they
would on one box.
"""
from __future__ import annotations

import argparse
import base64
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "serving")]  # live_server and its helpers


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def _measure(call, repeats: int, batch: int) -> dict:
    for _ in range(5):  # warm-up: graph tracing, connections
        call()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return {"p50_ms": 1000 * statistics.median(seconds), "p99_ms": 1000 * _percentile(seconds, 99),
            "images_per_s": batch * len(seconds) / sum(seconds)}


def _concurrent(make_call, clients: int, per_client: int) -> float:
    calls = [make_call() for _ in range(clients)]
    for call in calls:
        call()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda call: [call() for _ in range(per_client)], calls))
    return clients * per_client / (time.perf_counter() - started)


def _rest_predict(server, batch: list):
    """One batch's REST predict call over a keep-alive connection, as a serving
    client keeps one; http.client, because requests alone adds ~0.5 ms per call here."""
    import http.client

    from live_server import MODEL

    host, port = server.rest.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps({"instances": [{"b64": base64.b64encode(i).decode()} for i in batch]})
    path = f"/v1/models/{MODEL}:predict"

    def call():
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        assert response.status == 200, data
    return call


def _grpc_predict(stub, batch: list):
    """One batch's gRPC Predict call on `stub`."""
    import tensorflow as tf
    from live_server import MODEL
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(batch, dtype=tf.string))
    return lambda: stub.Predict(request, timeout=60)


def architectures(repeats: int) -> dict:
    """Batch-1 p50 over REST and gRPC Predict for each registered architecture
    (random weights: latency does not depend on them), each served in turn by
    its own `happysad serve`, and each architecture's p50 over the quickest's."""
    import grpc
    import tensorflow as tf
    from live_server import MODEL, start_server
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from happysad.components.trainer import models, serving_signatures

    face = sorted((REPO / "data" / "emoji_faces").rglob("*.png"))[0].read_bytes()
    results = {}
    for name, module in models.ARCHITECTURES.items():
        tmp = Path(tempfile.mkdtemp(prefix=f"serving-bench-{name}-"))
        tf.keras.utils.set_random_seed(1)
        serving_signatures.export(module.build_model(2, module.DEFAULT_LEARNING_RATE), ["happy", "sad"],
                                  str(tmp / MODEL / "1"))
        server = start_server(tmp, "--model-base-path", str(tmp / MODEL))
        try:
            channel = grpc.insecure_channel(server.grpc)
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            results[name] = {"REST": _measure(_rest_predict(server, [face]), repeats, 1)["p50_ms"],
                             "gRPC": _measure(_grpc_predict(stub, [face]), repeats, 1)["p50_ms"]}
            channel.close()
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"  {name}: batch-1 p50 REST {results[name]['REST']:.2f} ms, gRPC {results[name]['gRPC']:.2f} ms",
              flush=True)
    quickest = results[models.QUICKEST]
    for row in results.values():
        row["over_quickest"] = {path: row[path] / quickest[path] for path in ("REST", "gRPC")}
    return {"default": models.DEFAULT, "quickest": models.QUICKEST, "by_architecture": results}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=None,
                        help="a SavedModel version folder (default: the latest pushed, else a fresh export)")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import grpc
    import tensorflow as tf
    from live_server import MODEL, export_version, start_server
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from happysad.serving import client

    tmp = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    model_dir = args.model_dir
    if model_dir is None:
        try:
            model_dir = Path(client.latest_version_dir(str(REPO / "serving_model" / MODEL)))
        except FileNotFoundError:  # the figures do not depend on the weights
            model_dir = export_version(tmp / MODEL, 1, seed=1)
    base = tmp / "served" / MODEL
    base.mkdir(parents=True)
    (base / "1").symlink_to(model_dir.resolve(), target_is_directory=True)

    faces = sorted((REPO / "data" / "emoji_faces").rglob("*.png"))
    images = [f.read_bytes() for f in faces]
    batches = {1: images[:1], 32: images[:32]}
    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    server = start_server(tmp, "--model-base-path", str(base))
    results = {"model_dir": str(model_dir), "repeats": args.repeats, "paths": {}}
    try:
        channel = grpc.insecure_channel(server.grpc)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

        def in_process(batch):
            tensor = tf.constant(batch)
            return lambda: serve(images=tensor)

        def rest(batch):  # one keep-alive connection per client
            return _rest_predict(server, batch)

        def grpc_call(batch):
            return _grpc_predict(stub, batch)

        for name, make in (("in-process", in_process), ("REST", rest), ("gRPC", grpc_call)):
            row = {}
            for size, batch in batches.items():
                repeats = args.repeats if size == 1 else max(20, args.repeats // 8)
                row[f"batch{size}"] = _measure(make(batch), repeats, size)
            row["batch1_8clients_images_per_s"] = _concurrent(lambda: make(batches[1]), 8, max(25, args.repeats // 4))
            results["paths"][name] = row
        channel.close()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    base_row = results["paths"]["in-process"]
    for name in ("REST", "gRPC"):
        for size in (1, 32):
            key = f"batch{size}"
            results["paths"][name][key]["overhead_p50"] = (
                results["paths"][name][key]["p50_ms"] / base_row[key]["p50_ms"])

    print(f"serving benchmark: {model_dir} ({args.repeats} requests at batch 1)")
    print(f"{'path':<11} {'batch':>5} {'p50 ms':>8} {'p99 ms':>8} {'img/s':>8} {'x in-proc':>9}")
    for name, row in results["paths"].items():
        for size in (1, 32):
            r = row[f"batch{size}"]
            ratio = f"{r['overhead_p50']:.2f}" if "overhead_p50" in r else "1.00"
            print(f"{name:<11} {size:>5} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['images_per_s']:>8.0f} {ratio:>9}")
        print(f"{name:<11} {'1x8':>5} {'':>8} {'':>8} {row['batch1_8clients_images_per_s']:>8.0f}   (8 concurrent clients)")
    print("batch-1 by architecture (random weights, each served in turn):")
    results["architectures"] = architectures(args.repeats)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))
        print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
