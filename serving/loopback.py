"""A `happysad serve` started as a child process on free loopback ports.

The pipeline's ServingCheck asks one about each candidate before the Pusher,
and the tests reach one over real sockets. Ports are 0 (the OS picks free
ones); the server prints where it listens once the first load is done.
"""
from __future__ import annotations

import dataclasses
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional, Sequence


class ServerDidNotStart(RuntimeError):
    """The child exited, or did not listen in time; the message holds its log's tail."""


@dataclasses.dataclass
class LoopbackServer:
    proc: subprocess.Popen
    rest: str  # http://127.0.0.1:PORT
    grpc: str  # 127.0.0.1:PORT
    log: Path  # the child's stderr

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as an orchestrator stops TF Serving; kills it after `timeout` s. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "LoopbackServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(log: Path, args: Sequence[str], command: Optional[Sequence[str]] = None,
          cwd: Optional[str] = None, timeout: float = 120) -> LoopbackServer:
    """Starts `happysad serve --rest-port 0 --grpc-port 0 *args` (stderr to `log`)
    and returns once both APIs listen. `command` defaults to this interpreter
    running happysad's CLI. Raises ServerDidNotStart."""
    command = list(command or [sys.executable, "-m", "happysad.cli"])
    log = Path(log)
    with open(log, "w") as stderr:
        proc = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--rest-port", "0", "--grpc-port", "0",
                                 *args], cwd=cwd, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)  # the child closed its stdout: it exited

    threading.Thread(target=read, daemon=True).start()
    rest = grpc_target = None
    while grpc_target is None:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            line = None
        if line is None:
            proc.kill()
            proc.wait()
            raise ServerDidNotStart(f"`happysad serve` did not start (exit code {proc.returncode}): "
                                    f"{log.read_text(errors='replace')[-3000:]}")
        if line.startswith("REST"):
            rest = line.split()[1].split("/v1/")[0]
        elif line.startswith("gRPC"):
            grpc_target = line.split()[1]
    return LoopbackServer(proc=proc, rest=rest, grpc=grpc_target, log=log)
