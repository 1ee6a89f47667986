"""`happysad explain`: what the served model looks at in one image.

Writes one PNG: the image; a saliency map (how much each pixel moves the
predicted class's score, its logit, smoothed); the Grad-CAM map of that class at
the last convolution; and the strongest channels of each convolution layer.
Saliency is the sharper of the two here: Grad-CAM's 15x15 grid blurs mouth and
brows together, and with the two-class sigmoid head the first class is
"the absence of the second", so its Grad-CAM is often empty. The prediction comes
from the SavedModel's serving signature (what TF Serving would answer); the
maps come from the Keras model saved beside it (assets.extra/model.keras),
fed the same decoded pixels.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

CHANNELS_SHOWN = 8  # per conv layer: the most active ones


@dataclasses.dataclass
class Explanation:
    class_name: str
    probability: float
    image: np.ndarray  # [150, 150, 3] floats 0..255, as the model saw it
    saliency: np.ndarray  # [150, 150] in 0..1: |d logit(class) / d pixel|, smoothed
    cam: np.ndarray  # [150, 150] in 0..1: Grad-CAM of the predicted class (may be all 0)
    activations: list  # [(layer name, [h, w, channels] array)]


class Explainer:
    """One model's explanations: the SavedModel's serving signature, the Keras
    model and the probe over its convolutions are loaded once, for any number of images."""

    def __init__(self, model_dir: str):
        import keras
        import tensorflow as tf

        from happysad import contract
        from happysad.components.trainer import image_decoding, models

        self._serve = tf.saved_model.load(model_dir).signatures[contract.SERVING_SIGNATURE]
        keras_path = os.path.join(model_dir, "assets.extra", "model.keras")
        if not os.path.exists(keras_path):
            raise FileNotFoundError(f"{keras_path} is missing: this model was exported before `explain` existed; "
                                    "push a new one with `make run`")
        model = keras.models.load_model(keras_path)
        size = image_decoding.IMAGE_SIZE
        self._head = model.layers[-1]  # Dense: the class scores, then sigmoid or softmax
        # Its architecture, found by the model's name, says which convolutions to show.
        self._convs = _shown(models.of_keras_model(model).explained_convolutions(model))
        if isinstance(model, keras.Sequential):
            # A loaded Sequential's layer outputs lie on more than one graph (gradients do not
            # flow between them): rewire its layers into one graph.
            x = inputs = keras.Input(shape=(size, size, image_decoding.CHANNELS))
            outputs = {}
            for layer in model.layers[:-1]:
                x = outputs[layer.name] = layer(x)
            conv_outputs = [outputs[layer.name] for layer in self._convs]
        else:  # a functional model's graph already names every layer's output
            inputs, x = model.inputs, self._head.input
            conv_outputs = [layer.output for layer in self._convs]
        self._probe = keras.Model(inputs, conv_outputs + [x])

    def __call__(self, image_bytes: bytes) -> Explanation:
        import tensorflow as tf

        from happysad import contract
        from happysad.components.trainer import image_decoding

        served = self._serve(images=tf.constant([image_bytes]))
        class_index = int(served[contract.CLASS_INDEX_OUTPUT].numpy()[0])
        head, size = self._head, image_decoding.IMAGE_SIZE
        pixels = image_decoding.decode_image(tf.constant(image_bytes))[tf.newaxis]
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(pixels)
            *activations, features_in = self._probe(pixels, training=False)
            # The head's logits, not its probabilities: a confident model's sigmoid
            # saturates (P rounds to 1.0) and its gradients vanish to exactly 0.
            logits = tf.matmul(features_in, head.kernel) + head.bias
            if logits.shape[-1] == 1:  # sigmoid head: the logit of class 1
                score = logits[:, 0] if class_index == 1 else -logits[:, 0]
            else:
                score = logits[:, class_index]
        pixel_gradients = tape.gradient(score, pixels)[0]
        gradients = tape.gradient(score, activations[-1])[0]
        del tape
        weights = tf.reduce_mean(gradients, axis=(0, 1))  # one weight per channel
        cam = tf.nn.relu(tf.reduce_sum(activations[-1][0] * weights, axis=-1))
        cam = cam / (tf.reduce_max(cam) + 1e-8)
        cam = tf.image.resize(cam[..., tf.newaxis], (size, size), method="bilinear")[..., 0]
        return Explanation(
            class_name=served[contract.CLASS_NAME_OUTPUT].numpy()[0].decode(),
            probability=float(served[contract.PROBABILITIES_OUTPUT].numpy()[0][class_index]),
            image=pixels[0].numpy(),
            saliency=_smooth(np.abs(pixel_gradients.numpy()).max(axis=-1)),
            cam=cam.numpy(),
            activations=[(layer.name, a[0].numpy()) for layer, a in zip(self._convs, activations)],
        )


def explain(model_dir: str, image_bytes: bytes) -> Explanation:
    """One image's explanation (Explainer loads the model once for many)."""
    return Explainer(model_dir)(image_bytes)


MAX_CONV_ROWS = 6  # a deep model's convolutions, evenly spaced, ending at the last (Grad-CAM's)


def _shown(items: list) -> list:
    if len(items) <= MAX_CONV_ROWS:
        return items
    step = (len(items) - 1) / (MAX_CONV_ROWS - 1)
    return [items[round(i * step)] for i in range(MAX_CONV_ROWS)]


def _smooth(values: np.ndarray) -> np.ndarray:
    """Blurred (a few pixels) and scaled to 0..1, so strokes read as regions."""
    from PIL import Image, ImageFilter

    scaled = np.round(255 * values / (values.max() + 1e-12)).astype(np.uint8)  # Pillow blurs 8-bit images
    out = np.asarray(Image.fromarray(scaled).filter(ImageFilter.GaussianBlur(3)), np.float32)
    return out / (out.max() + 1e-12)


def plot(explanation: Explanation, out_path: str, title: str = "") -> None:
    """Writes the explanation as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 1 + len(explanation.activations)
    fig, axes = plt.subplots(rows, CHANNELS_SHOWN, figsize=(CHANNELS_SHOWN * 1.6, rows * 1.8))
    for ax in axes.flat:
        ax.axis("off")
    image = explanation.image.astype(np.uint8)
    axes[0][0].imshow(image)
    axes[0][0].set_title("input", fontsize=8)
    for col, (name, values) in enumerate((("saliency", explanation.saliency), ("Grad-CAM", explanation.cam)), 1):
        axes[0][2 * col - 1].imshow(image)
        if values.max() > 0:
            axes[0][2 * col - 1].imshow(values, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        axes[0][2 * col - 1].set_title(f"{name}: {explanation.class_name}", fontsize=8)
        axes[0][2 * col].imshow(values, cmap="jet", vmin=0, vmax=1)
        axes[0][2 * col].set_title(f"{name} alone" + ("" if values.max() > 0 else " (empty)"), fontsize=8)
    for row, (name, maps) in enumerate(explanation.activations, start=1):
        strongest = np.argsort(maps.mean(axis=(0, 1)))[::-1][:CHANNELS_SHOWN]
        for col, channel in enumerate(strongest):
            axes[row][col].imshow(maps[..., channel], cmap="viridis")
            axes[row][col].set_title(f"{name} #{channel}", fontsize=7)
    fig.suptitle(title or f"{explanation.class_name} ({explanation.probability:.1%})", fontsize=11)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path, dpi=80)
    plt.close(fig)
