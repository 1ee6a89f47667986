"""Ingestion of odd image folders, and of several sources, into train/eval TFRecord files."""
import gzip
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from happysad.data import ingest


def _png(image: Image.Image, fmt="PNG", **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _read_examples(result, splits=("train", "eval")):
    """{filename: example} over the result's split files; each example notes its split."""
    examples = []
    for split in splits:
        for record in tf.data.TFRecordDataset(str(result.tfrecord_paths[split]), compression_type="GZIP"):
            examples.append(_decode(record.numpy(), split))
    return {e["filename"]: e for e in examples}


def _decode(record: bytes, split: str) -> dict:
    f = tf.train.Example.FromString(record).features.feature
    return {
            "image": np.asarray(Image.open(io.BytesIO(f["image"].bytes_list.value[0]))),
            "mode": Image.open(io.BytesIO(f["image"].bytes_list.value[0])).mode,
            "label": f["label"].int64_list.value[0],
            "class_name": f["class_name"].bytes_list.value[0].decode(),
            "filename": f["filename"].bytes_list.value[0].decode(),
            "source": f["source"].bytes_list.value[0].decode(),
            "split": split,
        }


def _fill(root, per_class, classes=("happy", "sad")) -> list:
    """Distinct plain images, so a test's class holds the least ingestion accepts."""
    names = []
    for c, cls in enumerate(classes):
        for i in range(per_class):
            _write(root / cls / f"fill{i}.png", _png(Image.new("RGB", (150, 150), (90 + i, 90, 10 * c))))
            names.append(f"{cls}/fill{i}.png")
    return names


@pytest.fixture
def odd_folder(tmp_path):
    root = tmp_path / "images"
    red = Image.new("RGB", (150, 150), (200, 30, 30))
    _write(root / "sad" / "plain.png", _png(red))
    for i in range(1, ingest.MIN_IMAGES_PER_CLASS):  # the least a class may have
        _write(root / "sad" / f"plain{i}.png", _png(Image.new("RGB", (150, 150), (200, 30 + i, 30))))
    rgba = Image.new("RGBA", (150, 150), (0, 0, 0, 0))  # fully transparent black
    rgba.paste((10, 200, 10, 255), (50, 50, 100, 100))
    _write(root / "happy" / "rgba.png", _png(rgba))
    _write(root / "happy" / "gray.png", _png(Image.new("L", (150, 150), 77)))
    _write(root / "happy" / "palette.png", _png(red.convert("P", palette=Image.ADAPTIVE)))
    _write(root / "happy" / "big.jpg", _png(Image.new("RGB", (300, 200), (0, 0, 255)), "JPEG"))
    _write(root / "happy" / "cmyk.jpg", _png(Image.new("CMYK", (150, 150), (0, 0, 0, 0)), "JPEG"))
    sixteen = Image.fromarray(np.full((150, 150), 65535, dtype=np.uint16))
    _write(root / "happy" / "sixteen.png", _png(sixteen))
    _write(root / "happy" / "nested" / "deeper" / "inner.png", _png(Image.new("RGB", (150, 150), "orange")))
    _write(root / "happy" / "empty.png", b"")
    _write(root / "happy" / "text.png", b"this is not an image\n")
    _write(root / "happy" / "truncated.png", _png(red)[:100])
    _write(root / "happy" / "notes.txt", b"hello")
    _write(root / "happy" / ".DS_Store", b"\0\0")
    _write(root / "README.md", b"# my faces")
    (root / ".hidden_class").mkdir()
    return root


def test_odd_images_are_normalised_and_broken_ones_reported(odd_folder, tmp_path):
    result = ingest.ingest(odd_folder, tmp_path / "out", progress=False)
    assert result.class_names == ["happy", "sad"]  # alphabetical, hidden folder ignored
    examples = _read_examples(result)
    assert sorted(examples) == sorted([
        "happy/rgba.png", "happy/gray.png", "happy/palette.png", "happy/big.jpg", "happy/cmyk.jpg",
        "happy/sixteen.png", "happy/nested/deeper/inner.png", "sad/plain.png",
        *(f"sad/plain{i}.png" for i in range(1, ingest.MIN_IMAGES_PER_CLASS))])
    for ex in examples.values():
        assert ex["image"].shape == (150, 150, 3) and ex["mode"] == "RGB"
        assert ex["label"] == ["happy", "sad"].index(ex["class_name"])
    rgba = examples["happy/rgba.png"]["image"]
    assert rgba[0, 0].tolist() == [255, 255, 255]  # transparent -> white, not black
    assert rgba[75, 75].tolist() == [10, 200, 10]
    assert examples["happy/gray.png"]["image"][0, 0].tolist() == [77, 77, 77]
    assert examples["happy/sixteen.png"]["image"][0, 0].tolist() == [255, 255, 255]
    assert examples["happy/palette.png"]["image"][0, 0].tolist() == [200, 30, 30]
    blue = examples["happy/big.jpg"]["image"][75, 75]
    assert blue[2] > 200 and blue[0] < 40

    skipped = {row["file"]: row["reason"] for row in result.skipped}
    assert "empty" in skipped["happy/empty.png"]
    assert "not a readable image" in skipped["happy/text.png"]
    assert "not a readable image" in skipped["happy/truncated.png"]
    assert "not an image file name" in skipped["happy/notes.txt"]
    assert "outside any class folder" in skipped["README.md"]
    assert not any(".DS_Store" in f for f in skipped)
    changed = {row["file"]: " ".join(row["changes"]) for row in result.changed}
    assert "composited onto white" in changed["happy/rgba.png"]
    assert "resized to 150x150 (was 300x200)" in changed["happy/big.jpg"]
    assert "CMYK converted" in changed["happy/cmyk.jpg"]
    assert "sad/plain.png" not in changed

    report = json.loads(result.report_path.read_text())
    assert report["counts"] == {"happy": 7, "sad": ingest.MIN_IMAGES_PER_CLASS}
    text = ingest.format_report(result)
    assert "happy/truncated.png" in text and "5 file(s) skipped" in text


def test_duplicates_are_reported_and_cross_class_copies_excluded(tmp_path):
    root = tmp_path / "images"
    a, b, c = (_png(Image.new("RGB", (150, 150), colour)) for colour in ("red", "green", "blue"))
    _write(root / "happy" / "a.png", a)
    _write(root / "happy" / "a_copy.png", a)  # same class: keep one
    _write(root / "happy" / "b.png", b)
    _write(root / "sad" / "b_again.png", b)  # both classes: a labelling error
    _write(root / "sad" / "c.png", c)
    fillers = _fill(root, per_class=4)
    result = ingest.ingest(root, tmp_path / "out", progress=False)
    assert sorted(_read_examples(result)) == sorted(["happy/a.png", "sad/c.png", *fillers])
    skipped = {row["file"]: row["reason"] for row in result.skipped}
    assert skipped["happy/a_copy.png"] == "duplicate of happy/a.png (same bytes)"
    for rel in ("happy/b.png", "sad/b_again.png"):
        assert "labelling error" in skipped[rel] and "happy and sad" in skipped[rel]


def test_output_is_gzip_tfrecord(odd_folder, tmp_path):
    result = ingest.ingest(odd_folder, tmp_path / "out", progress=False)
    for path in result.tfrecord_paths.values():
        with gzip.open(path) as f:
            assert len(f.read(16)) == 16


def test_unchanged_input_is_not_rewritten_and_a_change_is_seen(odd_folder, tmp_path):
    first = ingest.ingest(odd_folder, tmp_path / "out", progress=False)
    mtime = os.stat(first.tfrecord_paths["train"]).st_mtime_ns
    again = ingest.ingest(odd_folder, tmp_path / "out", progress=False)
    assert again.reused and os.stat(again.tfrecord_paths["train"]).st_mtime_ns == mtime
    os.remove(odd_folder / "happy" / "gray.png")
    changed = ingest.ingest(odd_folder, tmp_path / "out", progress=False)
    assert not changed.reused and "happy/gray.png" not in _read_examples(changed)


def test_a_failed_write_leaves_the_previous_output_and_no_partial_file(odd_folder, tmp_path, monkeypatch):
    out = tmp_path / "out"
    good = ingest.ingest(odd_folder, out, progress=False)
    before = {split: path.read_bytes() for split, path in good.tfrecord_paths.items()}
    os.remove(odd_folder / "happy" / "gray.png")  # force a rewrite

    calls = {"n": 0}
    real = ingest._example

    def crash_midway(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated crash")
        return real(*args)

    monkeypatch.setattr(ingest, "_example", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        ingest.ingest(odd_folder, out, progress=False)
    assert {split: path.read_bytes() for split, path in good.tfrecord_paths.items()} == before
    assert sorted(p.name for p in out.iterdir()) == sorted([*ingest.TFRECORD_NAMES.values(), ingest.REPORT_NAME])


def test_decompression_bomb_is_refused_without_allocating(tmp_path, monkeypatch):
    # 8000 x 7500 = 60 MP: over the project's 40 MP limit, under Pillow's own
    # 89 MP warning, so only the project's guard stands in the way.
    data = _png(Image.new("1", (8000, 7500)))
    allocated = []
    monkeypatch.setattr(Image.Image, "load", lambda self, *a: allocated.append(self.size))
    with pytest.raises(ValueError, match="over the 40,000,000 pixel limit"):
        ingest.normalise_image(data)
    assert allocated == []  # refused from the header: no pixel buffer


@pytest.mark.parametrize("layout, message", [
    ({}, "0 class folder"),
    ({"happy": 1}, "1 class folder"),
    ({"happy": 1, "sad": 0}, "sad in"),
    ({"happy": 1, "sad": 1}, "too few images: happy has 1, sad has 1; each class needs at least 5"),
])
def test_unusable_folders_raise_a_clear_error(tmp_path, layout, message):
    root = tmp_path / "images"
    root.mkdir()
    for cls, n in layout.items():
        (root / cls).mkdir()
        for i in range(n):
            _write(root / cls / f"{i}.png", _png(Image.new("RGB", (150, 150), (i, len(cls), 0))))
    with pytest.raises(ingest.IngestError, match=message):
        ingest.ingest(root, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(ingest.IngestError, match="does-not-exist"):
        ingest.ingest(tmp_path / "does-not-exist", tmp_path / "out", progress=False)


def test_parallel_and_serial_ingestion_give_the_same_records(tmp_path):
    from happysad.data import emoji_faces

    emoji_faces.generate(tmp_path / "faces", count=ingest._PARALLEL_FROM + 4, seed=5)
    serial = ingest.ingest(tmp_path / "faces", tmp_path / "serial", workers=1, progress=False)
    parallel = ingest.ingest(tmp_path / "faces", tmp_path / "parallel", workers=2, progress=False)
    records = [[r.numpy() for split in ("train", "eval")
                for r in tf.data.TFRecordDataset(str(result.tfrecord_paths[split]), compression_type="GZIP")]
               for result in (serial, parallel)]
    assert len(records[0]) == ingest._PARALLEL_FROM + 4
    assert records[0] == records[1]


def test_an_unreadable_sub_folder_is_reported_and_the_rest_kept(tmp_path, monkeypatch):
    # Tests run as root here, where chmod cannot make a folder unreadable; the
    # PermissionError os.walk would meet is raised for one folder instead.
    root = tmp_path / "images"
    for c, cls in enumerate(("happy", "sad")):
        for i in range(5):  # distinct images (identical ones would be duplicates)
            _write(root / cls / f"{i}.png", _png(Image.new("RGB", (150, 150), (40 + 100 * c, 40 + 30 * i, 0))))
    locked = root / "sad" / "batch2"
    _write(locked / "9.png", _png(Image.new("RGB", (150, 150), (0, 0, 200))))
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = ingest.ingest(root, tmp_path / "out", progress=False)
    assert result.counts == {"happy": 5, "sad": 5}
    assert {"file": "sad/batch2/", "reason": "unreadable folder (Permission denied): fix its permissions to "
            "include its images"} in result.skipped


def test_an_empty_class_still_reports_every_other_problem(tmp_path):
    root = tmp_path / "images"
    for i in range(5):
        _write(root / "happy" / f"{i}.png", _png(Image.new("RGB", (150, 150), (i * 40, 0, 0))))
    (root / "sad").mkdir()
    for name in ("a.png", "b.png", "c.png", "d.png"):
        _write(root / "happy" / "broken" / name, b"not an image")
    with pytest.raises(ingest.IngestError, match="sad in") as error:
        ingest.ingest(root, tmp_path / "out", progress=False)
    assert sorted(row["file"] for row in error.value.skipped) == [f"happy/broken/{n}.png" for n in "abcd"]


def test_symlink_loops_are_named_and_skipped(tmp_path):
    root = tmp_path / "images"
    for cls in ("happy", "sad"):
        for i in range(5):
            _write(root / cls / f"{i}.png", _png(Image.new("RGB", (150, 150), (i * 40, cls == "sad" and 200 or 0, 0))))
    (root / "happy" / "loop").symlink_to("..")  # back to the data root
    (root / "sad" / "self").symlink_to(".")  # to its own folder
    (root / "happy" / "other").symlink_to("../sad")  # into another class
    result = ingest.ingest(root, tmp_path / "out", progress=False)
    assert result.counts == {"happy": 5, "sad": 5}
    reasons = {row["file"]: row["reason"] for row in result.skipped}
    assert reasons["happy/loop/"].startswith("symlink loop: leads back to ./")
    assert reasons["sad/self/"] == "symlink to class folder sad/, already included; skipped"
    assert reasons["happy/other/"] == "symlink to class folder sad/, already included; skipped"
    assert len(result.skipped) == 3


def test_the_worker_pool_ends_when_a_write_fails(tmp_path, monkeypatch):
    import multiprocessing

    root = tmp_path / "images"
    for i in range(ingest._PARALLEL_FROM + 20):  # enough to use the worker pool
        cls = ("happy", "sad")[i % 2]
        _write(root / cls / f"{i}.png", _png(Image.new("RGB", (150, 150), (i % 256, i // 256, 7))))
    written = []

    def crash_after_ten(*args):
        if len(written) == 10:
            raise OSError("disk full")
        written.append(1)
        return b""

    monkeypatch.setattr(ingest, "_example", crash_after_ten)
    with pytest.raises(OSError, match="disk full"):
        ingest.ingest(root, tmp_path / "out", workers=2, progress=False)
    assert multiprocessing.active_children() == []  # no worker outlives the failed write
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no half-written file either


def _faces(root, per_class, shade):
    """per_class distinct plain images per class under root/<class>/."""
    for c, cls in enumerate(("happy", "sad")):
        for i in range(per_class):
            _write(root / cls / f"{i}.png", _png(Image.new("RGB", (150, 150), (shade, 12 * i, 100 * c))))


def test_sources_are_recorded_and_a_held_out_source_is_all_eval(tmp_path):
    _faces(tmp_path / "mine", 20, 10)
    _faces(tmp_path / "vendor_a", 10, 60)
    _faces(tmp_path / "vendor_b", 10, 120)
    (tmp_path / "vendor_a" / "angry").mkdir()  # not in the class set: ignored
    _write(tmp_path / "vendor_a" / "angry" / "0.png", _png(Image.new("RGB", (150, 150), "red")))
    sources = [ingest.Source.of(tmp_path / "mine"), ingest.Source.of(tmp_path / "vendor_a"),
               ingest.Source.of(tmp_path / "vendor_b", held_out=True)]
    result = ingest.ingest(sources, tmp_path / "out", progress=False)
    examples = _read_examples(result)
    assert result.class_names == ["happy", "sad"] and len(examples) == 80
    by_source = {}
    for name, ex in examples.items():
        assert name.startswith(ex["source"] + "/")  # names say which folder with several sources
        by_source.setdefault(ex["source"], []).append(ex)
    assert {ex["split"] for ex in by_source["vendor_b"]} == {"eval"}  # held out: never trained on
    for trained in ("mine", "vendor_a"):  # 1 in 5 by hash: both splits, mostly train
        splits = [ex["split"] for ex in by_source[trained]]
        assert 0 < splits.count("eval") < splits.count("train")
    assert result.held_out == ["vendor_b"]
    assert result.sources["vendor_b"] == {"train": {}, "eval": {"happy": 10, "sad": 10}}
    assert ingest.held_out_sources(tmp_path / "out") == ["vendor_b"] and ingest.is_ingested(tmp_path / "out")
    assert "held out" in ingest.format_report(result)


def test_the_split_of_an_image_does_not_depend_on_the_rest_of_the_folder(tmp_path):
    _faces(tmp_path / "mine", 20, 10)
    first = {n: ex["split"] for n, ex in _read_examples(ingest.ingest(tmp_path / "mine", tmp_path / "a",
                                                                       progress=False)).items()}
    for i in range(10):
        os.remove(tmp_path / "mine" / "happy" / f"{i}.png")
    second = {n: ex["split"] for n, ex in _read_examples(ingest.ingest(tmp_path / "mine", tmp_path / "b",
                                                                        progress=False)).items()}
    assert second == {n: split for n, split in first.items() if n in second}
    assert set(first.values()) == {"train", "eval"}


def test_the_default_sources_hold_the_named_sets_out_and_name_the_generated_faces():
    from happysad.data import emoji_faces
    from happysad.pipeline import configs

    sources = ingest.default_sources(configs.HELD_OUT_SOURCES)
    assert sources[:2] == [ingest.Source(emoji_faces.DEFAULT_DIR, "generated", False),
                           ingest.Source(emoji_faces.WIDE_DIR, "generated-wide", False)]
    assert {s.name for s in sources if s.held_out} == {"emojione", "noto", "variants"}
    assert {"twemoji", "openmoji", "fluent-flat", "fluent-3d"} <= {s.name for s in sources if not s.held_out}
    with pytest.raises(ingest.IngestError, match="no real-emoji set named apple"):
        ingest.default_sources(("apple",))


def test_two_sources_with_one_name_are_refused(tmp_path):
    _faces(tmp_path / "a" / "faces", 5, 10)
    _faces(tmp_path / "b" / "faces", 5, 90)
    with pytest.raises(ingest.IngestError, match="share a name"):
        ingest.ingest([ingest.Source.of(tmp_path / "a" / "faces"), ingest.Source.of(tmp_path / "b" / "faces")],
                      tmp_path / "out", progress=False)


def test_a_span_root_is_read_as_spans_and_a_mixed_one_is_refused(tmp_path):
    for name in ("span-2", "span-10", "span-1"):
        (tmp_path / "root" / name / "happy").mkdir(parents=True)
    assert {n: p.name for n, p in ingest.spans_in(tmp_path / "root").items()} == {
        1: "span-1", 2: "span-2", 10: "span-10"}
    (tmp_path / "plain" / "happy").mkdir(parents=True)
    (tmp_path / "plain" / "sad").mkdir()
    assert ingest.spans_in(tmp_path / "plain") == {}  # a class-per-folder tree
    (tmp_path / "root" / "happy").mkdir()
    with pytest.raises(ingest.IngestError, match=r"mixes span folders \(span-1, span-10, span-2\) with other "
                                                 r"folders \(happy\)"):
        ingest.spans_in(tmp_path / "root")
    (tmp_path / "root" / "happy").rmdir()
    (tmp_path / "root" / "span-0").mkdir()  # spans count from 1
    with pytest.raises(ingest.IngestError, match=r"other folders \(span-0\)"):
        ingest.spans_in(tmp_path / "root")


def test_a_fifo_or_an_oversized_file_in_a_class_folder_is_skipped_without_blocking(tmp_path, monkeypatch):
    """Ingestion reads each file with ingest.read_image_file's bound (the one
    `happysad predict` and `explain` use): a FIFO is not opened for a blocking
    read, a file over MAX_FILE_BYTES is not read past one byte over it."""
    root = tmp_path / "images"
    _fill(root, ingest.MIN_IMAGES_PER_CLASS)
    os.mkfifo(root / "happy" / "pipe.png")
    noise = np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    _write(root / "sad" / "big.png", _png(Image.fromarray(noise)))  # ~70 KB, the others < 1 KB
    size = (root / "sad" / "big.png").stat().st_size
    monkeypatch.setattr(ingest, "MAX_FILE_BYTES", size - 1)
    result = ingest.ingest(root, tmp_path / "out", workers=1, progress=False)
    assert result.counts == {"happy": 5, "sad": 5}
    reasons = {row["file"]: row["reason"] for row in result.skipped}
    assert reasons["happy/pipe.png"].startswith("a named pipe (FIFO), not an image file")
    assert reasons["sad/big.png"].startswith(f"{size:,} bytes, over the {size - 1:,}-byte limit")
