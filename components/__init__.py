"""Code that TFX components run on our behalf (the Trainer's user module)."""
import hashlib
from pathlib import Path

from happysad import contract

# The Trainer imports its entry point from the installed package: no user-code
# wheel to build and pip-install on every run (its cost: benchmarks/RESULTS.md, Figures from code comments).
# TFX hashed that wheel to know when the code changed; trainer_code_version() does it instead.
TRAINER_RUN_FN = "happysad.components.trainer.trainer_module.run_fn"
TRAINER_DIR = Path(__file__).resolve().parent / "trainer"
CONTRACT_FILE = Path(contract.__file__).resolve()  # the Trainer reads its image size, keys and framing


def code_version(files, root: Path) -> str:
    """A hash of the files' names (relative to root) and contents."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def trainer_code_version() -> str:
    """A hash of every .py of the Trainer's package, its sub-packages included, and
    of the contract. It goes into the Trainer's custom_config, so editing the code
    re-runs a cached Trainer."""
    files = [path for path in TRAINER_DIR.rglob("*.py") if "__pycache__" not in path.parts]
    return code_version([*files, CONTRACT_FILE], TRAINER_DIR.parents[1])
