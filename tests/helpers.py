"""What many tests share: where the repo and the `happysad` command are, and a
tf.Example builder. Imported as `helpers` (pytest puts tests/ on sys.path)."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HAPPYSAD = str(Path(sys.executable).parent / "happysad")  # the venv's console script


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
