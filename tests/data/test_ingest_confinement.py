"""Ingestion stays inside the data folder it was given.

Every path it follows (class folders, nested folders, files) must resolve
inside that folder; a link leading out is skipped with its reason, and nothing
behind it is listed or opened. The tests record which folders were listed
(os.scandir, which os.walk uses) and which files were opened for reading, not
only the report.
"""
import builtins
import io
import os
import sys

import pytest
from PIL import Image

from happysad.data import ingest


def _png(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (150, 150), colour).save(out, format="PNG")
    return out.getvalue()


def _faces(root, classes=("happy", "sad"), per_class=5):
    for c, cls in enumerate(classes):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / cls / f"{i}.png").write_bytes(_png((30 * i, 100 * c, 7)))


# Python's and the project's own files, which imports (TensorFlow's, inside
# ingest()) open: not data, so not recorded.
_CODE = [os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, os.path.dirname(ingest.__file__) + "/..")]


def _inside(path, root):
    return os.path.commonpath([path, root]) == root


class Recorder:
    """Which folders were listed and which files were opened for reading."""

    def __init__(self):
        self.listed, self.opened = [], []

    def record(self, into, path):
        real = os.path.realpath(os.fspath(path))
        if not any(_inside(real, code) for code in _CODE):
            into.append(os.fspath(path))

    def outside(self, root):
        """The recorded paths that resolve outside root."""
        real_root = os.path.realpath(root)
        return [p for p in self.listed + self.opened if not _inside(os.path.realpath(p), real_root)]


@pytest.fixture(scope="module")
def warmed_up(tmp_path_factory):
    """One ingestion before any recording: its first run imports TensorFlow,
    Keras and matplotlib, which read their own settings (~/.keras, /proc/stat,
    font caches) - not data."""
    tmp = tmp_path_factory.mktemp("warm")
    _faces(tmp / "images")
    ingest.ingest(tmp / "images", tmp / "out", workers=1, progress=False)


@pytest.fixture
def recorder(monkeypatch, warmed_up):
    rec = Recorder()
    real_scandir, real_os_open, real_open = os.scandir, os.open, builtins.open

    def scandir(path="."):
        rec.record(rec.listed, path)
        return real_scandir(path)

    def os_open(path, flags, *args, **kwargs):
        if not flags & (os.O_WRONLY | os.O_RDWR):
            rec.record(rec.opened, path)
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and not set(mode) & set("wax+"):
            rec.record(rec.opened, file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)  # pathlib's read_bytes
    return rec


def _reasons(skipped):
    return {row["file"]: row["reason"] for row in skipped}


@pytest.mark.parametrize("target", ["/", "/proc/self"])
def test_a_class_folder_linked_out_of_the_data_folder_is_neither_a_class_nor_listed(tmp_path, recorder, target):
    root = tmp_path / "images"
    _faces(root)
    (root / "evil").symlink_to(target)
    classes, files, skipped = ingest.list_images(root)
    assert classes == ["happy", "sad"]
    assert len(files) == 10 and all(not rel.startswith("evil") for rel, _ in files)
    reason = _reasons(skipped)["evil/"]
    assert os.path.realpath(target) in reason and "outside the data folder" in reason, reason
    assert recorder.outside(root) == []
    assert len(recorder.listed) == 3  # the data folder and its two class folders, nothing else


def test_a_chain_of_links_leading_out_is_followed_to_its_end_and_refused(tmp_path, recorder):
    root = tmp_path / "images"
    _faces(root)
    (root / ".hop").symlink_to("/")  # b -> /
    (root / "evil").symlink_to(".hop")  # a -> b: a class folder
    (root / "happy" / "deep").symlink_to("../.hop")  # a nested folder, the same chain
    (tmp_path / "hop2").symlink_to("/")
    (root / "sad" / "far").symlink_to(tmp_path / "hop2")  # through a link outside the root
    classes, files, skipped = ingest.list_images(root)
    assert classes == ["happy", "sad"] and len(files) == 10
    reasons = _reasons(skipped)
    for rel in ("evil/", "happy/deep/", "sad/far/"):
        assert "symlink to /, outside the data folder" in reasons[rel], (rel, reasons)
    assert recorder.outside(root) == []


def test_a_nested_folder_linked_outside_is_skipped_and_its_images_never_opened(tmp_path, recorder):
    root, elsewhere = tmp_path / "images", tmp_path / "elsewhere"
    _faces(root)
    for i in range(3):
        (elsewhere / "inner").mkdir(parents=True, exist_ok=True)
        (elsewhere / "inner" / f"x{i}.png").write_bytes(_png((1, 2, i)))
    (root / "happy" / "borrowed").symlink_to(elsewhere)
    result = ingest.ingest(root, tmp_path / "out", workers=1, progress=False)
    assert result.counts == {"happy": 5, "sad": 5}
    reason = _reasons(result.skipped)["happy/borrowed/"]
    assert str(elsewhere) in reason and "outside the data folder" in reason
    assert recorder.outside(root) == []
    assert not [p for p in recorder.listed + recorder.opened if "elsewhere" in p]


