"""The reference CNN: the seed notebook's three convolution blocks and dense head.

Light to import (no Keras until a model is built): the registry imports it on every CLI command.
"""

DESCRIPTION = ("the reference CNN: Rescaling(1/255), three Conv2D + MaxPooling blocks (16, 32, 64 filters), "
               "Dense 128")
DEFAULT_LEARNING_RATE = 1e-3
KERAS_NAME = "happysad_cnn"

# (layer type, defining settings) of the reference notebook's model, in order.
# Rescaling comes first because pixels are rescaled inside the model, so the
# serving signature takes raw 0..255 pixels and no client has to rescale.
REFERENCE_LAYERS = [
    ("Rescaling", {"scale": 1.0 / 255}),
    ("Conv2D", {"filters": 16, "kernel_size": (3, 3), "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": (2, 2)}),
    ("Conv2D", {"filters": 32, "kernel_size": (3, 3), "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": (2, 2)}),
    ("Conv2D", {"filters": 64, "kernel_size": (3, 3), "activation": "relu"}),
    ("MaxPooling2D", {"pool_size": (2, 2)}),
    ("Flatten", {}),
    ("Dense", {"units": 128, "activation": "relu"}),
    ("Dense", {"units": 1, "activation": "sigmoid"}),
]


def build_model(num_classes: int = 2, learning_rate: float = DEFAULT_LEARNING_RATE):
    """A compiled keras.Sequential from Input(150,150,3) of 0..255 pixels.

    Two classes: the reference head, P(class index 1) from one sigmoid unit with
    binary cross-entropy. Three or more: one softmax unit per class with sparse
    categorical cross-entropy (integer labels)."""
    import keras

    from happysad.components.trainer.models import common

    layers = [common.pixels_input()]
    for kind, settings in REFERENCE_LAYERS[:-1]:
        layers.append(getattr(keras.layers, kind)(**settings))
    layers.append(common.classifier_head(num_classes))
    return common.compile_classifier(keras.Sequential(layers, name=KERAS_NAME), learning_rate, num_classes)


def explained_convolutions(model) -> list:
    """Its three convolutions, in order."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
