"""Per-component status lines while the orchestrator runs, full logs to a file.

TFX's Beam and local runners log "node X is running." / "Component X is
finished." through absl; a logging handler turns those into one line each on
the console, and everything else goes to the run's log file - including what
bypasses Python logging: TensorFlow's C++ log lines and Keras' epoch lines
(see console_to_log).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import time

# What TensorFlow's C++ side prints on import on a machine without a GPU, at
# ERROR level so TF_CPP_MIN_LOG_LEVEL does not hide it: nothing a user can act on.
NATIVE_NOISE = re.compile(r"Unable to register cu(FFT|DNN|BLAS) factory|cpu_feature_guard|"
                          r"rebuild TensorFlow with the appropriate compiler flags|TF-TRT Warning|"
                          r"oneDNN custom operations|Could not find cuda drivers|"
                          # TFLite's interpreter: a notice, and a warning about the resizable batch dimension
                          r"Created TensorFlow Lite XNNPACK delegate|delegate that only supports static-sized tensors")
_EVENT = re.compile(r"^(?:node|Component) (\S+) is (running|finished)\.$")


class ComponentProgress(logging.Handler):
    """Prints `[  12.3s] Trainer ............ started/done (4.5s)` lines."""

    def __init__(self, stream=None):
        super().__init__(logging.INFO)
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.running: dict[str, float] = {}
        self.finished: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _EVENT.match(record.getMessage())
        if not match:
            return
        node, event = match.groups()
        now = time.monotonic()
        if event == "running":
            self.running[node] = now
            self._print(f"{node:<31} running")
        else:
            seconds = now - self.running.pop(node, now)
            self.finished.append(node)
            self._print(f"{node:<31} done ({seconds:.1f}s)")

    def _print(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=self.stream, flush=True)


def capture_logs(log_path: str, progress: ComponentProgress) -> None:
    """Routes all Python/absl logging to log_path and node events to `progress`."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    file_handler = logging.FileHandler(log_path)
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    root.addHandler(progress)
    root.setLevel(logging.INFO)
    for name in ("tensorflow", "absl"):  # they print to stderr through their own handlers
        named = logging.getLogger(name)
        for handler in list(named.handlers):
            named.removeHandler(handler)
        named.propagate = True
    # Through absl's own setter: TensorFlow's SavedModel export saves and
    # restores absl's verbosity flag, which would otherwise put the absl logger
    # back to WARNING mid-Trainer and silence every later status line.
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    logging.captureWarnings(True)


@contextlib.contextmanager
def console_to_log(log_path: str):
    """Points file descriptors 1 and 2 (and so every child process and C++
    library) at log_path for the duration; yields a stream to the real console."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    console = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield console
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        console.close()


@contextlib.contextmanager
def without_native_noise():
    """Sends file descriptor 2 (where C++ libraries write) to a temporary file
    for the block, then writes back every line but NATIVE_NOISE, in order."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if not NATIVE_NOISE.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()
