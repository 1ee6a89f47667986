"""ImageValidator: checks what TFDV cannot see inside the encoded image bytes.

TFDV sees the image feature as bytes: presence, count and length, and (through
ImageDomain) whether the bytes start like a known image format. It does not
decode them, so a 64x64 or grayscale face, or bytes that are cut short, pass
ExampleValidator. This component decodes every image with Pillow and records,
per split, an Anomalies proto in ExampleValidator's layout (so the gate and
`happysad inspect` read both alike) and an image_summary.json of the formats,
sizes, colour modes and classes it saw.
"""

import collections
import io
import json
import os
from typing import Iterable, Sequence

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
# Not tfx.v1: its import loads Google Cloud's clients, a cost on every run
# (benchmarks/RESULTS.md, Figures from code comments).
from tfx.types import standard_artifacts

from happysad.components.anomalies import ANOMALIES_FILE
from happysad.components.examples_artifact import split_records
from happysad import contract

# The model's input contract: what the serving and training graphs decode.
IMAGE_FORMATS = ("PNG", "JPEG")
# RGBA is composited onto white by the graph; anything else is a conversion
# ingestion makes and a TFRecord made elsewhere must make too.
COLOUR_MODES = ("RGB", "RGBA")
_EXAMPLES_NAMED = 3  # file names quoted per anomaly


def check_examples(serialized: Iterable[bytes], class_names: Sequence[str], height: int, width: int):
    """Decodes each serialized tf.Example's image and checks it.

    Returns (Anomalies proto, summary dict). The label must be the index of
    class_name in the sorted class set. A class_name outside the set is also
    the schema's anomaly, but ExampleValidator gives only a percentage; this
    names the files to fix."""
    import tensorflow as tf
    from PIL import Image
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    classes = sorted(class_names)
    summary = {"examples": 0, "formats": collections.Counter(), "sizes": collections.Counter(),
               "modes": collections.Counter(), "classes": collections.Counter()}
    problems = collections.defaultdict(list)  # (feature, short, expected, found) -> [file names]
    for record in serialized:
        example = tf.train.Example.FromString(record)
        feature = example.features.feature
        name = _first(feature[contract.FILENAME_KEY].bytes_list.value, b"?").decode(errors="replace")
        class_name = _first(feature[contract.CLASS_NAME_KEY].bytes_list.value, b"").decode(errors="replace")
        label = _first(feature[contract.LABEL_KEY].int64_list.value, None)
        summary["examples"] += 1
        summary["classes"][class_name] += 1
        if class_name not in classes:
            problems[(contract.CLASS_NAME_KEY, "Class outside the class set", "one of " + ", ".join(classes),
                      repr(class_name))].append(name)
        elif label is not None and label != classes.index(class_name):
            problems[(contract.LABEL_KEY, "Label does not match class name",
                      f"label {classes.index(class_name)} for class {class_name!r}", f"label {label}")].append(name)
        data = _first(feature[contract.IMAGE_KEY].bytes_list.value, None)
        if data is None:
            continue  # a missing image is the schema's presence anomaly
        try:
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                fmt, size, mode = image.format or "?", image.size, image.mode
                if size == (width, height):
                    # A full decode catches truncated and corrupt files. Only at
                    # the expected size: a wrong size is an anomaly anyway, and a
                    # huge one (a decompression bomb) is never allocated.
                    image.load()
        except Exception as e:  # Pillow raises many types for bad bytes
            problems[(contract.IMAGE_KEY, "Image does not decode", "a decodable PNG or JPEG",
                      type(e).__name__)].append(name)
            continue
        summary["formats"][fmt] += 1
        summary["sizes"][f"{size[0]}x{size[1]}"] += 1
        summary["modes"][mode] += 1
        if fmt not in IMAGE_FORMATS:
            problems[(contract.IMAGE_KEY, "Unsupported image format", " or ".join(IMAGE_FORMATS), fmt)].append(name)
        if size != (width, height):
            problems[(contract.IMAGE_KEY, "Wrong image size", f"{width}x{height}",
                      f"{size[0]}x{size[1]}")].append(name)
        if mode not in COLOUR_MODES:
            problems[(contract.IMAGE_KEY, "Wrong colour mode", " or ".join(COLOUR_MODES), mode)].append(name)

    anomalies = anomalies_pb2.Anomalies()
    total = summary["examples"]
    for (feature_name, short, expected, found), names in sorted(problems.items()):
        shown = ", ".join(names[:_EXAMPLES_NAMED]) + (", ..." if len(names) > _EXAMPLES_NAMED else "")
        description = f"expected {expected}, found {found} in {len(names)} of {total} examples ({shown})"
        info = anomalies.anomaly_info[feature_name]
        info.severity = anomalies_pb2.AnomalyInfo.ERROR
        info.path.step[:] = [feature_name]
        info.reason.add(type=anomalies_pb2.AnomalyInfo.CUSTOM_VALIDATION, short_description=short,
                        description=description)
        info.short_description = short if len(info.reason) == 1 else "Multiple errors"
        info.description = " ".join(f"{r.short_description}: {r.description}." for r in info.reason)
    return anomalies, {k: (dict(v) if isinstance(v, collections.Counter) else v) for k, v in summary.items()}


def _first(values, default):
    return values[0] if len(values) else default


@component
def ImageValidator(
    examples: InputArtifact[standard_artifacts.Examples],
    anomalies: OutputArtifact[standard_artifacts.ExampleAnomalies],
    class_names: Parameter[str],  # a JSON list
    height: Parameter[int],
    width: Parameter[int],
) -> None:
    import tensorflow as tf
    from tfx.types import artifact_utils

    splits = artifact_utils.decode_split_names(examples.split_names)
    anomalies.split_names = artifact_utils.encode_split_names(splits)
    for split in splits:
        found, summary = check_examples(split_records(examples.uri, split), json.loads(class_names), height, width)
        out_dir = os.path.join(anomalies.uri, f"Split-{split}")
        tf.io.gfile.makedirs(out_dir)
        with tf.io.gfile.GFile(os.path.join(out_dir, ANOMALIES_FILE), "wb") as f:
            f.write(found.SerializeToString())
        with tf.io.gfile.GFile(os.path.join(out_dir, contract.IMAGE_SUMMARY_FILE), "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
