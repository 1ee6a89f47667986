"""The contract between ingestion, the Trainer and the pipeline: the tf.Example
features, and the exported model's evaluation signature the Evaluator calls.

Kept free of TensorFlow at import time: ingestion's worker processes import it.
"""
IMAGE_KEY = "image"  # PNG bytes
LABEL_KEY = "label"  # int64 class index, classes in alphabetical order
CLASS_NAME_KEY = "class_name"  # the class folder's name
FILENAME_KEY = "filename"  # source path relative to the data folder

EVAL_SIGNATURE = "evaluation"  # serialized tf.Example -> EVAL_PREDICTION_KEY
EVAL_PREDICTION_KEY = "probability"  # P(class index 1) [N, 1]; for 3+ classes [N, classes]


def feature_spec() -> dict:
    """What the Trainer and the evaluation signature parse."""
    import tensorflow as tf

    return {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
