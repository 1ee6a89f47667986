"""A push while clients are running, and many clients at once: no failed request."""
import base64
import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests
import tensorflow as tf

from live_server import MODEL, export_version, start_server


def _body(image: bytes) -> dict:
    return {"instances": [{"b64": base64.b64encode(image).decode()}]}


def test_a_new_version_is_served_without_dropping_a_request(tmp_path, faces):
    base = tmp_path / "models" / MODEL
    export_version(base, 1, seed=1)
    server = start_server(tmp_path, "--model-base-path", str(base))  # TF Serving's default: latest version
    url = f"{server.rest}/v1/models/{MODEL}:predict"
    results, stop = [], threading.Event()

    def client():
        with requests.Session() as session:
            for _ in range(5000):  # bounded even if the stop signal never came
                if stop.is_set():
                    return
                response = session.post(url, json=_body(faces[0]), timeout=60)
                results.append((time.monotonic(), response.status_code,
                                response.json().get("predictions", [{}])[0].get("probabilities")))

    try:
        clients = [threading.Thread(target=client) for _ in range(2)]
        for c in clients:
            c.start()
        while len(results) < 20:
            time.sleep(0.05)
        export_version(base, 2, seed=2)  # the push, while requests are in flight
        deadline = time.monotonic() + 120
        status = {}
        while time.monotonic() < deadline:
            status = requests.get(f"{server.rest}/v1/models/{MODEL}", timeout=30).json()
            if [s["version"] for s in status["model_version_status"]] == ["2"]:
                break
            time.sleep(0.2)
        swapped_at = time.monotonic()
        while sum(t > swapped_at for t, _, _ in results) < 20:
            time.sleep(0.05)
        stop.set()
        for c in clients:
            c.join(timeout=60)
    finally:
        assert server.stop() == 0
    assert [s["version"] for s in status["model_version_status"]] == ["2"], status
    assert collections.Counter(code for _, code, _ in results) == {200: len(results)}
    version_2 = tf.saved_model.load(str(base / "2")).signatures["serving_default"](
        images=tf.constant([faces[0]]))["probabilities"].numpy()[0]
    version_1 = results[0][2]
    assert not np.allclose(version_1, version_2)  # the two versions answer differently...
    np.testing.assert_allclose(results[-1][2], version_2, rtol=1e-5)  # ...and the last answers come from 2


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
