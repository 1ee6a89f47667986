"""`happysad predict` and `explain` read each file with a bound, and send many
images in batches a server accepts.

A device, a FIFO or a folder is refused without blocking; a file over
ingest.MAX_FILE_BYTES is refused after reading at most one byte more; the
other files of the same command are still answered. Hundreds of images go to a
server in requests under its limits, and in-process in chunks.
"""
import os
import resource
import shutil
import subprocess
import threading
import time

import pytest

from live_server import HAPPYSAD, REPO
from happysad.data import emoji_faces, ingest
from happysad.serving import client

FILES = [emoji_faces.DEFAULT_DIR / "happy" / "happy_000.png", emoji_faces.DEFAULT_DIR / "sad" / "sad_000.png"]
# The command's address space is capped, so that a read without a bound fails
# in the test instead of growing until the OOM killer (/dev/zero reached 20 GB).
ADDRESS_SPACE = 6 * 2**30


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def _run(*args, timeout=120):
    started = time.monotonic()
    result = subprocess.run([HAPPYSAD, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                            timeout=timeout, preexec_fn=_capped)
    return result, time.monotonic() - started


def _rows(stdout):
    return [line.split("\t") for line in stdout.strip().splitlines()]


@pytest.fixture
def hostile(tmp_path):
    """{kind: path} of files no image reader should read through."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    big = tmp_path / "big.png"
    with open(big, "wb") as f:  # sparse: one byte over the limit costs no disk
        f.truncate(ingest.MAX_FILE_BYTES + 1)
    yield {"device": "/dev/zero", "fifo": fifo, "folder": folder, "too big": big}
    try:  # a reader stuck in open() on the FIFO (the bug) is released
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


EXPECTED = {"device": "a character device, not an image file", "fifo": "a named pipe (FIFO), not an image file",
            "folder": "a folder, not an image file",
            "too big": f"{ingest.MAX_FILE_BYTES + 1:,} bytes, over the {ingest.MAX_FILE_BYTES:,}-byte limit for one "
                       "image file"}


def test_predict_refuses_what_is_not_an_image_file_and_answers_the_rest(model_base, hostile):
    paths = [FILES[0], *hostile.values(), FILES[1]]
    result, seconds = _run("predict", *paths, "--model-dir", model_base / "1")
    assert result.returncode == 1, result.stderr
    assert [row[0] for row in _rows(result.stdout)] == [str(FILES[0]), str(FILES[1])], result.stdout
    for kind, path in hostile.items():
        assert f"{path}\terror: {EXPECTED[kind]}" in result.stderr, (kind, result.stderr)
    assert "Traceback" not in result.stderr
    assert seconds < 90


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_explain_refuses_what_is_not_an_image_file_in_one_line(model_base, hostile, tmp_path, kind):
    out = tmp_path / "out.png"
    result, _ = _run("explain", hostile[kind], "--model-dir", model_base / "1", "--out", out)
    assert result.returncode == 1
    assert f"error: {hostile[kind]}: {EXPECTED[kind]}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_the_reader_returns_at_once_on_a_fifo_without_a_writer(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome = []

    def read():
        try:
            outcome.append(ingest.read_image_file(fifo))
        except Exception as e:  # noqa: BLE001 - the test wants whatever it raised
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    if reader.is_alive():  # release it, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(5)
        pytest.fail("reading a FIFO blocked")
    assert isinstance(outcome[0], ingest.UnreadableFile) and "FIFO" in str(outcome[0])


def test_the_reader_reads_at_most_one_byte_over_the_limit(tmp_path, monkeypatch):
    """Even when the file's size says it fits (it grew, or a stat lies)."""
    path = tmp_path / "grows.png"
    path.write_bytes(b"x" * 1000)
    real_fstat, real_read, read = os.fstat, os.read, []

    def small_fstat(fd):
        st = list(real_fstat(fd))
        st[6] = 10  # st_size
        return os.stat_result(st)

    def counting_read(fd, n):
        data = real_read(fd, n)
        read.append(len(data))
        return data

    monkeypatch.setattr(os, "fstat", small_fstat)
    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(ingest.UnreadableFile, match="over the 100-byte limit"):
        ingest.read_image_file(path, limit=100)
    assert sum(read) == 101
    assert ingest.read_image_file(path, limit=1000) == b"x" * 1000


def _three_hundred(tmp_path):
    """300 small PNGs: the committed faces (classic and wide), some twice under another name."""
    sources = sorted(emoji_faces.DEFAULT_DIR.glob("*/*.png")) + sorted(emoji_faces.WIDE_DIR.glob("*/*.png"))
    paths = []
    for i in range(300):
        path = tmp_path / "many" / f"{i:03d}.png"
        path.parent.mkdir(exist_ok=True)
        shutil.copyfile(sources[i % len(sources)], path)
        paths.append(path)
    return paths


def test_predict_of_300_files_over_a_server_is_sent_in_batches_it_accepts(server, model_base, tmp_path):
    """The shared server refuses bodies over 1 MB (live_server.MAX_REQUEST_BYTES):
    300 faces are ~5 MB as one request, and were refused whole (HTTP 413)."""
    paths = _three_hundred(tmp_path)
    answers = {}
    for args in (["--model-dir", model_base / "1"], ["--server", server.rest],
                 ["--server", f"grpc://{server.grpc}"]):
        result, _ = _run("predict", *paths, *args, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        rows = _rows(result.stdout)
        assert [row[0] for row in rows] == [str(p) for p in paths]
        answers[str(args[0]) + str(args[1])[:4]] = rows
    reference, *others = answers.values()
    for rows in others:
        assert [r[1] for r in rows] == [r[1] for r in reference]
        assert all(abs(float(a[2]) - float(b[2])) < 1e-4 for a, b in zip(rows, reference))


def test_batches_are_bounded_by_count_and_bytes():
    items = [b"x" * n for n in (10, 10, 10, 500, 10, 2000, 10)]
    batches = list(client.batches(items, max_count=2, max_bytes=client.request_bytes([b"x" * 600])))
    assert [b for batch in batches for b in batch] == items  # every item, in order
    assert all(len(batch) <= 2 for batch in batches)
    assert [b"x" * 2000] in batches  # over the bound alone: sent alone (the server says if it is too large)
    for batch in batches:
        assert len(batch) == 1 or client.request_bytes(batch) <= client.request_bytes([b"x" * 600])


def test_a_batch_too_large_for_the_server_is_halved_until_it_fits():
    calls = []

    def call(batch):
        calls.append(len(batch))
        if sum(map(len, batch)) > 50:
            raise client.RequestTooLarge("HTTP 413: over 50")
        if b"bad" in batch:
            raise client.RequestRejected("not an image")
        return [("happy", float(len(b))) for b in batch]

    images = [b"x" * 10] * 9 + [b"bad", b"y" * 60]
    rows = client.answer(call, images)
    assert [r[1] for r in rows[:9]] == [10.0] * 9
    assert rows[9][0] is None and isinstance(rows[9][1], client.RequestRejected)
    assert rows[10][0] is None and isinstance(rows[10][1], client.RequestTooLarge)
    assert max(calls) == 11 and len(calls) < 20  # halved, not sent one by one


def test_in_process_predict_reads_and_runs_a_chunk_at_a_time(tmp_path, monkeypatch, capsys):
    """Memory stays bounded: files are read as their chunk is sent, never all first."""
    from happysad import cli

    paths = _three_hundred(tmp_path)[:100]
    read, held, answered = [], [], [0]
    real_read = ingest.read_image_file

    def counting_read(path, limit=None):
        read.append(path)
        return real_read(path, limit)

    def fake_model(model_dir):
        def call(images):
            held.append(len(read) - answered[0])  # files read and not yet answered
            answered[0] += len(images)
            return [("happy", 0.5)] * len(images)
        return call

    monkeypatch.setattr(ingest, "read_image_file", counting_read)
    monkeypatch.setattr(client, "_in_process", fake_model)
    assert cli.main(["predict", *map(str, paths), "--model-dir", str(tmp_path)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 100
    assert answered == [100] and len(held) == -(-100 // client.IN_PROCESS_CHUNK)
    assert max(held) <= client.IN_PROCESS_CHUNK + 1  # a batch, and the next file when bytes ended it
