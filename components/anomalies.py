"""Reads and words the ExampleAnomalies artifacts every validator writes.

ExampleValidator, DistributionValidator and our ImageValidator all write one
tensorflow_metadata Anomalies proto per split (`Split-<name>/SchemaDiff.pb`)
or split pair (`SplitPair-<test>_<baseline>/SchemaDiff.pb`) under the
artifact's URI; this module turns them into plain sentences.
"""
from __future__ import annotations

import dataclasses
import os

ANOMALIES_FILE = "SchemaDiff.pb"
_SPLIT_PREFIXES = ("SplitPair-", "Split-")


@dataclasses.dataclass(frozen=True)
class Anomaly:
    split: str  # "train", or "eval_train" for a comparison of eval against train
    feature: str  # the feature path, or "(dataset)" for whole-split anomalies
    short: str  # e.g. "Unexpected string values"
    description: str  # what was expected and what was found, with counts

    def sentence(self) -> str:
        return f"[{self.split}] {self.feature}: {self.short} - {self.description.strip()}"


def read(uri: str) -> list[Anomaly]:
    """Every anomaly recorded under one ExampleAnomalies artifact URI."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = []
    if not tf.io.gfile.isdir(uri):
        return found
    for entry in sorted(tf.io.gfile.listdir(uri)):
        name = entry.rstrip("/")
        prefix = next((p for p in _SPLIT_PREFIXES if name.startswith(p)), None)
        path = os.path.join(uri, name, ANOMALIES_FILE)
        if prefix is None or not tf.io.gfile.exists(path):
            continue
        anomalies = anomalies_pb2.Anomalies()
        with tf.io.gfile.GFile(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        found.extend(from_proto(anomalies, name[len(prefix):]))
    return found


def from_proto(anomalies, split: str) -> list[Anomaly]:
    """One Anomaly per reason (a feature may fail several ways at once)."""
    found = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = [(r.short_description, r.description) for r in info.reason] or [
            (info.short_description, info.description)]
        found.extend(Anomaly(split, feature, short or "anomaly", text) for short, text in reasons)
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        found.append(Anomaly(split, "(dataset)", info.short_description or "anomaly", info.description))
    return found
