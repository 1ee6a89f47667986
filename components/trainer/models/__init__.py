"""The Trainer's model architectures: one module each, registered here by name.

Every module offers the same surface:
  build_model(num_classes, learning_rate): a compiled keras.Model from 0..255 pixels
      [N, 150, 150, 3] to P(class index 1) (two classes) or class probabilities (more);
  DEFAULT_LEARNING_RATE: Adam's, when a run gives none;
  DESCRIPTION: one sentence, up to the head, for the model card, `inspect` and --arch's help;
  KERAS_NAME: the name build_model gives its model (`explain` finds the module by it);
  explained_convolutions(model): the convolution layers `explain` shows, in order (the last
      is Grad-CAM's).
Importing a module imports neither Keras nor TensorFlow: every CLI command reads this registry.
Adding an architecture is one module beside these and one line in ARCHITECTURES.
"""
from types import ModuleType

from happysad.components.trainer.models import efficientnet_lite0, reference_cnn

# Name (--arch, TrainingConfig.architecture, the training summary's "architecture") -> module.
ARCHITECTURES = {
    "reference": reference_cnn,
    "lite0": efficientnet_lite0,
}
# The pretrained model reads vendors' art it never trained on best and reaches the stop
# threshold in fewer epochs (components/README.md, "The two models").
DEFAULT = "lite0"
# Training summaries from before the choice existed name no architecture: they trained the seed's CNN.
UNNAMED = "reference"
# The quickest to train: what benchmarks of the machinery (not of a model) train.
QUICKEST = "reference"


def get(name: str) -> ModuleType:
    """The module of the architecture called `name`; a ValueError naming the known ones otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}: choose one of {', '.join(ARCHITECTURES)}") from None


def trained_architecture(training_summary: dict) -> str:
    """The architecture a Trainer's training summary names."""
    return training_summary.get("architecture", UNNAMED)


def description(name: str) -> str:
    """The architecture's one sentence; an old run's architecture, no longer registered, says so."""
    module = ARCHITECTURES.get(name)
    return module.DESCRIPTION if module else f"{name} (an architecture this version no longer has)"


def of_keras_model(model) -> ModuleType:
    """The module whose build_model made `model` (a keras.Model, loaded or built), by its name."""
    for module in ARCHITECTURES.values():
        if module.KERAS_NAME == model.name:
            return module
    known = ", ".join(f"{m.KERAS_NAME} ({name})" for name, m in ARCHITECTURES.items())
    raise ValueError(f"no registered architecture builds a model named {model.name!r}; known: {known}")
