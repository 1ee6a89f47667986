"""Reading an Examples artifact: one folder of GZIP TFRecord files per split
(`Split-<name>/`), as ExampleGen writes them. Shared by the components that
read examples and by `happysad inspect --html`."""
import os
from typing import Iterator, Optional


def split_records(examples_uri: str, split: str, limit: Optional[int] = None) -> Iterator[bytes]:
    """The serialized tf.Examples of one split (the first `limit` of them);
    none if the split is missing. Any filesystem TensorFlow reads (gs://...)."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    if not files:
        return iter(())
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return (records.take(limit) if limit is not None else records).as_numpy_iterator()


def span_of(artifact) -> int:
    """An Examples artifact's span (an ML Metadata Artifact proto). MLMD may
    hold it as a property or, as ImportExampleGen's output here, a custom
    property; 0 without one."""
    for values in (artifact.properties, artifact.custom_properties):
        if "span" in values:  # not values["span"]: a protobuf map would add the key
            return values["span"].int_value
    return 0
