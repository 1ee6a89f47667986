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


def read(path):
    """The Schema proto in a .pbtxt file."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def describe(schema) -> list:
    """[(feature, type, presence, domain)] in words, one per feature."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    domains = {d.name: list(d.value) for d in schema.string_domain}
    rows = []
    for feature in schema.feature:
        kind = schema_pb2.FeatureType.Name(feature.type)
        presence = f"required ({feature.presence.min_fraction:g} of examples)" if feature.presence.min_fraction else "optional"
        domain = ""
        if feature.HasField("int_domain"):
            domain = f"{feature.int_domain.min}..{feature.int_domain.max}"
        elif feature.domain:
            domain = "one of " + ", ".join(domains.get(feature.domain, []))
        elif feature.HasField("image_domain"):
            domain = f"image, at most {feature.image_domain.max_image_byte_size:,} bytes"
        rows.append((feature.name, kind, presence, domain))
    return rows
