"""The curated schema: what it accepts and what ExampleValidator flags.

Statistics are computed in memory by TFDV with the schema, as StatisticsGen
computes them in the pipeline, and validated as ExampleValidator validates them.
"""
from pathlib import Path

import pyarrow as pa
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_data_validation.statistics.stats_impl import generate_statistics_in_memory

from happysad.pipeline import configs, schema

FEATURES = {"image": pa.large_binary(), "label": pa.int64(), "class_name": pa.large_binary(),
            "filename": pa.large_binary()}


def _row(image=b"\x89PNG\r\n\x1a\n" + b"0" * 100, label=0, class_name=b"happy", filename=b"happy/a.png"):
    return {"image": image, "label": label, "class_name": class_name, "filename": filename}


def _anomalies(rows, class_names=configs.DEFAULT_CLASSES):
    batch = pa.RecordBatch.from_pydict({
        key: pa.array([None if row.get(key) is None else [row[key]] for row in rows], type=pa.list_(kind))
        for key, kind in FEATURES.items()})
    curated = schema.for_classes(class_names)
    # With the schema, TFDV treats the image as bytes (not as a categorical string)
    # and its max_image_byte_size can be checked.
    stats = generate_statistics_in_memory(batch, tfdv.StatsOptions(schema=curated))
    found = tfdv.validate_statistics(stats, curated)
    return {name: info.reason[0].type for name, info in found.anomaly_info.items()}


def test_committed_schema_is_the_one_the_default_class_set_runs_with():
    committed = schema.CURATED_SCHEMA.read_text()
    from tensorflow_metadata.proto.v0 import schema_pb2

    assert text_format.Parse(committed, schema_pb2.Schema()) == schema.for_classes(configs.DEFAULT_CLASSES)


def test_clean_examples_pass():
    rows = [_row(), _row(label=1, class_name=b"sad", filename=b"sad/b.png")] * 5
    assert _anomalies(rows) == {}


def test_a_class_outside_the_class_set_is_an_anomaly():
    found = _anomalies([_row(), _row(label=1, class_name=b"angry")])
    assert list(found) == ["class_name"]
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    assert found["class_name"] == anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES


def test_a_label_outside_the_class_indices_is_an_anomaly():
    assert list(_anomalies([_row(), _row(label=2, class_name=b"sad")])) == ["label"]


def test_a_missing_feature_is_an_anomaly():
    assert list(_anomalies([_row(), _row(image=None)])) == ["image"]


def test_an_oversize_image_is_an_anomaly():
    assert list(_anomalies([_row(), _row(image=b"\x89PNG\r\n\x1a\n" + b"0" * 1_100_000)])) == ["image"]


def test_the_class_set_drives_both_domains(tmp_path):
    three = schema.for_classes(["sad", "angry", "happy"])
    label = next(f for f in three.feature if f.name == "label")
    assert (label.int_domain.min, label.int_domain.max) == (0, 2)
    assert list(next(d for d in three.string_domain if d.name == "class_name").value) == ["angry", "happy", "sad"]
    assert list(_anomalies([_row(label=0, class_name=b"angry"), _row(label=2, class_name=b"sad")],
                           ["angry", "happy", "sad"])) == []
    with pytest.raises(ValueError, match="at least two distinct"):
        schema.for_classes(["happy"])


def test_schema_files_are_named_by_content(tmp_path):
    first = schema.write_for_classes(["happy", "sad"], tmp_path)
    again = schema.write_for_classes(["sad", "happy"], tmp_path)
    other = schema.write_for_classes(["happy", "sad", "angry"], tmp_path)
    assert first == again != other
    assert 'value: "angry"' in Path(other).read_text() and 'value: "angry"' not in Path(first).read_text()


def _features(**defs):
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse("\n".join(f'feature {{ name: "{n}" {d} }}' for n, d in defs.items()),
                             schema_pb2.Schema())


def test_the_inferred_schema_is_compared_feature_by_feature():
    curated = _features(label='type: INT int_domain { min: 0 max: 1 }', source="type: BYTES",
                        mask="type: BYTES")
    inferred = _features(label="type: INT", source="type: BYTES", extra="type: FLOAT")
    rows = {name: (curated_words, inferred_words, verdict)
            for name, curated_words, inferred_words, verdict in schema.diff(curated, inferred)}
    assert rows["label"] == ("INT, optional, 0..1", "INT, optional", "differs")
    assert rows["source"][2] == "same"
    assert rows["mask"] == ("BYTES, optional", "", "curated only")
    assert rows["extra"] == ("", "FLOAT, optional", "inferred only")


def test_promote_writes_the_inferred_feature_and_keeps_the_rest_of_the_file(tmp_path):
    curated = tmp_path / "schema.pbtxt"
    curated.write_text(schema.CURATED_SCHEMA.read_text())
    inferred = tmp_path / "inferred.pbtxt"
    inferred.write_text('feature { name: "source" type: BYTES domain: "source" presence { min_fraction: 1.0 } }\n'
                        'feature { name: "label" type: INT }\n'
                        'string_domain { name: "source" value: "generated" value: "noto" }\n')
    changes = schema.promote(inferred, ["source"], curated, origin=" of run r1")
    assert changes == ["source: replaced by SchemaGen's BYTES, required (1 of examples), one of generated, noto"]
    promoted = schema.read(curated)
    source = next(f for f in promoted.feature if f.name == "source")
    assert source.domain == "source" and source.presence.min_fraction == 1.0
    assert [list(d.value) for d in promoted.string_domain if d.name == "source"] == [["generated", "noto"]]
    text = curated.read_text()
    assert "# Promoted from SchemaGen's inference of run r1: review it." in text
    assert "# The class index: the position of class_name in the sorted class set." in text  # others untouched
    committed = schema.read(schema.CURATED_SCHEMA)
    for name in ("image", "label", "class_name", "filename"):
        assert next(f for f in promoted.feature if f.name == name) == next(f for f in committed.feature
                                                                          if f.name == name), name


def test_promoting_a_feature_the_inference_lacks_changes_nothing(tmp_path):
    curated = tmp_path / "schema.pbtxt"
    curated.write_text(schema.CURATED_SCHEMA.read_text())
    inferred = tmp_path / "inferred.pbtxt"
    inferred.write_text('feature { name: "label" type: INT }\n')
    with pytest.raises(ValueError, match="SchemaGen inferred no feature source"):
        schema.promote(inferred, ["label", "source"], curated)
    assert curated.read_text() == schema.CURATED_SCHEMA.read_text()
