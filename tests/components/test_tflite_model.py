"""The TFLite model: its documented preprocessing against the SavedModel's own decode, the conversion, the choice."""
import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from happysad.components.saved_model_bundle import SavedModelBundle
from happysad import contract
from happysad.components.trainer import image_decoding, serving_signatures, tflite_model
from happysad.components.trainer.models import reference_cnn
from happysad.data import emoji_faces
from helpers import REPO, removed_unless_failed

FACES = [(emoji_faces.DEFAULT_DIR / c / f"{c}_{i:03d}.png").read_bytes() for c in ("happy", "sad") for i in range(4)]
NOTO = sorted((REPO / "data" / "real_emoji" / "noto").glob("*/*.png"))[:6]


def _encoded(image: Image.Image, mode: str, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.convert(mode).save(buffer, fmt)
    return buffer.getvalue()


def _in_graph(encoded: bytes) -> np.ndarray:
    return image_decoding.decode_image(tf.constant(encoded)).numpy()


@pytest.mark.parametrize("mode,fmt,size", [
    ("RGBA", "PNG", 150), ("RGBA", "PNG", 64), ("RGBA", "PNG", 601), ("RGBA", "PNG", 1201), ("L", "PNG", 150), ("LA", "PNG", 97),
    ("P", "PNG", 150), ("RGB", "BMP", 300), ("RGB", "GIF", 150)])
def test_preprocess_gives_the_savedmodels_pixels(mode, fmt, size):
    """Same pixels as the graph's decode to float rounding, for every lossless format, gray, palette and
    transparency, kept, enlarged or shrunk (the antialiased resize)."""
    art = Image.open(NOTO[0]).convert("RGBA").resize((size, size), Image.BICUBIC)
    # Emoji art is drawn on transparency: fade the alpha from 0 (left) to opaque (right), over black.
    pixels = np.asarray(art).copy()
    pixels[..., :3] = np.where(pixels[..., :3] > 240, 0, pixels[..., :3])
    pixels[..., 3] = np.linspace(0, 255, size, dtype=np.uint8)[np.newaxis, :]
    encoded = _encoded(Image.fromarray(pixels, "RGBA"), mode, fmt)
    assert np.max(np.abs(tflite_model.preprocess(encoded) - _in_graph(encoded))) < 0.005


@pytest.mark.parametrize("background,canvas,at,size", [
    ((255, 255, 255), (300, 300), (160, 20), 90), ((30, 31, 34), (420, 260), (10, 150), 64),
    ((120, 200, 90), (200, 500), (40, 380), 150)])
def test_preprocess_frames_a_small_off_centre_face_as_the_graph_does(background, canvas, at, size):
    art = Image.open(NOTO[2]).convert("RGBA").resize((size, size), Image.BICUBIC)
    image = Image.new("RGB", canvas, background)
    image.paste(art, at, art)
    encoded = _encoded(image, "RGB", "PNG")
    assert np.max(np.abs(tflite_model.preprocess(encoded) - _in_graph(encoded))) < 0.005


def test_preprocess_reads_an_animated_gifs_first_frame_as_the_graph_does():
    frames = [Image.new("P", (40, 40), i) for i in range(3)]
    for i, frame in enumerate(frames):
        frame.putpalette([255, 0, 0, 0, 0, 255, 0, 255, 0] + [0] * 759)
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    pixels = tflite_model.preprocess(out.getvalue())
    assert np.max(np.abs(pixels - _in_graph(out.getvalue()))) < 0.005
    assert pixels[0, 0].tolist() == [255.0, 0.0, 0.0]  # the first frame's red, not the blue or green after it


def test_preprocess_differs_from_tensorflow_on_jpeg_only_by_the_decoder():
    """Pillow's libjpeg and TensorFlow's decode JPEG a few levels apart (measured: at most 2.7 of 255)."""
    encoded = _encoded(Image.open(NOTO[1]).convert("RGBA").resize((433, 433)), "RGB", "JPEG")
    difference = np.abs(tflite_model.preprocess(encoded) - _in_graph(encoded))
    assert difference.max() < 4 and difference.mean() < 1


def test_preprocess_refuses_what_is_not_an_image_a_truncated_one_and_a_decompression_bomb():
    with pytest.raises(ValueError, match="not a PNG, JPEG, GIF or BMP image"):
        tflite_model.preprocess(b"not an image")
    with pytest.raises(ValueError, match="the image does not decode"):
        tflite_model.preprocess(FACES[0][:len(FACES[0]) // 2])
    side = int(contract.MAX_DECODED_PIXELS ** 0.5) + 1
    with pytest.raises(ValueError, match="over the limit"):
        tflite_model.preprocess(_encoded(Image.new("L", (side, side)), "L", "PNG"))


@pytest.fixture(scope="module")
def exported(tmp_path_factory, request):
    """A random-weights CNN exported as the Trainer does: the SavedModel, then TFLite beside it."""
    tf.keras.utils.set_random_seed(2)
    model = reference_cnn.build_model()
    with removed_unless_failed(request.session, tmp_path_factory.mktemp("tflite")) as base:
        path = base / "1"
        serving_signatures.export(model, ["happy", "sad"], str(path))
        pixels = np.stack([_in_graph(face) for face in FACES])
        report = tflite_model.export(model, ["happy", "sad"], str(path), pixels, np.array([0] * 4 + [1] * 4))
        yield model, path, report, pixels


def test_the_tflite_model_answers_as_the_savedmodel_on_the_same_images(exported):
    _, path, report, _ = exported
    images = FACES + [p.read_bytes() for p in NOTO]
    bundle = SavedModelBundle(str(path))
    served = bundle.run("serving_default", {"images": np.array(images, dtype=object)})[contract.PROBABILITIES_OUTPUT]
    bundle.close()
    tflite = tflite_model.TFLiteModel(str(path / tflite_model.TFLITE_FILE))
    phone = tflite.probabilities(np.stack([tflite_model.preprocess(i) for i in images]))
    # int8 weights move a probability by at most ~0.01 (the report measures it on eval data).
    tolerance = 1e-5 if report["chosen"] == "float32" else 0.02
    assert np.max(np.abs(phone - served)) < tolerance
    assert (np.argmax(phone, 1) == np.argmax(served, 1)).mean() >= 0.9


def test_int8_is_converted_alone_and_kept_when_it_is_accurate_enough(exported, monkeypatch):
    _, path, report, _ = exported
    assert json.loads((path / tflite_model.TFLITE_REPORT_FILE).read_text()) == report
    (int8,) = report["variants"].values()  # one conversion: float32 only when int8 is not good enough
    assert report["chosen"] == "int8" and int8["accuracy"] >= report["keras_accuracy"] - 0.01
    assert int8["max_probability_difference"] < 0.02 and int8["agreement"] >= 0.9
    assert (path / tflite_model.TFLITE_FILE).stat().st_size == int8["bytes"]
    assert report["class_names"] == ["happy", "sad"] and int8["latency_ms_one_core"] > 0


def test_float32_is_converted_and_kept_when_int8_loses_accuracy(exported, tmp_path, monkeypatch):
    model, _, _, pixels = exported
    monkeypatch.setattr(tflite_model, "MAX_INT8_ACCURACY_DROP", -0.5)  # no int8 model can be this accurate
    report = tflite_model.export(model, ["happy", "sad"], str(tmp_path), pixels, np.array([0] * 4 + [1] * 4))
    assert report["chosen"] == "float32"
    float32, int8 = report["variants"]["float32"], report["variants"]["int8"]
    assert float32["max_probability_difference"] < 1e-5 and float32["agreement"] == 1.0  # it answers as Keras
    assert int8["bytes"] * 3 < float32["bytes"]  # int8 weights: about a quarter of the size
    assert (tmp_path / tflite_model.TFLITE_FILE).stat().st_size == float32["bytes"]
