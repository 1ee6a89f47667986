"""A third architecture, as a contributor would add one: this file, plus one line in the
registry (test_a_new_architecture.py adds that line with monkeypatch). Tiny, so it trains fast."""
DESCRIPTION = "a toy CNN: Rescaling(1/255), one strided Conv2D (4 filters), global average pooling"
DEFAULT_LEARNING_RATE = 1e-2
KERAS_NAME = "happysad_toy"


def build_model(num_classes: int = 2, learning_rate: float = DEFAULT_LEARNING_RATE):
    import keras

    from happysad.components.trainer.models import common

    inputs = common.pixels_input()
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 5, strides=3, activation="relu", name="toy_conv")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, common.classifier_head(num_classes)(x), name=KERAS_NAME)
    return common.compile_classifier(model, learning_rate, num_classes)


def explained_convolutions(model) -> list:
    return [model.get_layer("toy_conv")]
