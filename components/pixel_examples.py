"""PixelExamples: the eval split as a TFLite model reads it, for TFMA.

TFLite cannot decode images, so the .tflite model takes pixels, and TFMA's
tf_lite evaluation feeds it the feature named as its input. This component
writes each eval tf.Example again with the encoded image replaced by
`pixels` (float32, 150*150*3) from tflite_model.preprocess - the documented
preprocessing a phone runs - and every other feature (label, source, class
name) kept, so the TFLite model is evaluated and sliced as the SavedModel is.
"""
import os

import tensorflow as tf
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts

from happysad.components.examples_artifact import split_records
from happysad import contract
from happysad.components.trainer import tflite_model

SPLIT = "eval"


def to_pixels(serialized: bytes) -> bytes:
    """One serialized tf.Example with `image` -> the same with `pixels` instead."""
    example = tf.train.Example.FromString(serialized)
    feature = example.features.feature
    image = feature[contract.IMAGE_KEY].bytes_list.value[0]
    del feature[contract.IMAGE_KEY]
    feature[tflite_model.INPUT_NAME].float_list.value.extend(tflite_model.preprocess(image).ravel())
    return example.SerializeToString()


@component
def PixelExamples(
    examples: InputArtifact[standard_artifacts.Examples],
    pixel_examples: OutputArtifact[standard_artifacts.Examples],
) -> None:
    path = os.path.join(pixel_examples.uri, f"Split-{SPLIT}")
    tf.io.gfile.makedirs(path)
    with tf.io.TFRecordWriter(os.path.join(path, "data_tfrecord.gz"), options="GZIP") as writer:
        for record in split_records(examples.uri, SPLIT):
            writer.write(to_pixels(record))
    pixel_examples.split_names = artifact_utils.encode_split_names([SPLIT])