def test_a_file_linked_outside_is_skipped_and_never_opened(tmp_path, recorder):
    root, other = tmp_path / "images", tmp_path / "other"
    _faces(root)
    other.mkdir()
    (other / "private.png").write_bytes(_png((9, 9, 9)))
    (root / "happy" / "stolen.png").symlink_to(other / "private.png")
    (root / "sad" / "passwd.png").symlink_to("/etc/passwd")  # an image name, to be read as one
    (root / "sad" / "passwd").symlink_to("/etc/passwd")
    result = ingest.ingest(root, tmp_path / "out", workers=1, progress=False)
    assert result.counts == {"happy": 5, "sad": 5}
    reasons = _reasons(result.skipped)
    assert str(other / "private.png") in reasons["happy/stolen.png"]
    for rel in ("sad/passwd.png", "sad/passwd"):
        assert "symlink to /etc/passwd, outside the data folder" in reasons[rel], reasons
    assert recorder.outside(root) == []
    assert not [p for p in recorder.opened if p.endswith(("stolen.png", "passwd.png", "passwd"))]


def test_link_loops_end_and_are_named(tmp_path, recorder):
    root = tmp_path / "images"
    _faces(root)
    (root / "happy" / "a.png").symlink_to("b.png")  # files pointing at each other
    (root / "happy" / "b.png").symlink_to("a.png")
    (root / "sad" / "x").symlink_to("y")  # names that look like folders, pointing at each other
    (root / "sad" / "y").symlink_to("x")
    (root / "happy" / "up").symlink_to("..")  # back to the data root
    (root / "loop").symlink_to(".")  # a class folder that is the data root itself
    result = ingest.ingest(root, tmp_path / "out", workers=1, progress=False)
    assert result.counts == {"happy": 5, "sad": 5}
    reasons = _reasons(result.skipped)
    assert reasons["happy/up/"].startswith("symlink loop")
    assert reasons["loop/"].startswith("symlink loop")
    for rel in ("happy/a.png", "happy/b.png"):
        assert rel in reasons, reasons
    assert recorder.outside(root) == []


def test_links_that_stay_inside_the_data_folder_still_work(tmp_path, recorder):
    root = tmp_path / "images"
    _faces(root)
    (root / ".extra").mkdir()
    for i in range(2):
        (root / ".extra" / f"e{i}.png").write_bytes(_png((250, 250, i)))
    (root / ".pool").mkdir()
    (root / ".pool" / "shared.png").write_bytes(_png((3, 250, 3)))
    (root / "happy" / "more").symlink_to("../.extra")  # a nested folder elsewhere in the root
    (root / "sad" / "linked.png").symlink_to("../.pool/shared.png")  # a file elsewhere in the root
    result = ingest.ingest(root, tmp_path / "out", workers=1, progress=False)
    assert result.counts == {"happy": 7, "sad": 6}, result.skipped
    assert result.skipped == []
    assert recorder.outside(root) == []


def test_the_proc_self_case_lists_only_the_data_folder(tmp_path, recorder):
    """The attacker's case, through ingest(): before the fix ingestion listed
    ~5,500 host images and ~21,500 folders from /proc/self (= /)."""
    root = tmp_path / "images"
    _faces(root, classes=("happy", "sad", "meh"))
    (root / "proc").symlink_to("/proc/self")
    result = ingest.ingest(root, tmp_path / "out", workers=1, progress=False)
    assert result.counts == {"happy": 5, "meh": 5, "sad": 5}
    assert sum(result.counts.values()) == 15
    assert [row["file"] for row in result.skipped] == ["proc/"]
    assert recorder.outside(root) == []
    assert len(recorder.listed) == 4


def test_a_folder_linked_out_then_only_one_class_left_says_why(tmp_path):
    root = tmp_path / "images"
    _faces(root, classes=("happy",))
    (root / "sad").symlink_to(tmp_path)  # the parent of the data folder
    with pytest.raises(ingest.IngestError, match="1 class folder") as error:
        ingest.ingest(root, tmp_path / "out", progress=False)
    assert [row["file"] for row in error.value.skipped] == ["sad/"]


def test_a_sibling_folder_whose_name_starts_like_the_data_folder_is_outside_it(tmp_path, recorder):
    """commonpath, not a string prefix: /x/images2 is not inside /x/images."""
    root, sibling = tmp_path / "images", tmp_path / "images2"
    _faces(root)
    _faces(sibling, classes=("happy",), per_class=2)
    (root / "happy" / "more").symlink_to(sibling / "happy")
    classes, files, skipped = ingest.list_images(root)
    assert len(files) == 10
    assert f"symlink to {sibling / 'happy'}, outside the data folder" in _reasons(skipped)["happy/more/"]
    assert recorder.outside(root) == []
