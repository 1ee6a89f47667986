"""The hostile corpus (attack_corpus.py) against a real `happysad serve` in a
memory cgroup of its own: the server is never killed, refuses what is over
its budgets in words, answers a good request after every hostile one, and
ends close to the memory it started with."""
import base64
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import requests
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc, predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

import attack_corpus
from happysad.serving import loopback
from helpers import HAPPYSAD
from live_server import MODEL

CAP_BYTES = 3 * 1024 ** 3  # the server's cgroup: an unguarded decode of one hostile request took 2.3-6.5 GB
END_GROWTH_MB = 300  # the heap at the end may exceed the heap after warm-up by at most this
V1_MEMORY = Path("/sys/fs/cgroup/memory")
V2_ROOT = Path("/sys/fs/cgroup")


class MemoryCap:
    """A memory cgroup (v1 memory.limit_in_bytes or v2 memory.max) made for one
    process; `kind` says which one, or 'none' where neither can be made."""

    def __init__(self, limit: int):
        name = f"happysad-attack-{uuid.uuid4().hex[:8]}"
        self.kind, self.path = "none", None
        for kind, parent, limit_file in (("cgroup v1 memory.limit_in_bytes", V1_MEMORY, "memory.limit_in_bytes"),
                                         ("cgroup v2 memory.max", V2_ROOT, "memory.max")):
            try:
                if kind.startswith("cgroup v2") and "memory" not in (parent / "cgroup.controllers").read_text():
                    continue
                path = parent / name
                path.mkdir()
                (path / limit_file).write_text(str(limit))
                if kind.startswith("cgroup v1"):
                    (path / "memory.swappiness").write_text("0")
                self.kind, self.path = kind, path
                break
            except OSError:
                continue

    def command(self, argv0: str) -> list:
        """The command that joins the cgroup, then execs argv0 with the rest of the arguments."""
        if self.path is None:
            return [argv0]
        return ["sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$0" "$@"', argv0]

    def oom_kills(self) -> int:
        if self.path is None:
            return 0
        for name in ("memory.oom_control", "memory.events"):
            try:
                for line in (self.path / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
            except OSError:
                continue
        return 0

    def peak_mb(self) -> float:
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            try:
                return int((self.path / name).read_text()) / 2 ** 20
            except (OSError, TypeError, ValueError):
                continue
        return float("nan")

    def remove(self) -> None:
        if self.path is not None:
            for _ in range(50):
                try:
                    self.path.rmdir()
                    return
                except OSError:  # the process is still leaving it
                    time.sleep(0.1)


def _rss_mb(pid: int, kind: str = "RssAnon") -> float:
    """The process's resident memory of one kind: RssAnon is its heap, what a
    request can make it hold; VmRSS adds the pages of code it has run (the
    first call to a kernel maps part of TensorFlow's 1 GB library)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(kind + ":")) / 1024


def _b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode()}


@pytest.fixture(scope="module")
def capped_server(model_base, tmp_path_factory):
    cap = MemoryCap(CAP_BYTES)
    print(f"\nmemory limit: {cap.kind}" + (f", {CAP_BYTES / 2 ** 30:.0f} GiB" if cap.path else
                                         " (neither cgroup could be made: the test watches RSS only)"))
    tmp = tmp_path_factory.mktemp("capped")
    # The default 16 MiB request limit: hostile requests get the room a real deployment gives them.
    srv = loopback.start(tmp / "server.log", ["--model-base-path", str(model_base), "--poll-seconds", "1"],
                         command=cap.command(HAPPYSAD))
    srv.cap = cap
    yield srv
    srv.stop()
    cap.remove()


def _good(server, face) -> None:
    response = requests.post(f"{server.rest}/v1/models/{MODEL}:predict",
                             data=json.dumps({"instances": [_b64(face)]}), timeout=120)
    assert response.status_code == 200, response.text
    assert server.proc.poll() is None, "the server died"


def _alive(server, what: str, grace: float = 0.5) -> None:
    try:  # a process being killed is not yet reaped: give it a moment to show it
        code = server.proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        return
    pytest.fail(f"the server died (exit {code}, OOM kills in its cgroup: {server.cap.oom_kills()}) after {what}")


def test_the_hostile_corpus_is_refused_and_the_server_stays_up_and_small(capped_server, faces):
    server = capped_server
    for _ in range(3):  # warm-up: the first requests trace and allocate what every later one reuses
        _good(server, faces[0])
    start = _rss_mb(server.proc.pid)
    figures = []
    with grpc.insecure_channel(server.grpc, options=[("grpc.max_send_message_length", 64 * 2 ** 20)]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for name, images, refused in attack_corpus.images():
            started = time.monotonic()
            body = json.dumps({"instances": [_b64(i) for i in images]})
            try:
                response = requests.post(f"{server.rest}/v1/models/{MODEL}:predict", data=body, timeout=300)
            except requests.ConnectionError:  # a killed server takes seconds to free gigabytes
                _alive(server, name, grace=30)
                raise
            seconds = time.monotonic() - started
            _alive(server, name)
            figures.append(f"{name}: {response.status_code} in {seconds:.2f} s, RSS {_rss_mb(server.proc.pid):.0f} MB")
            if refused:
                assert response.status_code == 400, f"{name}: {response.status_code} {response.text[:300]}"
                assert "error" in response.json()
            else:
                assert response.status_code in (200, 400), f"{name}: {response.status_code} {response.text[:300]}"
            assert seconds < 30, f"{name} took {seconds:.1f} s"
            _good(server, faces[0])
        for name, key, proto in attack_corpus.tensor_protos():
            request = predict_pb2.PredictRequest()
            request.model_spec.name = MODEL
            request.inputs[key].CopyFrom(proto)
            with pytest.raises(grpc.RpcError) as error:
                stub.Predict(request, timeout=120)
            _alive(server, name)
            figures.append(f"gRPC {name}: {error.value.code().name}, RSS {_rss_mb(server.proc.pid):.0f} MB")
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{name}: {error.value.details()}"
            _good(server, faces[0])
    # The same corpus four requests at a time: the budgets hold per request, and requests add up.
    cases = [(name, json.dumps({"instances": [_b64(i) for i in images]})) for name, images, _ in
             attack_corpus.images(seed=1)]
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda case: requests.post(f"{server.rest}/v1/models/{MODEL}:predict", data=case[1],
                                                         timeout=300).status_code, cases))
    _alive(server, "the concurrent corpus")
    assert set(codes) <= {200, 400}, codes
    _good(server, faces[0])
    time.sleep(2)  # the server hands freed memory back to the OS once a poll (--poll-seconds 1)
    end = _rss_mb(server.proc.pid)
    print("\n" + "\n".join(figures))
    print(f"anonymous RSS after warm-up {start:.0f} MB, at the end {end:.0f} MB (VmRSS "
          f"{_rss_mb(server.proc.pid, 'VmRSS'):.0f} MB); cgroup peak {server.cap.peak_mb():.0f} MB ({server.cap.kind})")
    assert server.cap.oom_kills() == 0
    assert end - start < END_GROWTH_MB, f"anonymous RSS grew from {start:.0f} to {end:.0f} MB"


def test_status_answers_while_inference_is_saturated(capped_server, faces):
    """Health checks stay off the inference threads: GetModelStatus behind a
    flood of large Predicts answers in well under a second (6.2 s before)."""
    import tensorflow as tf

    server = capped_server
    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL
    request.inputs["images"].CopyFrom(tf.make_tensor_proto([faces[0]] * 256, dtype=tf.string))
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = MODEL
    with grpc.insecure_channel(server.grpc) as channel:
        predict = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict
        status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus
        status(status_request, timeout=30)
        idle = []
        for _ in range(5):
            started = time.monotonic()
            status(status_request, timeout=30)
            idle.append(time.monotonic() - started)
        futures = [predict.future(request, timeout=300) for _ in range(24)]
        time.sleep(0.5)  # the Predicts hold every inference slot and the queue
        busy = []
        for _ in range(5):
            started = time.monotonic()
            status(status_request, timeout=30)
            busy.append(time.monotonic() - started)
        codes = []
        for future in futures:
            try:
                future.result()
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)
    print(f"\nGetModelStatus idle {1000 * max(idle):.1f} ms, behind 24 x 256-image Predicts "
          f"{1000 * max(busy):.1f} ms; Predicts: {sorted(set(codes))}")
    assert max(busy) < 0.5, busy
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
    _alive(server, "the Predict flood")


def test_made_up_names_do_not_grow_the_metrics(capped_server, faces):
    server = capped_server
    url = f"{server.rest}/monitoring/prometheus/metrics"
    _good(server, faces[0])
    before = len(requests.get(url, timeout=30).content)
    with requests.Session() as session:
        for i in range(1000):
            session.get(f"{server.rest}/v1/models/made-up-{i}", timeout=30)
            session.post(f"{server.rest}/v1/models/{MODEL}:made{chr(97 + i % 26) * (1 + i % 7)}", data="{}",
                         timeout=30)
            session.post(f"{server.rest}/v1/models/{MODEL}:predict",
                         data=json.dumps({"signature_name": f"sig-{i}", "instances": [1]}), timeout=30)
    after = len(requests.get(url, timeout=30).content)
    print(f"\nmetrics page {before} -> {after} bytes after 3,000 requests with made-up names")
    assert after < before + 20_000, (before, after)


def test_a_version_of_thousands_of_digits_is_a_bad_request(capped_server):
    for version in ("9" * 5000, "9" * 20, str(2 ** 63)):
        response = requests.get(f"{capped_server.rest}/v1/models/{MODEL}/versions/{version}", timeout=30)
        assert response.status_code == 400, (len(version), response.status_code, response.text[:200])
        assert "Failed to convert version" in response.json()["error"]
    assert requests.get(f"{capped_server.rest}/v1/models/{MODEL}/versions/{2 ** 63 - 1}",
                        timeout=30).status_code == 404
