"""The run summary's drift warning: a class balance that moved past half the drift threshold."""
from tensorflow_metadata.proto.v0 import statistics_pb2

from happysad.pipeline import run_summary


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


def test_the_source_table_puts_held_out_sources_first_and_marks_one_under_its_floor():
    summary = _summary({})
    summary.source_metrics = {"twemoji": {"binary_accuracy": 0.5, "example_count": 9},
                              "noto": {"binary_accuracy": 0.8214, "example_count": 28},
                              "openmoji": {"binary_accuracy": 1.0, "example_count": 12}}
    summary.held_out = {"noto": 0.85, "openmoji": 0.85}
    lines = run_summary.format_sources(summary)
    assert [line.split()[0] for line in lines[1:]] == ["noto", "openmoji", "twemoji"]
    assert lines[1].endswith("0.821  held out: never trained on; gate >= 0.85  FAILED")
    assert lines[2].endswith("1.000  held out: never trained on; gate >= 0.85")
    assert lines[3].endswith("0.500")  # trained on: no floor, however low
    assert [failed for *_, failed in run_summary.source_rows(summary)] == [True, False, False]


def test_what_an_artefact_fixes_is_read_once_and_a_damaged_cache_is_read_again(tmp_path):
    reads = []

    def read():
        reads.append(1)
        return {"metrics": {"binary_accuracy": 0.95}, "call": len(reads)}

    key = ["evaluation", "/root/Evaluator/evaluation/12", "happy", "sad"]
    first = run_summary._cached(str(tmp_path), key, read)
    assert run_summary._cached(str(tmp_path), key, read) == first and len(reads) == 1
    assert run_summary._cached(str(tmp_path), [*key[:2], "sad", "happy"], read)["call"] == 2  # another key
    (damaged,) = [p for p in tmp_path.glob("*.json") if "call\": 1" in p.read_text()]
    damaged.write_text("{not json")
    assert run_summary._cached(str(tmp_path), key, read)["call"] == 3
    assert not list(tmp_path.glob("*.partial"))
