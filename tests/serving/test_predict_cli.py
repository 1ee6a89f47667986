"""`happysad predict`: in-process, over REST and over gRPC, with the same answers."""
import subprocess

import tensorflow as tf

from live_server import HAPPYSAD, REPO
from happysad.data import emoji_faces

FILES = [emoji_faces.DEFAULT_DIR / "happy" / "happy_000.png", emoji_faces.DEFAULT_DIR / "sad" / "sad_000.png"]


def _predict(*args, expect=0):
    result = subprocess.run([HAPPYSAD, "predict", *map(str, FILES), *args], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == expect, result.stdout + result.stderr
    return result


def _rows(stdout):
    rows = [line.split("\t") for line in stdout.strip().splitlines()]
    return [(path, name, float(p)) for path, name, p in rows]


def test_the_three_paths_agree_with_the_signature(server, model_base, in_process):
    out = in_process.signatures["serving_default"](images=tf.constant([f.read_bytes() for f in FILES]))
    expected = [(str(f), n.decode(), max(p)) for f, n, p in
                zip(FILES, out["class_name"].numpy(), out["probabilities"].numpy().tolist())]
    for args in (["--model-dir", str(model_base / "1")], ["--server", server.rest],
                 ["--server", f"grpc://{server.grpc}"]):
        rows = _rows(_predict(*args).stdout)
        assert [(p, n) for p, n, _ in rows] == [(p, n) for p, n, _ in expected], args
        assert all(abs(a[2] - b[2]) < 1e-4 for a, b in zip(rows, expected)), (args, rows)


def test_an_unreachable_server_or_unknown_model_is_a_clear_error(server):
    down = _predict("--server", "http://127.0.0.1:9", expect=1)
    assert "error:" in down.stderr and "127.0.0.1:9" in down.stderr
    unknown = _predict("--server", f"grpc://{server.grpc}", "--model", "nope", expect=1)
    assert "NOT_FOUND" in unknown.stderr and "nope" in unknown.stderr


def test_bad_files_are_named_and_the_rest_still_classified(server, model_base, tmp_path):
    empty, text = tmp_path / "empty.png", tmp_path / "notes.png"
    empty.write_bytes(b"")
    text.write_text("not an image")
    for args in (["--model-dir", str(model_base / "1")], ["--server", server.rest],
                 ["--server", f"grpc://{server.grpc}"]):
        result = subprocess.run([HAPPYSAD, "predict", str(FILES[0]), str(empty), str(text), str(FILES[1]),
                                 str(tmp_path / "missing.png"), *args],
                                cwd=REPO, capture_output=True, text=True, timeout=300)
        assert result.returncode == 1, args
        assert [row[0] for row in _rows(result.stdout)] == [str(FILES[0]), str(FILES[1])], args
        assert f"{empty}\terror: the file is empty" in result.stderr
        assert f"{text}\terror: not an image the model can read" in result.stderr, result.stderr
        assert f"{tmp_path / 'missing.png'}\terror: cannot read it" in result.stderr
        assert "Traceback" not in result.stderr


def test_explain_on_a_non_image_is_one_clear_line(model_base, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    result = subprocess.run([HAPPYSAD, "explain", str(text), "--model-dir", str(model_base / "1"),
                             "--out", str(tmp_path / "out.png")], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert f"error: {text}: not an image the model can read" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out.png").exists()
