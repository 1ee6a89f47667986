"""What many tests share: where the repo and the `happysad` command are, a
tf.Example builder and a self-removing folder. Imported as `helpers` (pytest puts tests/ on sys.path)."""
import contextlib
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HAPPYSAD = str(Path(sys.executable).parent / "happysad")  # the venv's console script


@contextlib.contextmanager
def removed_unless_failed(session, path: Path):
    """A module's shared folder, deleted when its tests are done unless one of
    them failed (then kept, to debug). pytest keeps such folders to the end of
    the run, and the suite's would add up to GBs (pyproject's tmp_path note)."""
    failed = session.testsfailed
    yield path
    if session.testsfailed == failed:
        shutil.rmtree(path, ignore_errors=True)


def example(**values) -> bytes:
    """A serialized tf.Example with one feature per keyword; None leaves it out.
    bytes/str go to a bytes_list, int to an int64_list, float to a float_list."""
    import tensorflow as tf

    feature = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, bytes):
            feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        elif isinstance(value, int):
            feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        elif isinstance(value, float):
            feature[key] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            raise TypeError(f"feature {key}: {type(value).__name__} is not bytes, str, int or float")
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def saved_model_cli_run(model_dir: str, images: list, folder: Path):
    """`saved_model_cli run` of serving_default on encoded images: TensorFlow's
    own tool, on the session loader TF Serving uses. The finished process."""
    import subprocess

    import numpy as np

    inputs = folder / "images.npy"
    np.save(inputs, np.array(images, dtype=object))
    cli = str(Path(sys.executable).parent / "saved_model_cli")
    return subprocess.run([cli, "run", "--dir", model_dir, "--tag_set", "serve", "--signature_def",
                           "serving_default", "--inputs", f"images={inputs}"],
                          capture_output=True, text=True, timeout=300)


def export_the_old_way(model, path: str) -> None:
    """How the model was exported before: the Keras 3 model as an attribute of
    a tf.Module, written by tf.saved_model.save. tf.saved_model.load runs it;
    TF Serving's session loader cannot find its variables."""
    import tensorflow as tf

    from happysad.components.trainer import image_decoding

    class Module(tf.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
        def serve(self, images):
            probability = self.model(image_decoding.decode_batch(images), training=False)
            return {"probabilities": tf.concat([1 - probability, probability], axis=1)}

    module = Module()
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
