"""The registry of architectures: every module offers the same surface, a wrong name is refused
with the known ones, and reading the registry imports neither Keras nor TensorFlow."""
import subprocess
import sys

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
