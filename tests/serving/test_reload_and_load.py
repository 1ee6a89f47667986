"""A push while clients are running, and many clients at once: no failed request."""
import base64
import collections
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests
import tensorflow as tf

from live_server import MODEL, export_version, start_server, wait_until


def _body(image: bytes) -> dict:
    return {"instances": [{"b64": base64.b64encode(image).decode()}]}


class Clients:
    """Client threads that post until stopped (or a bounded count) and record
    every outcome: a dropped connection or a non-JSON answer is counted as a
    failure, never lost in a dead thread."""

    def __init__(self, url, face, count, requests_each, pause=0.0):
        self.url, self.face, self.results, self.failures, self.pause = url, face, [], [], pause
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(requests_each,)) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _run(self, requests_each):
        with requests.Session() as session:
            for _ in range(requests_each):
                if self.stop.is_set():
                    return
                try:
                    response = session.post(self.url, json=_body(self.face), timeout=60)
                    probabilities = response.json()["predictions"][0]["probabilities"] if response.ok else None
                    self.results.append((time.monotonic(), response.status_code, probabilities))
                    if not response.ok:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
                except Exception as e:  # noqa: BLE001 - every failure counts
                    self.failures.append(f"{type(e).__name__}: {e}")
                time.sleep(self.pause)

    def wait_for(self, count, seconds=120):
        deadline = time.monotonic() + seconds
        while len(self.results) < count and time.monotonic() < deadline and self.alive():
            time.sleep(0.05)
        assert len(self.results) >= count, (len(self.results), self.failures[:5])

    def alive(self):
        return any(t.is_alive() for t in self.threads)

    def finish(self, seconds=300, stop=True):
        if stop:
            self.stop.set()
        for thread in self.threads:
            thread.join(timeout=seconds)
        assert not self.alive(), "a client thread hung"


def _served_versions(server):
    status = requests.get(f"{server.rest}/v1/models/{MODEL}", timeout=30).json()
    return [(s["version"], s["state"]) for s in status["model_version_status"]]


def test_a_new_version_is_served_without_dropping_a_request(tmp_path, faces):
    base = tmp_path / "models" / MODEL
    export_version(base, 1, seed=1)
    server = start_server(tmp_path, "--model-base-path", str(base))  # TF Serving's default: latest version
    clients = Clients(f"{server.rest}/v1/models/{MODEL}:predict", faces[0], count=2, requests_each=5000)
    try:
        clients.wait_for(20)
        export_version(base, 2, seed=2)  # the push, while requests are in flight
        assert wait_until(lambda: _served_versions(server) == [("2", "AVAILABLE")]), _served_versions(server)
        swapped_at = time.monotonic()
        deadline = time.monotonic() + 120
        while sum(t > swapped_at for t, _, _ in clients.results) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        clients.finish()
        assert server.stop() == 0
    assert clients.failures == []
    assert collections.Counter(code for _, code, _ in clients.results) == {200: len(clients.results)}
    version_2 = tf.saved_model.load(str(base / "2")).signatures["serving_default"](
        images=tf.constant([faces[0]]))["probabilities"].numpy()[0]
    version_1 = clients.results[0][2]
    assert not np.allclose(version_1, version_2)  # the two versions answer differently...
    np.testing.assert_allclose(clients.results[-1][2], version_2, rtol=1e-5)  # ...and the last answers come from 2


def _rss_mb(pid) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def test_soak_broken_good_and_half_copied_versions_land_under_load(tmp_path, faces):
    """4 clients x 500 requests while a broken, a good and a half-copied version
    land in turn: every request answered 200, and the server's memory stays flat."""
    base = tmp_path / "models" / MODEL
    export_version(base, 1, seed=1)
    staged = tmp_path / "staged"
    export_version(staged, 4, seed=4)
    server = start_server(tmp_path, "--model-base-path", str(base))
    # Paced (~25 requests/s each) so that all three landings happen within the 2,000 requests.
    clients = Clients(f"{server.rest}/v1/models/{MODEL}:predict", faces[0], count=4, requests_each=500, pause=0.04)
    try:
        clients.wait_for(100)
        rss_start = _rss_mb(server.proc.pid)
        (base / "2").mkdir()  # broken: saved_model.pb is garbage
        (base / "2" / "saved_model.pb").write_bytes(b"\x00garbage")
        clients.wait_for(len(clients.results) + 150)
        assert _served_versions(server)[0] == ("1", "AVAILABLE")
        shutil.rmtree(base / "2")
        export_version(base, 3, seed=3)  # good
        assert wait_until(lambda: _served_versions(server) == [("3", "AVAILABLE")]), _served_versions(server)
        (base / "5").mkdir()  # half-copied: saved_model.pb before variables/
        shutil.copy(staged / "4" / "saved_model.pb", base / "5" / "saved_model.pb")
        clients.wait_for(len(clients.results) + 150)
        assert _served_versions(server)[0] == ("3", "AVAILABLE")
        for item in (staged / "4").iterdir():  # the copy completes
            if item.is_dir():
                shutil.copytree(item, base / "5" / item.name)
        assert wait_until(lambda: _served_versions(server) == [("5", "AVAILABLE")]), _served_versions(server)
        rss_landed, landed_at = _rss_mb(server.proc.pid), len(clients.results)
        clients.finish(stop=False)  # every client sends all of its 500
        rss_end = _rss_mb(server.proc.pid)
    finally:
        clients.finish()
        assert server.stop() == 0
    print(f"\nsoak: {len(clients.results)} requests, RSS {rss_start:.0f} -> {rss_landed:.0f} MB at the last landing "
          f"(request {landed_at}) -> {rss_end:.0f} MB")
    assert clients.failures == []
    assert len(clients.results) == 2000
    assert len(clients.results) - landed_at >= 500, landed_at
    assert rss_end - rss_landed < 10, (rss_landed, rss_end)  # serving alone does not grow
    assert rss_end - rss_start < 100, (rss_start, rss_end)  # three loads leave 49-64 MB with the allocator


def test_eight_clients_times_two_hundred_requests_without_a_server_error(server, faces):
    url = f"{server.rest}/v1/models/{MODEL}:predict"

    def client(i):
        codes = collections.Counter()
        with requests.Session() as session:
            for j in range(200):
                codes[session.post(url, json=_body(faces[(i + j) % len(faces)]), timeout=60).status_code] += 1
        return codes

    with ThreadPoolExecutor(8) as pool:
        total = sum(pool.map(client, range(8)), collections.Counter())
    assert total == {200: 1600}, total
    assert server.proc.poll() is None
