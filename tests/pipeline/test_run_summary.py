"""The run summary's lines: the drift warning, a class balance that moved past half the drift
threshold; the per-source table."""
from happysad.pipeline import run_record, run_summary


def _summary(drift):
    return run_record.RunRecord("r", [], None, None, {}, {}, [], None, None, None, label_drift=drift)


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
