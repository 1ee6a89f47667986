"""Shared test set-up.

The Trainer's modules import each other by bare name (TFX installs them as
top-level modules of its user-code wheel), so tests put that folder on the path.
"""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAINER_DIR = REPO / "components" / "trainer"
sys.path.insert(0, str(TRAINER_DIR))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
