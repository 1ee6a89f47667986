"""The run reader: what it reads from StatisticsGen's output, and what it keeps of what an
artefact fixes."""
from tensorflow_metadata.proto.v0 import statistics_pb2

from happysad.pipeline import run_record


def _statistics(folder, split, counts):
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    feature = stats.datasets.add().features.add()
    feature.path.step.append("class_name")
    for value, frequency in counts.items():
        feature.string_stats.top_values.add(value=value, frequency=frequency)
    (folder / f"Split-{split}").mkdir(parents=True)
    (folder / f"Split-{split}" / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    return str(folder)


def test_class_balance_reads_statistics_gens_output(tmp_path):
    uri = _statistics(tmp_path / "now", "train", {"happy": 32, "sad": 16})
    assert run_record.class_balance(uri, "train") == {"happy": 32 / 48, "sad": 16 / 48}
    assert run_record.class_balance(uri, "eval") == {}


def test_what_an_artefact_fixes_is_read_once_and_a_damaged_cache_is_read_again(tmp_path):
    reads = []

    def read():
        reads.append(1)
        return {"metrics": {"binary_accuracy": 0.95}, "call": len(reads)}

    key = ["evaluation", "/root/Evaluator/evaluation/12", "happy", "sad"]
    first = run_record._cached(str(tmp_path), key, read)
    assert run_record._cached(str(tmp_path), key, read) == first and len(reads) == 1
    assert run_record._cached(str(tmp_path), [*key[:2], "sad", "happy"], read)["call"] == 2  # another key
    (damaged,) = [p for p in tmp_path.glob("*.json") if "call\": 1" in p.read_text()]
    damaged.write_text("{not json")
    assert run_record._cached(str(tmp_path), key, read)["call"] == 3
    assert not list(tmp_path.glob("*.partial"))
