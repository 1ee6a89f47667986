"""TFX Trainer entry point: run_fn trains the architecture its config names (models.ARCHITECTURES)
and exports it (SavedModel, and TFLite beside it).

custom_config (set by pipeline/pipeline.py): a TrainingConfig's fields, the
sorted class_names and the code_version.
"""
import dataclasses
import json
import os
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from happysad import contract
from happysad.components.trainer import image_decoding, models, serving_signatures, tflite_model, training_report
from happysad.components.trainer.models import common
from happysad.components.trainer.training_config import TrainingConfig


# Shuffling holds this many examples: bounded whatever the data size, and above
# the default run's 357 so its order (and model) is the same as ever.
SHUFFLE_BUFFER = 10_000
# A split whose decoded pixels fit in this is decoded once and kept (the default
# run's do): every later epoch runs at the plain-Keras floor. A larger one keeps
# its encoded bytes, a small fraction of the pixels, and decodes every epoch, so
# memory grows with the encoded data (benchmarks/RESULTS.md, Figures from code comments).
DECODED_CACHE_BYTES = 256 * 2**20
_DECODED_IMAGE_BYTES = contract.IMAGE_SIZE * contract.IMAGE_SIZE * image_decoding.CHANNELS * 4  # float32


def _dataset(file_patterns, batch_size, shuffle_seed=None, label_dtype=tf.float32, augment=False):
    """GZIP TFRecords of tf.Examples -> batches of (pixels, label), cached in
    memory as decoded pixels or encoded bytes by size (DECODED_CACHE_BYTES).
    Every epoch reshuffles and (with augment) draws new random variations,
    from keys seeded by shuffle_seed: the same every run."""
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"no TFRecord files match {file_patterns}")
    ds = tf.data.TFRecordDataset(files, compression_type="GZIP")
    ds = ds.map(lambda record: tf.io.parse_single_example(record, contract.feature_spec()),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda ex: (ex[contract.IMAGE_KEY], tf.cast(ex[contract.LABEL_KEY], label_dtype)))
    examples = int(tf.data.TFRecordDataset(files, compression_type="GZIP").reduce(0, lambda n, _: n + 1))
    if examples * _DECODED_IMAGE_BYTES <= DECODED_CACHE_BYTES:
        return batches(_decoded(ds).cache(), batch_size, shuffle_seed, augment)
    return batches(ds.cache(), batch_size, shuffle_seed, augment, decode=True)


def _decoded(ds):
    """(encoded image, label) -> (pixels, label), in parallel, in order."""
    return ds.map(lambda image, label: (image_decoding.decode_image(image), label),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def batches(ds, batch_size, shuffle_seed=None, augment=False, decode=False):
    """(image, label) pairs -> the batches training sees: reshuffled every
    epoch, decoded (decode: the images are encoded bytes; else pixels) and
    (with augment) varied by common.augment, both seeded by shuffle_seed.
    The transfer benchmark trains through this too."""
    if shuffle_seed is not None:
        ds = ds.shuffle(SHUFFLE_BUFFER, seed=shuffle_seed, reshuffle_each_iteration=True)
    if decode:
        ds = _decoded(ds)
    ds = ds.batch(batch_size)
    if augment:
        keys = tf.data.Dataset.random(seed=shuffle_seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, keys)).map(
            lambda batch, key: (common.augment(batch[0], key), batch[1]),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_NO_AUTOTUNING)


# tf.data's autotuning made many epochs wait before their first batch (the last
# epoch's iterator winding down). Without it AUTOTUNE falls back to fixed
# defaults, and the batches (so the trained weights) are the same
# (benchmarks/RESULTS.md, Figures from code comments).
_NO_AUTOTUNING = tf.data.Options()
_NO_AUTOTUNING.autotune.enabled = False


def build_model(training: TrainingConfig, num_classes: int) -> keras.Model:
    """The compiled model training.architecture names, at training's learning rate or the architecture's own."""
    architecture = models.get(training.architecture)
    return architecture.build_model(num_classes, training.learning_rate or architecture.DEFAULT_LEARNING_RATE)


