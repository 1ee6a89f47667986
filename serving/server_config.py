"""What `happysad serve` is told: its ServerConfig, where every default of the
server lives, and Limits, what one request may ask of it.

Light (no numpy, no TensorFlow): the CLI builds `happysad serve`'s flags from
these defaults, and `happysad predict` sizes its batches by them.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:
    from happysad.serving.model_registry import ModelConfig


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may ask of the server.

    A request's examples are decoded and run `chunk_size` at a time, so its peak
    memory is bounded by the chunk (150x150x3 float32 is 270 KB an image), not by
    the request; `max_batch_size` bounds its total work, as TF Serving's
    batching parameter of that name does."""

    max_batch_size: int = 256
    chunk_size: int = 32
    # Elements a tensor may declare (gRPC's TensorProto shape), checked before
    # it is materialised: a one-value proto can declare [1, 200000000].
    max_tensor_elements: int = 1 << 24


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    models: Sequence[ModelConfig]
    host: str = "127.0.0.1"  # loopback unless told otherwise
    rest_port: int = 8501  # TF Serving's defaults; 0 picks a free port
    grpc_port: int = 8500
    poll_seconds: float = 1.0  # how often the base paths are checked for new versions
    max_request_bytes: int = 16 * 1024 * 1024
    max_batch_size: int = Limits.max_batch_size  # examples a request may carry
    idle_timeout_seconds: float = 30.0  # a connection with no request in flight is closed after this
    body_timeout_seconds: float = 30.0  # a request body must arrive within this
    threads: int = 4  # TensorFlow calls in flight at once
    model_config_file: Optional[str] = None  # re-read every config_poll_seconds when set
    config_poll_seconds: float = 0.0  # 0: read once (TF Serving's --model_config_file_poll_wait_seconds)

    @property
    def limits(self) -> Limits:
        return Limits(max_batch_size=self.max_batch_size)
