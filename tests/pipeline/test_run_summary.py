"""The run summary's drift warning: a class balance that moved past half the drift threshold."""
from tensorflow_metadata.proto.v0 import statistics_pb2

from pipeline import run_summary


def _statistics(folder, split, counts):
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    feature = stats.datasets.add().features.add()
    feature.path.step.append("class_name")
    for value, frequency in counts.items():
        feature.string_stats.top_values.add(value=value, frequency=frequency)
    (folder / f"Split-{split}").mkdir(parents=True)
    (folder / f"Split-{split}" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    return str(folder)


def _summary(drift):
    return run_summary.RunSummary("r", [], None, None, {}, {}, [], None, None, None, label_drift=drift)


def test_class_balance_reads_statistics_gens_output(tmp_path):
    uri = _statistics(tmp_path / "now", "train", {"happy": 32, "sad": 16})
    assert run_summary.class_balance(uri, "train") == {"happy": 32 / 48, "sad": 16 / 48}
    assert run_summary.class_balance(uri, "eval") == {}


def test_drift_past_half_the_threshold_is_a_warning_and_below_it_is_not():
    # Half of the sad faces removed between runs: 40/40 -> 40/20, a distance of 0.17.
    warned = run_summary.format_summary(_summary({"train": 0.17}))
    assert "warning: the train split's class balance moved 0.17 from the previous run's" in warned
    assert "warning" not in run_summary.format_summary(_summary({"train": 0.10}))
    assert "warning" not in run_summary.format_summary(_summary({"train": 0.30}))  # the gate stops that run
