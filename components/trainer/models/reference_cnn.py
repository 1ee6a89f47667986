"""The reference CNN: the seed notebook's three convolution blocks and dense head."""
import keras

from happysad.components.trainer import image_decoding
from happysad.components.trainer.models import common

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


DEFAULT_LEARNING_RATE = 1e-3


def build_model(learning_rate: float = DEFAULT_LEARNING_RATE, num_classes: int = 2) -> keras.Model:
    """Input(150,150,3) of 0..255 pixels, compiled.

    Two classes: the reference head, P(class index 1) from one sigmoid unit with
    binary cross-entropy. Three or more: one softmax unit per class with sparse
    categorical cross-entropy (integer labels)."""
    size, channels = image_decoding.IMAGE_SIZE, image_decoding.CHANNELS
    layers = [keras.Input(shape=(size, size, channels), name="pixels")]
    for kind, settings in REFERENCE_LAYERS[:-1]:
        layers.append(getattr(keras.layers, kind)(**settings))
    layers.append(common.classifier_head(num_classes))
    return common.compile_classifier(keras.Sequential(layers, name="happysad_cnn"), learning_rate, num_classes)
