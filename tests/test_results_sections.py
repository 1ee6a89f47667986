"""benchmarks/RESULTS.md: `make bench-robustness` writes its marked section, and `make bench`, which
rewrites the file whole, keeps it, and the hand-written sections of figures moved out of code comments
and out of the READMEs (standard library only; nothing is measured)."""
import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import robustness_benchmark as rb  # noqa: E402
import run_all  # noqa: E402

BLOCK = f"{rb.START}\n## Robustness\n\n| variant | noto |\n|---|---:|\n| clean | 1.00 (1.00) |\n{rb.END}"


def test_the_section_is_appended_then_replaced_in_place():
    appended = rb.replace_section("# Benchmarks\n\n## Targets\n", BLOCK)
    assert appended == "# Benchmarks\n\n## Targets\n\n" + BLOCK + "\n"
    assert rb.section(appended) == BLOCK
    newer = BLOCK.replace("1.00 (1.00)", "0.50 (0.50)")
    replaced = rb.replace_section(appended + "\n## After\n", newer)
    assert replaced == "# Benchmarks\n\n## Targets\n\n" + newer + "\n\n## After\n"
    assert rb.replace_section(replaced, newer) == replaced  # idempotent
    assert rb.section("# no section\n") is None
    assert rb.section(f"{rb.START}\nnever closed\n") is None


def test_make_bench_keeps_the_section_when_it_rewrites_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(run_all.pipeline_benchmark, "main", lambda *a, **k: {"stub": True})
    monkeypatch.setattr(run_all.serving_benchmark, "main",
                        lambda argv: Path(argv[argv.index("--json") + 1]).write_text(json.dumps({"paths": {}})))
    monkeypatch.setattr(run_all, "markdown", lambda results: "# Benchmarks\n\nnew figures\n")
    (tmp_path / "out").mkdir()  # pipeline_benchmark.main makes it
    results = tmp_path / "RESULTS.md"
    results.write_text("# Benchmarks\n\nold figures\n\n" + BLOCK + "\n")
    run_all.main(["--out", str(tmp_path / "out"), "--markdown", str(results)])
    assert results.read_text() == "# Benchmarks\n\nnew figures\n\n" + BLOCK + "\n"
    results.write_text("# Benchmarks\n\nold figures, no section\n")
    run_all.main(["--out", str(tmp_path / "out"), "--markdown", str(results)])
    assert results.read_text() == "# Benchmarks\n\nnew figures\n"
    # The figures moved out of code comments are kept too, after the robustness section.
    comments = f"{run_all.FROM_COMMENTS_START}\n## From code comments\n\n| a | 4 s |\n{run_all.FROM_COMMENTS_END}"
    results.write_text("# Benchmarks\n\nold figures\n\n" + BLOCK + "\n\n" + comments + "\n")
    run_all.main(["--out", str(tmp_path / "out"), "--markdown", str(results)])
    assert results.read_text() == "# Benchmarks\n\nnew figures\n\n" + BLOCK + "\n\n" + comments + "\n"
    # And the figures moved out of the READMEs, after those.
    readmes = f"{run_all.FROM_READMES_START}\n## From the READMEs\n\n| b | 0.96 |\n{run_all.FROM_READMES_END}"
    results.write_text("# Benchmarks\n\nold figures\n\n" + BLOCK + "\n\n" + comments + "\n\n" + readmes + "\n")
    run_all.main(["--out", str(tmp_path / "out"), "--markdown", str(results)])
    assert results.read_text() == ("# Benchmarks\n\nnew figures\n\n" + BLOCK + "\n\n" + comments + "\n\n"
                                   + readmes + "\n")


def test_the_real_results_file_has_every_kept_section():
    text = (BENCHMARKS / "RESULTS.md").read_text()
    assert rb.section(text) and rb.section(text, run_all.FROM_COMMENTS_START, run_all.FROM_COMMENTS_END)
    assert rb.section(text, run_all.FROM_READMES_START, run_all.FROM_READMES_END)