WARMUP_REQUESTS = 4  # real eval faces replayed by TF Serving at load


def _warmup_images(file_patterns) -> list:
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(WARMUP_REQUESTS)
    return [tf.io.parse_single_example(r, contract.feature_spec())[contract.IMAGE_KEY].numpy() for r in records]


def _eval_sample(evaluation) -> tuple:
    """(pixels, labels) of the first tflite_model.MAX_EVAL_EXAMPLES eval examples, as numpy."""
    pixels, labels, count = [], [], 0
    for batch_pixels, batch_labels in evaluation:
        pixels.append(batch_pixels.numpy())
        labels.append(batch_labels.numpy().reshape(-1))
        count += len(pixels[-1])
        if count >= tflite_model.MAX_EVAL_EXAMPLES:
            break
    limit = tflite_model.MAX_EVAL_EXAMPLES
    return np.concatenate(pixels)[:limit], np.concatenate(labels)[:limit]


@dataclasses.dataclass
class Trained:
    model: keras.Model
    history: dict  # Keras' per-epoch metrics
    stopped_epoch: Optional[int]  # 1-based epoch that reached the threshold; None: not reached
    epoch_seconds: list
    evaluation: tf.data.Dataset  # the eval split's batches, as validation saw them


def train(training: TrainingConfig, num_classes: int, train_files, eval_files, callbacks=()) -> Trained:
    """Seeds, builds training.architecture and fits it on train_files, validating
    on eval_files each epoch, until the threshold or training.epochs."""
    keras.utils.set_random_seed(training.seed)
    # Binary cross-entropy wants float labels, the sparse categorical loss ints.
    label_dtype = tf.float32 if num_classes == 2 else tf.int32
    train_batches = _dataset(train_files, training.batch_size, shuffle_seed=training.seed, label_dtype=label_dtype,
                             augment=training.augment)
    evaluation = _dataset(eval_files, training.batch_size, label_dtype=label_dtype)
    model = build_model(training, num_classes)
    stop = common.StopAtAccuracy(training.threshold)
    timer = training_report.EpochTimer()
    history = model.fit(train_batches, validation_data=evaluation, epochs=training.epochs,
                        callbacks=[stop, timer, *callbacks], verbose=2)
    return Trained(model, history.history, stop.stopped_epoch, timer.seconds, evaluation)


def run_fn(fn_args):
    """Trains on fn_args.train_files, validates on eval_files, exports to
    fn_args.serving_model_dir and leaves a report in fn_args.model_run_dir."""
    training = TrainingConfig.from_custom_config(fn_args.custom_config)
    class_names = list(fn_args.custom_config["class_names"])
    seed = training.seed
    trained = train(training, len(class_names), fn_args.train_files, fn_args.eval_files,
                    [keras.callbacks.TensorBoard(log_dir=os.path.join(fn_args.model_run_dir, "logs"))])
    model, evaluation = trained.model, trained.evaluation

    started = time.perf_counter()
    serving_signatures.export(model, class_names, fn_args.serving_model_dir,
                              warmup_images=_warmup_images(fn_args.eval_files))
    summary = training_report.summarise(trained.history, trained.epoch_seconds, training.threshold,
                                        trained.stopped_epoch, training.epochs)
    summary["export_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    summary["tflite"] = tflite_model.export(model, class_names, fn_args.serving_model_dir, *_eval_sample(evaluation))
    summary["tflite_seconds"] = round(time.perf_counter() - started, 2)
    summary["seed"] = seed
    summary["augment"] = training.augment
    summary["architecture"] = training.architecture
    summary["class_names"] = class_names
    tf.io.gfile.makedirs(fn_args.model_run_dir)
    with tf.io.gfile.GFile(os.path.join(fn_args.model_run_dir, contract.TRAINING_SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
    training_report.plot_curves(summary, os.path.join(fn_args.model_run_dir, contract.TRAINING_CURVES_FILE))
