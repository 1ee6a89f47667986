"""The data contract every layer shares (ingestion, the Trainer, the pipeline, serving): the tf.Example
features, and the exported model's evaluation signature the Evaluator calls.

It imports nothing of ours, so every folder may import it, and TensorFlow only
inside feature_spec: ingestion's worker processes import it.
"""
IMAGE_SIZE = 150  # every image is IMAGE_SIZE x IMAGE_SIZE RGB by the time the model sees it
BACKGROUND = (255, 255, 255)  # transparent pixels are composited onto white, everywhere
IMAGE_KEY = "image"  # PNG bytes
LABEL_KEY = "label"  # int64 class index, classes in alphabetical order
CLASS_NAME_KEY = "class_name"  # the class folder's name
FILENAME_KEY = "filename"  # path relative to the data folder (<source>/<path> when several)
SOURCE_KEY = "source"  # where the image came from: GENERATED_SOURCE, a vendor, a folder name
GENERATED_SOURCE = "generated"  # the generator's faces
VARIANTS_SOURCE = "variants"  # the held-out vendors' faces framed as people send them (the default run's gate)

# Ingestion's train/eval split: 1 of every HASH_BUCKETS files (by a hash of
# its source and name) goes to eval, the rest to train; held-out sources go
# to eval whole.
SPLITS = ("train", "eval")
# A data root of span-1/, span-2/, ... folders: data arriving over time (one span per run).
SPAN_PREFIX = "span-"
HASH_BUCKETS = 5
EVAL_BUCKETS = 1

SERVING_SIGNATURE = "serving_default"  # encoded image bytes -> the three outputs below
PROBABILITIES_OUTPUT = "probabilities"  # [N, classes] float32
CLASS_INDEX_OUTPUT = "class_index"  # [N] int32
CLASS_NAME_OUTPUT = "class_name"  # [N] string
CLASSIFY_SIGNATURE = "classify"  # serialized tf.Example (`inputs`) -> classes, scores
CLASSIFY_METHOD = "tensorflow/serving/classify"  # TF Serving checks it before a Classify call
# In <SavedModel>/assets.extra/: PredictionLogs TF Serving replays before a version serves.
WARMUP_FILE = "tf_serving_warmup_requests"
EVAL_SIGNATURE = "evaluation"  # serialized tf.Example -> EVAL_PREDICTION_KEY
EVAL_PREDICTION_KEY = "probability"  # P(class index 1) [N, 1]; for 3+ classes [N, classes]

# Files the components write beside their artefacts and `happysad inspect` reads.
TRAINING_SUMMARY_FILE = "training_summary.json"  # Trainer, in its model_run
TRAINING_CURVES_FILE = "training_curves.png"  # Trainer, in its model_run
IMAGE_SUMMARY_FILE = "image_summary.json"  # ImageValidator, per split
SERVING_CHECK_FILE = "serving_check.json"  # ServingCheck, in its blessing

# The decoding budget: pixels (width x height, as the headers declare them)
# decoded at once, summed over one request in the serving graph and the server,
# one file in ingestion, one image on the TFLite path. Checked from the headers before any pixel buffer is
# allocated: a 300 KB PNG can declare 10000x10000 pixels. A decoded pixel takes
# at most 4 bytes (RGBA uint8), and a GIF gives only its first frame.
MAX_DECODED_PIXELS = 40_000_000
# A decoded side longer than this is thinned to every k-th row or column while
# still uint8, so the float buffers and the antialiased resize that follow
# start from at most 4x the model's side, whatever the aspect ratio.
MAX_DECODE_SIDE = 4 * IMAGE_SIZE
# Framing: where an image's border is one colour (a chat background, a
# screenshot's margin, transparency composited onto white), the model sees the
# square around what differs from it, with a margin, not the whole canvas: a
# small or off-centre face fills the frame as in training. A pixel differs when
# a channel is more than FRAME_TOLERANCE levels from the border's median colour;
# the border is one colour when at most FRAME_BORDER_OFF of it differs. The
# margin is 1/FRAME_MARGIN_DIVISOR of the box's larger side, on every side.
FRAME_TOLERANCE = 32.0
FRAME_BORDER_OFF = 0.1
FRAME_MARGIN_DIVISOR = 12


def check_class_set(class_names) -> list:
    """The class set sorted (a class's label is its index in that order);
    ValueError unless it has two or more distinct names."""
    classes = sorted(class_names)
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"a class set needs at least two distinct names, got {', '.join(map(str, class_names))}")
    return classes


def feature_spec() -> dict:
    """What the Trainer and the evaluation signature parse."""
    import tensorflow as tf

    return {
        IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
        LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    }
