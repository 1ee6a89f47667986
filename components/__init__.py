"""Code that TFX components run on our behalf (the Trainer's user module)."""
from pathlib import Path

# The Trainer's module lives in a folder of its own: TFX packages every .py
# beside the module file into the user-code wheel and hashes them, so anything
# else placed there would re-run the Trainer when it changes.
TRAINER_MODULE_FILE = str(Path(__file__).resolve().parent / "trainer" / "trainer_module.py")
