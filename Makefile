# The two commands: `make run` and `make test`. Each sets up .venv first
# (from requirements.lock, only when missing or stale).
VENV := .venv
BIN := $(VENV)/bin
# Extra flags for `happysad run`, e.g. make run ARGS="--data ~/faces --epochs 10"
ARGS ?=

.PHONY: run test venv data lock clean

venv:
	@scripts/ensure_venv.sh

run: venv
	$(BIN)/happysad run $(ARGS)

test: venv
	$(BIN)/python -m pytest tests -q -rs

# Regenerate the default faces (byte-for-byte what is committed).
data: venv
	$(BIN)/happysad generate

# Re-resolve the lock after editing pyproject.toml (uv: ~15 s; old pip backtracks for minutes).
lock: venv
	$(BIN)/python -m uv pip compile pyproject.toml --extra dev --python-version 3.10 \
	  --python-platform x86_64-manylinux_2_36 --custom-compile-command "make lock" -q -o requirements.lock

clean:
	rm -rf pipeline_output serving_model
