"""The reference CNN and the accuracy-threshold stop callback."""
import keras

import image_decoding

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


def build_model(learning_rate: float = 1e-3, num_classes: int = 2) -> keras.Model:
    """Input(150,150,3) of 0..255 pixels, compiled.

    Two classes: the reference head, P(class index 1) from one sigmoid unit with
    binary cross-entropy. Three or more: one softmax unit per class with sparse
    categorical cross-entropy (integer labels)."""
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    size, channels = image_decoding.IMAGE_SIZE, image_decoding.CHANNELS
    layers = [keras.Input(shape=(size, size, channels), name="pixels")]
    for kind, settings in REFERENCE_LAYERS[:-1]:
        layers.append(getattr(keras.layers, kind)(**settings))
    binary = num_classes == 2
    layers.append(keras.layers.Dense(1, activation="sigmoid") if binary
                  else keras.layers.Dense(num_classes, activation="softmax"))
    model = keras.Sequential(layers, name="happysad_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def augmentation(seed: int) -> keras.Sequential:
    """Random flips, rotation, zoom and contrast for the training split only.

    Applied in the training tf.data map, not inside the model: the exported
    model stays the reference CNN, and serving never sees it. Every change
    keeps the expression readable (a mirrored smile is still a smile)."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomRotation(0.04, fill_mode="nearest", seed=seed),
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed),
        keras.layers.RandomContrast(0.2, seed=seed),
    ], name="augmentation")


class StopAtAccuracy(keras.callbacks.Callback):
    """Stops training at the end of the first epoch whose training accuracy
    reaches `threshold` (the reference notebook's 99.9% callback)."""

    def __init__(self, threshold: float = 0.999):
        super().__init__()
        self.threshold = threshold
        self.stopped_epoch = None  # 1-based epoch at which the threshold was reached

    def on_epoch_end(self, epoch, logs=None):
        accuracy = (logs or {}).get("accuracy")
        if accuracy is not None and accuracy >= self.threshold:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True
