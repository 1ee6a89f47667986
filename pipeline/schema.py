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

from happysad import contract

CURATED_SCHEMA = Path(__file__).resolve().parent / "schema.pbtxt"


def for_classes(class_names: Sequence[str]):
    """The curated Schema proto with the label and class-name domains set to
    class_names (sorted: the label is the index in that order)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    classes = contract.check_class_set(class_names)
    schema = text_format.Parse(CURATED_SCHEMA.read_text(), schema_pb2.Schema())
    label = next(f for f in schema.feature if f.name == contract.LABEL_KEY)
    label.int_domain.min, label.int_domain.max = 0, len(classes) - 1
    domain = next(d for d in schema.string_domain if d.name == contract.CLASS_NAME_KEY)
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


def describe(schema, max_values: int = 0) -> list:
    """[(feature, type, presence, domain)] in words, one per feature; a string
    domain names its first max_values values and counts the rest (0: all)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    domains = {d.name: list(d.value) for d in schema.string_domain}
    rows = []
    for feature in schema.feature:
        kind = schema_pb2.FeatureType.Name(feature.type)
        presence = f"required ({feature.presence.min_fraction:g} of examples)" if feature.presence.min_fraction else "optional"
        domain = ""
        if feature.HasField("int_domain"):
            domain = f"{feature.int_domain.min}..{feature.int_domain.max}"
        elif feature.domain or feature.HasField("string_domain"):
            values = list(feature.string_domain.value) or domains.get(feature.domain, [])
            shown = values[:max_values] if max_values else values
            domain = "one of " + ", ".join(shown) + (f", ... ({len(values)} values)" if len(shown) < len(values) else "")
        elif feature.HasField("image_domain"):
            domain = f"image, at most {feature.image_domain.max_image_byte_size:,} bytes"
        rows.append((feature.name, kind, presence, domain))
    return rows


def diff(curated, inferred) -> list:
    """SchemaGen's inference against the curated schema, feature by feature:
    [(feature, curated, inferred, verdict)], the two in words ("" where the
    feature is missing), verdict "same", "differs", "curated only" or
    "inferred only"."""
    def words(schema):
        return {name: ", ".join(x for x in (kind, presence, domain) if x)
                for name, kind, presence, domain in describe(schema, max_values=4)}

    ours, theirs = words(curated), words(inferred)
    rows = []
    for name in [*ours, *(n for n in theirs if n not in ours)]:
        a, b = ours.get(name, ""), theirs.get(name, "")
        verdict = ("curated only" if not b else "inferred only" if not a else "same" if a == b else "differs")
        rows.append((name, a, b, verdict))
    return rows


def format_diff(rows) -> list:
    """diff()'s rows as console lines: each feature's verdict, and both sides where they differ."""
    lines = []
    for name, curated, inferred, verdict in rows:
        lines.append(f"  {name:<11} {verdict}")
        if verdict != "same":
            lines += [f"    curated:  {curated or '-'}", f"    inferred: {inferred or '-'}"]
    return lines


def promote(inferred_path, names: Sequence[str], curated_path=CURATED_SCHEMA, origin: str = "") -> list:
    """Writes SchemaGen's definition of each named feature into the curated
    schema file, in place of the curated one (or added), with the string domain
    it names; everything else in the file, comments included, stays as it is.
    The file is replaced whole, and only with a schema that parses. Returns
    what changed, one line a feature; ValueError for a feature the inferred
    schema does not have."""
    import os

    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    inferred = read(inferred_path)
    by_name = {f.name: f for f in inferred.feature}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"SchemaGen inferred no feature {', '.join(missing)} (it has: {', '.join(by_name)})")
    curated_path = Path(curated_path)
    text = curated_path.read_text()
    changes = []
    for name in names:
        feature = by_name[name]
        block = _block("feature", feature, f"# Promoted from SchemaGen's inference{origin}: review it.")
        text, replaced = _replace_block(text, "feature", name, block)
        changes.append(f"{name}: {'replaced by' if replaced else 'added as'} SchemaGen's "
                       + ", ".join(x for x in describe(_only(inferred, feature))[0][1:] if x))
        if feature.domain:
            domain = next(d for d in inferred.string_domain if d.name == feature.domain)
            text, _ = _replace_block(text, "string_domain", domain.name, _block("string_domain", domain, ""))
    text_format.Parse(text, schema_pb2.Schema())  # never write a schema that does not parse
    partial = curated_path.with_name(f".{curated_path.name}.partial")
    partial.write_text(text)
    os.replace(partial, curated_path)
    return changes


def _only(schema, feature):
    from tensorflow_metadata.proto.v0 import schema_pb2

    one = schema_pb2.Schema()
    one.feature.add().CopyFrom(feature)
    one.string_domain.extend(d for d in schema.string_domain if d.name == feature.domain)
    return one


def _block(field: str, message, comment: str) -> str:
    from google.protobuf import text_format

    body = text_format.MessageToString(message, indent=2).rstrip("\n")
    return (comment + "\n" if comment else "") + f"{field} {{\n{body}\n}}\n"


def _replace_block(text: str, field: str, name: str, block: str):
    """text with the top-level `field { name: "<name>" ... }` block (and the
    comment lines right above it) replaced by block, or block appended; and
    whether one was replaced."""
    lines = text.splitlines(keepends=True)
    for start, line in enumerate(lines):
        if line.rstrip() == f"{field} {{" and start + 1 < len(lines) and lines[start + 1].strip() == f'name: "{name}"':
            end = next(i for i in range(start + 1, len(lines)) if lines[i].rstrip() == "}")
            first = start
            while first > 0 and lines[first - 1].startswith("#"):
                first -= 1
            return "".join(lines[:first]) + block + "".join(lines[end + 1:]), True
    return text.rstrip("\n") + "\n" + block, False
