"""The model as TensorFlow Lite, for phones: conversion, the preprocessing it needs, and running it.

TFLite has no image decoder, so the .tflite model reads pixels, float32
[N, 150, 150, 3] with values 0..255: the SavedModel's input after its
in-graph decode. `preprocess()` is that decode for a client, written with
Pillow and numpy so it ports to a phone. It answers what the Keras model
answers: P(class index 1), [N, 1], for two classes; the softmax, [N, classes],
otherwise (the SavedModel's `evaluation` signature gives the same).

Dynamic-range int8 (weights stored as int8, a quarter of the size, computed
in float) is converted first, and kept when its accuracy on the eval split is
within MAX_INT8_ACCURACY_DROP of the Keras model's. Only otherwise is float32
converted (it answers as Keras does) and kept: each conversion traces and
converts the whole model again, so a run converts once when int8 is good.
The kept one is written as `tflite` inside the SavedModel's folder: the name
TFX's TFLite rewriter and TFMA's model_type tf_lite use. TF Serving ignores
it, and the Pusher ships it beside the SavedModel.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import time
from typing import Sequence

import numpy as np

from happysad import contract

TFLITE_FILE = "tflite"  # in the SavedModel's folder, as TFX's rewriter names it
TFLITE_REPORT_FILE = "tflite.json"  # beside it: the converted variants' size, accuracy and latency, and the choice
INPUT_NAME = "pixels"  # TFMA feeds the feature of this name (its "serving_default_" prefix removed)
MAX_INT8_ACCURACY_DROP = 0.01
# The variants are compared on at most this many eval examples, this many at a
# time: the comparison adds to the Trainer's peak memory, and more examples or
# larger batches add more (benchmarks/RESULTS.md, Figures from code comments).
MAX_EVAL_EXAMPLES = 256
BATCH = 16
LATENCY_CALLS = 20
IMAGE_SIZE = contract.IMAGE_SIZE
BACKGROUND = float(contract.BACKGROUND[0])


def preprocess(encoded: bytes) -> np.ndarray:
    """Encoded PNG/JPEG/GIF/BMP bytes -> float32 [150, 150, 3], values 0..255:
    the TFLite model's input for one image.

    The steps of the SavedModel's in-graph decode (image_decoding.decode_image):
    the first frame; a side over contract.MAX_DECODE_SIDE thinned to
    every k-th row or column; gray expanded to RGB; transparency composited
    onto white (rgb * a + 255 * (1 - a), a = alpha / 255); framed (frame);
    then, unless the image is already 150x150, a bilinear resize that averages over the source pixels
    when shrinking (TF's antialias=True; Pillow's BILINEAR). No scaling to
    0..1: the model rescales inside. Raises ValueError for bytes that are not
    an image, or over contract.MAX_DECODED_PIXELS pixels."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(encoded))
    except Exception as e:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError, ...
        raise ValueError(f"not a PNG, JPEG, GIF or BMP image ({type(e).__name__})") from None
    with image:
        if image.width * image.height > contract.MAX_DECODED_PIXELS:
            raise ValueError(f"image has {image.width} x {image.height} pixels, over the limit of "
                             f"{contract.MAX_DECODED_PIXELS}: send a smaller image")
        try:  # the header read fine; the pixels may still be cut short
            rgba = np.asarray(image.convert("RGBA"))
        except Exception as e:
            raise ValueError(f"the image does not decode ({type(e).__name__}: {e})") from None
    side = contract.MAX_DECODE_SIDE  # thinned while uint8, by the graph's strides
    rgba = rgba[::-(-rgba.shape[0] // side), ::-(-rgba.shape[1] // side)].astype(np.float32)
    alpha = rgba[..., 3:4] / np.float32(255.0)
    pixels = frame(rgba[..., :3] * alpha + np.float32(BACKGROUND) * (np.float32(1.0) - alpha))
    if pixels.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        pixels = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c]), mode="F").resize(
            (IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)) for c in range(3)], axis=-1)
    return np.clip(pixels, 0.0, 255.0).astype(np.float32)


