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


def build_model(learning_rate: float = 1e-3) -> keras.Model:
    """Input(150,150,3) of 0..255 pixels -> P(class index 1), compiled."""
    size, channels = image_decoding.IMAGE_SIZE, image_decoding.CHANNELS
    layers = [keras.Input(shape=(size, size, channels), name="pixels")]
    for kind, settings in REFERENCE_LAYERS:
        layers.append(getattr(keras.layers, kind)(**settings))
    model = keras.Sequential(layers, name="happysad_cnn")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


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
