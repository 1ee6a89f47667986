# The two commands: `make run` and `make test`. Each sets up .venv first
# (from requirements.lock, only when missing or stale); `make test` also installs
# chromium and chromium-driver when missing (the browser tests drive them), and
# prints its 15 slowest tests at the end. Its tests run on two workers (pytest-xdist).
VENV := .venv
BIN := $(VENV)/bin
# Extra flags for `happysad run`, e.g. make run ARGS="--data ~/faces --epochs 10"
ARGS ?=

.PHONY: run test venv browser data lock clean serve bench bench-serving bench-transfer bench-robustness

venv:
	@scripts/ensure_venv.sh

browser:
	@scripts/ensure_browser.sh

run: venv
	$(BIN)/happysad run $(ARGS)

# Two workers (one per core here, four at most), a test file to each: a file's
# tests share its pipeline runs and servers.
test: venv browser
	$(BIN)/python -m pytest tests -q -rfEs --durations=15 -n auto --maxprocesses 4 --dist loadfile $(ARGS)

# Serve the pushed models over TF Serving's REST (:8501) and gRPC (:8500) APIs.
serve: venv
	$(BIN)/happysad serve $(ARGS)

# Every performance figure side by side (~20 min; the 10,000 faces are generated once and kept):
# prints a table, writes pipeline_output/benchmarks/results.json and benchmarks/RESULTS.md.
bench: venv
	$(BIN)/python benchmarks/run_all.py $(ARGS)

# Serving latency/throughput: in-process vs. REST vs. gRPC (prints a table).
bench-serving: venv
	$(BIN)/python benchmarks/serving_benchmark.py --json pipeline_output/benchmarks/serving.json

# Transfer to real emoji art (data/real_emoji): generator-only and leave-one-set-out tables, for the
# default model (~25 min; ARGS="--arch reference" ~10 min).
bench-transfer: venv
	$(BIN)/python benchmarks/transfer_benchmark.py --json pipeline_output/benchmarks/transfer.json $(ARGS)

# Robustness to framing: the held-out real art and new generated faces, clean and off-centre, small,
# JPEG, dark mode, rotated (data/framing_variants.py), for both Trainer models, 3 seeds each; writes its
# section of benchmarks/RESULTS.md (make bench keeps it). ARGS="--arch lite0 --seeds 1" for one run.
bench-robustness: venv
	$(BIN)/python benchmarks/robustness_benchmark.py --json pipeline_output/benchmarks/robustness.json \
	  --markdown benchmarks/RESULTS.md $(ARGS)

# Regenerate the generated faces, classic and wide (byte-for-byte what is committed).
data: venv
	$(BIN)/happysad generate
	$(BIN)/happysad generate --family wide
	$(BIN)/happysad generate --family variants

# Re-resolve the lock after editing pyproject.toml (uv: ~15 s; old pip backtracks for minutes).
# Every line carries its files' SHA-256s: scripts/ensure_venv.sh installs with --require-hashes.
lock: venv
	$(BIN)/python -m uv pip compile pyproject.toml --extra dev --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_36 --generate-hashes --custom-compile-command "make lock" \
	  -q -o requirements.lock

clean:
	rm -rf pipeline_output serving_model
