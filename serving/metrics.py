"""Prometheus metrics at /monitoring/prometheus/metrics, as TF Serving exports them
with a --monitoring_config_file.

The names follow TF Serving's where it has one (`:tensorflow:serving:request_count`,
`:tensorflow:serving:request_latency`); prometheus_client adds the `_total`,
`_bucket`, `_sum` and `_count` suffixes of its text format.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

PATH = "/monitoring/prometheus/metrics"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Every label value comes from a bounded set: what is served, these APIs, the status codes.
OTHER = "(other)"
_APIS = {f"REST:{m}" for m in ("predict", "classify", "regress", "metadata", "status", "unknown")} | {
    f"gRPC:{m}" for m in ("predict", "classify", "metadata", "status", "reload")}
# Request latency buckets in seconds: the smallest below a warm batch of one
# (benchmarks/RESULTS.md, Serving), the largest the body timeout.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServingMetrics:
    """Request counts and latencies by model, signature, API and status, plus
    the versions each model has loaded (read from `models` at scrape time)."""

    def __init__(self, models):
        self.models = models
        self.registry = CollectorRegistry()
        self.requests = Counter(":tensorflow:serving:request_count", "Requests served, by outcome",
                                ["model_name", "signature_name", "API", "status"], registry=self.registry)
        self.latency = Histogram(":tensorflow:serving:request_latency", "Request latency in seconds",
                                 ["model_name", "API"], buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_VersionsCollector(models))

    def observe(self, model: str, signature: str, api: str, status: str, seconds: float) -> None:
        model, signature = self._served(model, signature)
        api = api if api in _APIS else api.split(":")[0] + ":unknown"
        self.requests.labels(model, signature, api, status).inc()
        self.latency.labels(model, api).observe(seconds)

    def _served(self, model: str, signature: str) -> tuple:
        """(model, signature) as labels: names a client made up become OTHER,
        so the label sets (and a scrape) stay as small as what is served."""
        try:
            registry = self.models.get(model)
            served = {name for version in registry.versions() for name in registry.resolve(version).signature_defs}
        except LookupError:  # no such model, or its version went between the two calls
            return OTHER, OTHER if signature else ""
        return model, signature if signature in served or not signature else OTHER

    @contextmanager
    def timed(self, model: str, signature: str, api: str, status_of):
        """Times the block; status_of() names its outcome once it ends (also on error)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(model, signature, api, status_of(), time.perf_counter() - started)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class _VersionsCollector:
    def __init__(self, models):
        self.models = models

    def collect(self):
        family = GaugeMetricFamily(":tensorflow:serving:model_version_state",
                                   "1 for each version of each model and its state (AVAILABLE, LOADING)",
                                   labels=["model_name", "version", "state"])
        for registry in self.models:
            try:
                rows = registry.status()
            except LookupError:  # no version at all yet
                rows = []
            for version, state, _ in rows:
                family.add_metric([registry.name, str(version), state], 1)
        yield family
