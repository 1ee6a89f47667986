"""ImageValidator's checks, the anomaly files it writes, and the DataGate reading them."""
import io
import json

import pytest
from PIL import Image

from happysad.components import anomalies as anomalies_lib
from happysad.components import data_gate, image_validator
from helpers import example

CLASSES = ["happy", "sad"]


def _png(size=(150, 150), mode="RGB", fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, 200 if mode in ("L", "P") else (200,) * len(mode)).save(buf, fmt)
    return buf.getvalue()


def _example(image: bytes, class_name="happy", label=None, filename="x.png") -> bytes:
    return example(image=image, class_name=class_name, filename=filename,
                   label=CLASSES.index(class_name) if label is None else label)


def _reasons(anomalies):
    return sorted((feature, r.short_description, r.description)
                  for feature, info in anomalies.anomaly_info.items() for r in info.reason)


def test_good_images_give_no_anomalies_and_a_summary():
    records = [_example(_png(), "happy", filename="a.png"), _example(_png(mode="RGBA"), "sad", filename="b.png"),
               _example(_png(fmt="JPEG"), "sad", filename="c.jpg")]
    found, summary = image_validator.check_examples(records, CLASSES, 150, 150)
    assert not found.anomaly_info
    assert summary == {"examples": 3, "formats": {"PNG": 2, "JPEG": 1}, "sizes": {"150x150": 3},
                       "modes": {"RGB": 2, "RGBA": 1}, "classes": {"happy": 1, "sad": 2}}


def test_each_kind_of_bad_image_is_named_with_its_count_and_files():
    good = _png()
    records = [
        _example(good, filename="ok.png"),
        _example(_png((64, 64)), filename="small1.png"),
        _example(_png((64, 64)), filename="small2.png"),
        _example(_png(mode="L"), filename="gray.png"),
        _example(good[: len(good) // 2], filename="cut.png"),
        _example(b"hello, not an image", filename="text.png"),
        _example(_png(fmt="GIF", mode="P"), filename="anim.gif"),
        _example(good, "sad", label=0, filename="mislabelled.png"),
        _example(good, "angry", label=1, filename="angry.png"),
    ]
    found, summary = image_validator.check_examples(records, CLASSES, 150, 150)
    reasons = _reasons(found)
    undecodable = [r for r in reasons if r[1] == "Image does not decode"]
    assert sorted(d.split("(")[-1] for _, _, d in undecodable) == ["cut.png)", "text.png)"]
    assert [r for r in reasons if r[1] != "Image does not decode"] == [
        ("class_name", "Class outside the class set", "expected one of happy, sad, found 'angry' in 1 of 9 examples "
         "(angry.png)"),
        ("image", "Unsupported image format", "expected PNG or JPEG, found GIF in 1 of 9 examples (anim.gif)"),
        ("image", "Wrong colour mode", "expected RGB or RGBA, found L in 1 of 9 examples (gray.png)"),
        ("image", "Wrong colour mode", "expected RGB or RGBA, found P in 1 of 9 examples (anim.gif)"),
        ("image", "Wrong image size", "expected 150x150, found 64x64 in 2 of 9 examples (small1.png, small2.png)"),
        ("label", "Label does not match class name",
         "expected label 1 for class 'sad', found label 0 in 1 of 9 examples (mislabelled.png)"),
    ]
    assert summary["sizes"] == {"150x150": 5, "64x64": 2}  # undecodable files have no size


def test_anomalies_round_trip_through_the_artifact_layout_and_stop_the_gate(tmp_path):
    found, _ = image_validator.check_examples([_example(_png((64, 64)), filename="small.png")], CLASSES, 150, 150)
    split_dir = tmp_path / "bad" / "Split-train"
    split_dir.mkdir(parents=True)
    (split_dir / anomalies_lib.ANOMALIES_FILE).write_bytes(found.SerializeToString())
    clean = tmp_path / "clean" / "Split-train"
    clean.mkdir(parents=True)
    (clean / anomalies_lib.ANOMALIES_FILE).write_bytes(b"")  # an empty Anomalies proto

    (anomaly,) = anomalies_lib.read(str(tmp_path / "bad"))
    assert (anomaly.split, anomaly.feature, anomaly.short) == ("train", "image", "Wrong image size")
    assert anomaly.sentence() == ("[train] image: Wrong image size - expected 150x150, found 64x64 "
                                  "in 1 of 1 examples (small.png)")
    assert anomalies_lib.read(str(tmp_path / "clean")) == []

    data_gate.check({"A": str(tmp_path / "clean")})  # nothing found: passes
    with pytest.raises(data_gate.DataRejected) as e:
        data_gate.check({"A": str(tmp_path / "clean"), "ImageValidator": str(tmp_path / "bad")})
    assert "1 data anomaly; nothing was trained" in str(e.value)
    assert "ImageValidator: [train] image: Wrong image size" in str(e.value)


def test_summary_holds_only_plain_json_types():
    """image_summary.json is read back by inspect and the HTML report: a Counter or
    a numpy integer would serialise today and read back as something else."""
    _, summary = image_validator.check_examples([_example(_png()), _example(_png((64, 64)))], CLASSES, 150, 150)

    def plain(value, where="summary"):
        assert type(value) in (dict, list, str, int, float, bool), f"{where}: {type(value).__name__}"
        if type(value) is dict:
            for key, item in value.items():
                assert type(key) is str, f"{where}: key {key!r}"
                plain(item, f"{where}.{key}")
        elif type(value) is list:
            for i, item in enumerate(value):
                plain(item, f"{where}[{i}]")

    plain(summary)
    assert json.loads(json.dumps(summary)) == summary
    assert summary["sizes"] == {"150x150": 1, "64x64": 1}


def test_a_decompression_bomb_is_reported_by_its_header_not_decoded(monkeypatch):
    # 100 megapixels in ~100 KB of PNG: under Pillow's own refusal (2x its
    # 89 MP warning limit), so only skipping the decode keeps it from being allocated.
    bomb = _png((10000, 10000), mode="L")
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(self.size) or real_load(self))
    found, _ = image_validator.check_examples([_example(bomb, filename="bomb.png"), _example(_png())],
                                              CLASSES, 150, 150)
    assert (10000, 10000) not in decoded and (150, 150) in decoded
    assert _reasons(found) == [
        ("image", "Wrong colour mode", "expected RGB or RGBA, found L in 1 of 2 examples (bomb.png)"),
        ("image", "Wrong image size", "expected 150x150, found 10000x10000 in 1 of 2 examples (bomb.png)")]
