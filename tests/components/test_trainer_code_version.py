"""The Trainer runs from the installed package; a hash of its code re-runs it when the code changes."""
import shutil

from happysad import components


def test_the_code_version_follows_every_file_of_the_trainer_package_its_subpackages_and_the_contract(tmp_path, monkeypatch):
    copy, contract = tmp_path / "components" / "trainer", tmp_path / "happysad" / "contract.py"  # the repo's layout
    shutil.copytree(components.TRAINER_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    contract.parent.mkdir()
    shutil.copy(components.CONTRACT_FILE, contract)
    monkeypatch.setattr(components, "TRAINER_DIR", copy)
    monkeypatch.setattr(components, "CONTRACT_FILE", contract)
    before = components.trainer_code_version()
    assert before == components.trainer_code_version()  # stable: a cached run stays cached
    versions = [before]
    for edit in (copy / "models" / "reference_cnn.py", contract):  # the model's code, and the contract it reads
        edit.write_text(edit.read_text() + "\n# a change\n")
        versions.append(components.trainer_code_version())
    (copy / "helpers.py").write_text("X = 1\n")  # a new module counts too
    versions.append(components.trainer_code_version())
    subpackage = copy / "models"
    subpackage.mkdir(exist_ok=True)
    edit = subpackage / "some_model.py"  # a module in a sub-package, new, then edited
    edit.write_text("X = 1\n")
    versions.append(components.trainer_code_version())
    edit.write_text("X = 2\n")
    versions.append(components.trainer_code_version())
    cache = subpackage / "__pycache__"  # compiled leftovers are not code
    cache.mkdir()
    (cache / "stray.py").write_text("X = 3\n")
    assert components.trainer_code_version() == versions[-1]
    assert len(set(versions)) == 6, versions


def test_the_run_fn_is_importable_from_the_installed_package():
    from tfx.utils import import_utils

    module, name = components.TRAINER_RUN_FN.rsplit(".", 1)
    assert callable(import_utils.import_func_from_module(module, name))
