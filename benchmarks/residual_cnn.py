"""An experiment of the transfer benchmark, not a Trainer option (`transfer_benchmark.py --arch residual`).

The reference CNN's three stages, each with a residual pair of 3x3 convolutions and
no BatchNorm (which does not train at batch 10), then its Dense 128 and the shared
head. It offers the surface of the Trainer's architectures (components/trainer/models/)
so the benchmark trains it the same way; its figures are in data/README.md.
"""
NAME = "residual"
DESCRIPTION = ("a small residual CNN without BatchNorm: Rescaling(1/255), three stages of a 3x3 Conv2D and a "
               "residual pair of 3x3 Conv2D (16, 32, 64 filters) + MaxPooling, Dense 128")
DEFAULT_LEARNING_RATE = 1e-3
KERAS_NAME = "residual"


def build_model(num_classes: int = 2, learning_rate: float = DEFAULT_LEARNING_RATE):
    """A compiled keras.Model from Input(150,150,3) of 0..255 pixels."""
    import keras

    from happysad.components.trainer.models import common

    inputs = common.pixels_input()
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        y = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        y = keras.layers.Conv2D(filters, 3, padding="same")(y)
        x = keras.layers.Activation("relu")(keras.layers.Add()([x, y]))
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dense(128, activation="relu")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, common.classifier_head(num_classes)(x), name=KERAS_NAME)
    return common.compile_classifier(model, learning_rate, num_classes)


def explained_convolutions(model) -> list:
    """Its nine convolutions, in order."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