def frame(pixels: np.ndarray) -> np.ndarray:
    """image_decoding.frame in numpy: float32 [H, W, 3] -> the square around
    what differs from the border's colour, with a margin, padded with that
    colour; the image itself where the border is not one colour."""
    height, width = pixels.shape[:2]
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    colour = np.sort(border, axis=0)[len(border) // 2]
    border_off = np.abs(border - colour).max(axis=-1) > contract.FRAME_TOLERANCE
    off = np.abs(pixels - colour).max(axis=-1) > contract.FRAME_TOLERANCE
    rows, columns = np.flatnonzero(off.any(axis=1)), np.flatnonzero(off.any(axis=0))
    if np.float32(border_off.mean()) > contract.FRAME_BORDER_OFF or not len(rows):
        return pixels
    top, bottom, left, right = rows[0], rows[-1] + 1, columns[0], columns[-1] + 1
    size = max(bottom - top, right - left)
    side = size + 2 * (size // contract.FRAME_MARGIN_DIVISOR)
    y, x = (top + bottom - side) // 2, (left + right - side) // 2
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + side, height), min(x + side, width)
    inside = pixels[y0:y1, x0:x1] - colour
    return np.pad(inside, [(y0 - y, y + side - y1), (x0 - x, x + side - x1), (0, 0)]) + colour


class TFLiteModel:
    """One .tflite model in TFLite's interpreter; `threads` CPU threads."""

    def __init__(self, model: bytes | str, threads: int = 1):
        import tensorflow as tf

        content = model if isinstance(model, bytes) else open(model, "rb").read()
        self.interpreter = tf.lite.Interpreter(model_content=content, num_threads=threads)
        (self._input,) = self.interpreter.get_input_details()
        (self._output,) = self.interpreter.get_output_details()
        self._batch = None

    def outputs(self, pixels: np.ndarray) -> np.ndarray:
        """float32 [N, 150, 150, 3] -> the model's output for each row."""
        pixels = np.asarray(pixels, dtype=np.float32)
        if self._batch != len(pixels):
            self.interpreter.resize_tensor_input(self._input["index"], pixels.shape)
            self.interpreter.allocate_tensors()
            self._batch = len(pixels)
        self.interpreter.set_tensor(self._input["index"], pixels)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).copy()

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """[N, classes]: the binary head's P(class 1) becomes [1 - p, p]."""
        return as_probabilities(self.outputs(pixels))


def as_probabilities(output: np.ndarray) -> np.ndarray:
    return np.concatenate([1.0 - output, output], axis=1) if output.shape[-1] == 1 else output


def convert(model, quantizations=(False, True)) -> list:
    """The Keras model as TFLite, once per entry of `quantizations`: float32
    (False) or with dynamic-range int8 weights (True).

    Both go through one SavedModel that Keras' ExportArchive writes (one
    signature, pixels -> output): converting a tf.function over a Keras 3
    model directly crashes the converter ("missing attribute 'value'")."""
    import keras
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        archive = keras.export.ExportArchive()
        archive.track(model)

        def predict(pixels):
            return {contract.EVAL_PREDICTION_KEY: model(pixels, training=False)}

        spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name=INPUT_NAME)
        archive.add_endpoint("serving_default", predict, input_signature=[spec])
        archive.write_out(tmp, verbose=False)
        converted = []
        for quantize in quantizations:
            converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
            if quantize:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative data: dynamic range
            converted.append(converter.convert())
        return converted


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(probabilities, axis=1) == labels.astype(np.int64)))


def _latency_ms(model: TFLiteModel, pixel: np.ndarray) -> float:
    """Median of LATENCY_CALLS batch-1 calls after one warm-up call."""
    model.outputs(pixel)
    times = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        model.outputs(pixel)
        times.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(times)), 2)


def export(model, class_names: Sequence[str], export_dir: str, pixels: np.ndarray, labels: np.ndarray) -> dict:
    """Converts `model` to int8 (and to float32 only when int8 is not accurate
    enough), compares each variant with the Keras model on (pixels, labels),
    writes the chosen one to export_dir/tflite and the comparison (with the
    class names, which the .tflite file lacks) to export_dir/tflite.json;
    returns the comparison."""
    keras_probabilities = as_probabilities(np.asarray(model.predict(pixels, verbose=0)))
    report = {"class_names": list(class_names), "input": f"{INPUT_NAME}: float32 [N, {IMAGE_SIZE}, {IMAGE_SIZE}, 3], "
              "0..255, from preprocess()", "examples": int(len(pixels)),
              "keras_accuracy": _accuracy(keras_probabilities, labels),
              "max_int8_accuracy_drop": MAX_INT8_ACCURACY_DROP, "variants": {}}

    def compare(name: str, content: bytes) -> dict:
        tflite = TFLiteModel(content, threads=1)
        probabilities = np.concatenate([tflite.probabilities(pixels[i:i + BATCH])
                                        for i in range(0, len(pixels), BATCH)])
        report["variants"][name] = {
            "bytes": len(content),
            "accuracy": _accuracy(probabilities, labels),
            "max_probability_difference": float(np.max(np.abs(probabilities - keras_probabilities))),
            "agreement": float(np.mean(np.argmax(probabilities, 1) == np.argmax(keras_probabilities, 1))),
            "latency_ms_one_core": _latency_ms(tflite, pixels[:1]),
        }
        return report["variants"][name]

    (chosen,) = convert(model, (True,))
    report["chosen"] = "int8"
    if compare("int8", chosen)["accuracy"] < report["keras_accuracy"] - MAX_INT8_ACCURACY_DROP:
        (chosen,) = convert(model, (False,))
        compare("float32", chosen)
        report["chosen"] = "float32"
    with open(os.path.join(export_dir, TFLITE_FILE), "wb") as f:
        f.write(chosen)
    with open(os.path.join(export_dir, TFLITE_REPORT_FILE), "w") as f:
        json.dump(report, f, indent=2)
    return report
