"""Starting a real `happysad serve` on loopback, and the SavedModels it serves.

The models are the reference CNN with random weights, exported by the
project's own code: the tests check what the server does with them (shapes,
routing, errors, reloads) and compare its answers with the same SavedModel
called in-process.
"""
import os
import queue
import signal
import subprocess
import threading
import types
from pathlib import Path

from helpers import HAPPYSAD, REPO
MODEL = "happysad"
MAX_REQUEST_BYTES = 1_000_000


def export_version(base: Path, version: int, seed: int) -> Path:
    """Exports the reference CNN (random weights from `seed`) as base/<version>/,
    written in place - not atomically, as TFX's Pusher copies a version."""
    import tensorflow as tf

    from happysad.components.trainer import emoji_cnn, serving_signatures
    from happysad.data import emoji_faces

    tf.keras.utils.set_random_seed(seed)
    path = base / str(version)
    warmup = [(emoji_faces.DEFAULT_DIR / c / f"{c}_000.png").read_bytes() for c in ("happy", "sad")]
    serving_signatures.export(emoji_cnn.build_model(), ["happy", "sad"], str(path), warmup_images=warmup)
    return path


def write_models_config(path: Path, base: Path, num_versions: int = 2, labels=()) -> Path:
    label_lines = "".join(f'    version_labels {{ key: "{k}" value: {v} }}\n' for k, v in labels)
    path.write_text(
        "model_config_list {\n  config {\n"
        f'    name: "{MODEL}"\n    base_path: "{base}"\n    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ latest {{ num_versions: {num_versions} }} }}\n"
        f"{label_lines}  }}\n}}\n")
    return path


class Server(types.SimpleNamespace):
    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_server(tmp: Path, *args) -> Server:
    """Starts `happysad serve` with free ports; returns once both APIs listen."""
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([HAPPYSAD, "serve", "--rest-port", "0", "--grpc-port", "0", "--poll-seconds", "0.2",
                             "--max-request-bytes", str(MAX_REQUEST_BYTES), *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    rest = grpc_target = None
    while grpc_target is None:
        try:
            line = lines.get(timeout=120)
        except queue.Empty:
            proc.kill()
            raise AssertionError(f"server did not start: {(tmp / 'server.log').read_text()[-3000:]}")
        if line.startswith("REST"):
            rest = line.split()[1].split("/v1/")[0]
        elif line.startswith("gRPC"):
            grpc_target = line.split()[1]
    return Server(proc=proc, rest=rest, grpc=grpc_target, log=tmp / "server.log")


def wait_until(condition, seconds=120) -> bool:
    """Polls condition() until it holds (True) or `seconds` pass (False)."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
