"""The tf.Example contract written by ingestion and read by the Trainer.

Kept free of TensorFlow at import time: ingestion's worker processes import it.
"""
IMAGE_KEY = "image"  # PNG bytes
LABEL_KEY = "label"  # int64 class index, classes in alphabetical order
CLASS_NAME_KEY = "class_name"  # the class folder's name
FILENAME_KEY = "filename"  # source path relative to the data folder


def feature_spec() -> dict:
    """What the Trainer and the evaluation signature parse."""
    import tensorflow as tf

    return {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
