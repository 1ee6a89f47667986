"""The Trainer runs from the installed package; a hash of its code re-runs it when the code changes."""
import shutil

from happysad import components


def test_the_code_version_follows_every_file_of_the_trainer_package(tmp_path, monkeypatch):
    copy = tmp_path / "trainer"
    shutil.copytree(components.TRAINER_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(components, "TRAINER_DIR", copy)
    before = components.trainer_code_version()
    assert before == components.trainer_code_version()  # stable: a cached run stays cached
    (copy / "emoji_cnn.py").write_text((copy / "emoji_cnn.py").read_text() + "\n# a change\n")
    edited = components.trainer_code_version()
    (copy / "helpers.py").write_text("X = 1\n")  # a new module counts too
    assert len({before, edited, components.trainer_code_version()}) == 3


def test_the_run_fn_is_importable_from_the_installed_package():
    from tfx.utils import import_utils

    module, name = components.TRAINER_RUN_FN.rsplit(".", 1)
    assert callable(import_utils.import_func_from_module(module, name))
