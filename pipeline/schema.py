"""The curated schema (schema.pbtxt beside this file), fitted to a class set.

The committed file is the reviewed schema for the default classes; for another
class set only the two class domains change. The runner writes the result
under a content-addressed name, so ImportSchemaGen's cache (keyed on the path)
can never serve a stale schema.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from happysad.components.trainer import features

CURATED_SCHEMA = Path(__file__).resolve().parent / "schema.pbtxt"


def for_classes(class_names: Sequence[str]):
    """The curated Schema proto with the label and class-name domains set to
    class_names (sorted: the label is the index in that order)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    classes = features.check_class_set(class_names)
    schema = text_format.Parse(CURATED_SCHEMA.read_text(), schema_pb2.Schema())
    label = next(f for f in schema.feature if f.name == features.LABEL_KEY)
    label.int_domain.min, label.int_domain.max = 0, len(classes) - 1
    domain = next(d for d in schema.string_domain if d.name == features.CLASS_NAME_KEY)
    del domain.value[:]
    domain.value.extend(classes)
    return schema


def write_for_classes(class_names: Sequence[str], out_dir) -> str:
    """Writes for_classes(class_names) as out_dir/schema-<hash>.pbtxt; returns the path.
    out_dir may be local or any filesystem TensorFlow reads (gs://...)."""
    import tensorflow as tf
    from google.protobuf import text_format

    text = text_format.MessageToString(for_classes(class_names))
    out_dir = str(out_dir).rstrip("/")
    path = f"{out_dir}/schema-{hashlib.sha256(text.encode()).hexdigest()[:12]}.pbtxt"
    if not tf.io.gfile.exists(path):
        tf.io.gfile.makedirs(out_dir)
        tmp = path + ".tmp"
        with tf.io.gfile.GFile(tmp, "w") as f:
            f.write(text)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    return path
