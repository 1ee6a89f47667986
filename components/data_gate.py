"""DataGate: stops the run before training when any validator found anomalies.

ExampleValidator and DistributionValidator record anomalies but never fail, so
on their own a Trainer downstream would train on bad data. The gate reads
every validator's ExampleAnomalies and fails its execution, naming each
anomaly, when there is any; the pipeline runs the Trainer after the gate, so
nothing is trained, evaluated or pushed. The validators' artifacts stay
published in ML Metadata for `happysad inspect`.
"""

from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
# Not tfx.v1: its import loads Google Cloud's clients, a cost on every run
# (benchmarks/RESULTS.md, Figures from code comments).
from tfx.types import standard_artifacts

from happysad.components import anomalies as anomalies_lib

_Anomalies = InputArtifact[standard_artifacts.ExampleAnomalies]


class DataRejected(RuntimeError):
    """The data failed validation; the message lists every anomaly."""


def check(named_uris: dict) -> None:
    """Raises DataRejected if any {validator name: anomalies URI} holds an anomaly."""
    found = [(name, a) for name, uri in named_uris.items() for a in anomalies_lib.read(uri)]
    if found:
        lines = "\n".join(f"  {name}: {a.sentence()}" for name, a in found)
        raise DataRejected(f"{len(found)} data anomal{'y' if len(found) == 1 else 'ies'}; "
                           f"nothing was trained:\n{lines}")


@component
def DataGate(schema_anomalies: _Anomalies, image_anomalies: _Anomalies,
             skew_anomalies: _Anomalies, drift_anomalies: _Anomalies) -> None:
    check({"ExampleValidator": schema_anomalies.uri, "ImageValidator": image_anomalies.uri,
           "SkewValidator": skew_anomalies.uri, "DriftValidator": drift_anomalies.uri})
