"""`happysad`: the one command in front of data generation, ingestion and runs.

Flags -> a small typed config -> create_pipeline() arguments. Heavy imports
(TensorFlow, TFX) happen inside the sub-commands that need them.
"""
from __future__ import annotations

import argparse
import atexit
import math
import os
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

from happysad import contract
from happysad.components.trainer import models
from happysad.pipeline import configs, local_runner, run_lock  # light: no TensorFlow at import

EXIT_FAILED = 1
EXIT_NOT_BLESSED = 3
EXIT_DATA_REJECTED = 4
DEFAULT_MODEL_BASE = configs.model_base(local_runner.DEFAULT_SERVING_DIR)  # where `happysad run` pushes


def _quiet_tensorflow() -> None:
    # Must be set before TensorFlow is imported; C++ INFO lines drown the status lines.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Google's client libraries (pulled in by TFX's GCP extras) warn about
    # Python 3.10 and old grpcio on import: a screenful on every command, about
    # versions TFX 1.16 pins. Only those, only FutureWarning.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\.")


def cmd_generate(args) -> int:
    from happysad.data import emoji_faces

    if args.family == "variants":  # the held-out vendors' faces as people send them (data/emoji_variants)
        from happysad.data import framing_variants, real_emoji_pack

        out = args.out or framing_variants.HELD_OUT_DIR
        count = framing_variants.build_held_out([real_emoji_pack.PACK_DIR / s for s in configs.HELD_OUT_SOURCES], out)
        print(f"wrote {count} framing variants of {', '.join(configs.HELD_OUT_SOURCES)} to {out}")
        return 0
    wide = args.family == "wide"  # each family's defaults: the committed set
    out = args.out or (emoji_faces.WIDE_DIR if wide else emoji_faces.DEFAULT_DIR)
    count = args.count if args.count is not None else (emoji_faces.WIDE_COUNT if wide else emoji_faces.DEFAULT_COUNT)
    seed = args.seed if args.seed is not None else (emoji_faces.WIDE_SEED if wide else emoji_faces.DEFAULT_SEED)
    try:
        emoji_faces.generate(out, count, seed, classes=args.classes, family=args.family)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {count} {args.family} faces ({count // len(args.classes)} per class: "
          f"{', '.join(args.classes)}) to {out}")
    return 0


def _ingest_error(e) -> None:
    if e.skipped:  # every other problem too, so one round of fixes is enough
        print(f"{len(e.skipped)} other file(s) could not be used:", file=sys.stderr)
        for row in e.skipped:
            print(f"  {row['file']:<40} {row['reason']}", file=sys.stderr)
    print(f"error: {e}", file=sys.stderr)


def cmd_ingest(args) -> int:
    _quiet_tensorflow()
    from happysad.data import ingest

    out = args.out / f"{contract.SPAN_PREFIX}{args.span}" if args.span else args.out
    try:
        result = local_runner.ingest_sources(args.data, args.held_out, out)
    except ingest.IngestError as e:
        _ingest_error(e)
        return EXIT_FAILED
    print(ingest.format_report(result))
    return 0


def _unwritable(folder: Path) -> str:
    """Why `folder` cannot hold the run's output ("" if it can), checked before
    any work so a bad path never costs a training run. Creates nothing: it
    writes a temporary file in the nearest folder that exists."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return "is a file, not a folder" if existing == folder else f"{existing} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            return ""
    except OSError as e:
        return f"cannot write there ({e.strerror or e})"


def _check_run_args(parser, args) -> None:
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1 (got {args.epochs})")
    if not 0 < args.threshold <= 1:
        parser.error(f"--threshold is an accuracy in (0, 1] (got {args.threshold})")
    rate = args.learning_rate  # None: the architecture's own
    if rate is not None and not (math.isfinite(rate) and rate > 0):  # float() takes "inf" and "nan"
        parser.error(f"--learning-rate must be positive and finite (got {args.learning_rate})")
    for flag, folder in (("--pipeline-root", args.pipeline_root), ("--serving-dir", args.serving_dir)):
        if folder is not None:
            problem = _unwritable(folder)
            if problem:
                parser.error(f"{flag} {folder}: {problem}; give a folder you can write to")
    for flag, folders in (("--data", args.data or []), ("--held-out", args.held_out)):
        for folder in folders:
            if not folder.is_dir():
                parser.error(f"{flag} {folder}: no such folder (give a folder with one sub-folder per class)")
    if args.tfrecords is not None:
        if args.data is not None or args.held_out:
            parser.error("give --data/--held-out (images to ingest) or --tfrecords (examples made elsewhere), "
                         "not both")
        if not sorted(args.tfrecords.glob("*.tfrecord.gz")):
            parser.error(f"--tfrecords {args.tfrecords}: no *.tfrecord.gz files there (GZIP TFRecords of "
                         f"tf.Examples with image, label, class_name and filename features)")
    if args.classes is not None:
        try:
            contract.check_class_set(args.classes)
        except ValueError:
            parser.error(f"--classes needs at least two distinct names, comma-separated (got {','.join(args.classes)})")


def cmd_run(args) -> int:
    _quiet_tensorflow()
    from happysad.data import ingest
    from happysad.pipeline import run_summary

    started = time.monotonic()
    config = local_runner.RunConfig(
        data=args.data, held_out=args.held_out, tfrecords=args.tfrecords, classes=args.classes, runner=args.runner,
        training=configs.TrainingConfig(epochs=args.epochs, threshold=args.threshold, seed=args.seed,
                                        architecture=args.arch, learning_rate=args.learning_rate,
                                        augment=args.augment),
        pipeline_root=args.pipeline_root, serving_dir=args.serving_dir, beam_args=args.beam_arg,
        enable_cache=not args.no_cache, span_window=args.span_window)
    try:
        summary = local_runner.run(config)
    except run_lock.RootBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except ingest.IngestError as e:
        _ingest_error(e)
        return EXIT_FAILED
    except local_runner.DataRejected as e:
        if e.summary is not None:
            print(run_summary.format_summary(e.summary))
        print(f"REJECTED: the data failed validation (above), so nothing was trained or pushed.\n"
              f"Fix the files named, or the class set (--classes), and run again. Log: {e.log_path}",
              file=sys.stderr)
        return EXIT_DATA_REJECTED
    except local_runner.PipelineFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(run_summary.format_summary(summary))
    print(f"log: {summary.log_path}; total {time.monotonic() - started:.1f}s")
    servable = summary.serving_check is None or summary.serving_check["blessed"]
    return 0 if summary.pushed_dir or (summary.blessed and servable) else EXIT_NOT_BLESSED


def _read_recorded(read, args):
    """read(metadata path, pipeline name, run id) for --pipeline-root and --run;
    None after saying why there is nothing to read."""
    try:
        return read(str(local_runner.make_paths(args.pipeline_root).metadata_path), configs.PIPELINE_NAME, args.run)
    except LookupError as e:
        print(f"error: {e}", file=sys.stderr)
        return None


def cmd_inspect(args) -> int:
    _quiet_tensorflow()
    from happysad.pipeline import run_inspection, run_record

    inspection = _read_recorded(run_record.inspect_run, args)
    if inspection is None:
        return EXIT_FAILED
    print(run_inspection.format_inspection(inspection))
    if args.html:
        from happysad.pipeline import html_report

        # Only the HTML report shows sample images: read them for it alone.
        inspection.samples = run_record.read_samples(inspection.examples_uri, html_report.SAMPLES_PER_CLASS)
        html_report.write(inspection, args.html)
        print(f"HTML report: {args.html.resolve()}")
    return 0


def cmd_schema(args) -> int:
    _quiet_tensorflow()
    from happysad.pipeline import run_record, schema

    summary = _read_recorded(run_record.read_run, args)
    if summary is None:
        return EXIT_FAILED
    inferred = run_record.inferred_schema_path(summary)
    if inferred is None:
        print(f"error: run {summary.run_id} has no SchemaGen output (it ran before SchemaGen was in the pipeline, "
              f"or stopped before it); run the pipeline again", file=sys.stderr)
        return EXIT_FAILED
    if not args.promote:
        print(f"SchemaGen's inference ({inferred}) against the curated schema ({args.schema_file}):")
        print("\n".join(schema.format_diff(schema.diff(schema.read(args.schema_file), schema.read(inferred)))))
        print("adopt an inferred feature with: happysad schema --promote FEATURE (then review the file's diff)")
        return 0
    try:
        changes = schema.promote(inferred, args.promote, args.schema_file, origin=f" of run {summary.run_id}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {args.schema_file}:")
    print("\n".join(f"  {line}" for line in changes))
    print("review it (git diff) before the next run: the gate validates every run against this file")
    return 0


def cmd_serve(args) -> int:
    _quiet_tensorflow()
    # oneDNN's CPU allocator keeps every large buffer it has handed out (a hostile
    # request's large decode stayed held after its answer); the system allocator
    # gives it back. Before TensorFlow is imported.
    os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
    from happysad.serving import model_registry, server
    from happysad.serving.server_config import ServerConfig

    if args.model_config_file:
        try:
            models = model_registry.read_model_config(str(args.model_config_file))
        except (OSError, ValueError) as e:
            print(f"error: --model-config-file: {e}", file=sys.stderr)
            return 2
    else:
        models = [model_registry.ModelConfig(args.model_name, str(args.model_base_path.resolve()))]
    server.run(ServerConfig(models=models, host=args.host, rest_port=args.rest_port,
                            grpc_port=args.grpc_port, poll_seconds=args.poll_seconds,
                            max_request_bytes=args.max_request_bytes, max_batch_size=args.max_batch_size,
                            idle_timeout_seconds=args.idle_timeout_seconds,
                            body_timeout_seconds=args.body_timeout_seconds,
                            model_config_file=str(args.model_config_file) if args.model_config_file else None,
                            config_poll_seconds=args.model_config_file_poll_seconds))
    return 0


def _image_files(paths, refused):
    """(path, bytes) for each file that can be read as an image file, read as
    it is needed, each with ingestion's bound (ingest.read_image_file: at most
    MAX_FILE_BYTES, no device, FIFO or folder); refused(path, why) for the rest."""
    from happysad.data import ingest

    for path in paths:
        try:
            data = ingest.read_image_file(path)
        except ingest.UnreadableFile as e:
            refused(path, str(e))
            continue
        except OSError as e:
            refused(path, f"cannot read it ({e.strerror or e})")
            continue
        if not data:
            refused(path, "the file is empty")
            continue
        yield path, data


def cmd_predict(args) -> int:
    _quiet_tensorflow()
    from happysad.serving import client

    if args.tflite and args.server:
        print("error: --tflite runs the TFLite model in this process; it cannot go with --server", file=sys.stderr)
        return 2
    failed = 0

    def refused(path, why):
        nonlocal failed
        print(f"{path}\terror: {why}", file=sys.stderr)
        failed += 1

    # A batch at a time: the files are read as they are sent (in process, run)
    # and dropped after, so memory is bounded by a batch, not by the file count;
    # the model is loaded at the first readable file.
    predict = None
    max_count, max_bytes = client.batch_limits(args.server)
    try:
        for batch in client.batches(_image_files(args.images, refused), max_count, max_bytes,
                                    size=lambda item: item[1]):
            if predict is None:
                model_dir = "" if args.server else str(args.model_dir or client.latest_version_dir(
                    str(DEFAULT_MODEL_BASE)))
                predict = client.predictor(server=args.server, model=args.model, model_dir=model_dir,
                                           tflite=args.tflite)
            for (path, _), (name, value) in zip(batch, predict([data for _, data in batch])):
                if name is None:
                    refused(path, f"too large to send to the server ({value})" if isinstance(
                        value, client.RequestTooLarge) else f"not an image the model can read ({value})")
                else:
                    print(f"{path}\t{name}\t{value:.4f}", flush=True)
    except (FileNotFoundError, RuntimeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if failed else 0


def cmd_explain(args) -> int:
    _quiet_tensorflow()
    from happysad.data import ingest
    from happysad.serving import client, explain

    import tensorflow as tf

    from happysad.components.saved_model_bundle import error_summary

    try:
        image = ingest.read_image_file(args.image)  # bounded, as predict reads
    except ingest.UnreadableFile as e:
        print(f"error: {args.image}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as e:
        print(f"error: {args.image}: cannot read it ({e.strerror or e})", file=sys.stderr)
        return EXIT_FAILED
    try:
        model_dir = str(args.model_dir or client.latest_version_dir(str(DEFAULT_MODEL_BASE)))
        explanation = explain.explain(model_dir, image)
    except (FileNotFoundError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as e:  # a model of an architecture this version does not register
        print(f"error: {model_dir}: {e}", file=sys.stderr)
        return EXIT_FAILED
    except tf.errors.OpError as e:
        print(f"error: {args.image}: not an image the model can read ({error_summary(e.message)})",
              file=sys.stderr)
        return EXIT_FAILED
    out = args.out or Path(f"explain-{args.image.stem}.png")
    explain.plot(explanation, str(out), title=f"{args.image.name}: {explanation.class_name} "
                                              f"({explanation.probability:.1%})")
    print(f"{args.image}\t{explanation.class_name}\t{explanation.probability:.4f}\n"
          f"wrote {out}: the image, where the model looks for {explanation.class_name} (saliency and "
          f"Grad-CAM maps), and each conv layer's strongest activations")
    return 0


def cmd_compile(args) -> int:
    _quiet_tensorflow()
    from happysad.pipeline import kubeflow_v2_runner, progress

    classes = args.classes or list(configs.DEFAULT_CLASSES)
    log = args.out.with_suffix(".compile.log")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with progress.console_to_log(str(log)):  # TFX's compiler is chatty
        spec = kubeflow_v2_runner.compile_spec(
            str(args.out), pipeline_root=args.pipeline_root, examples_dir=args.examples_dir,
            serving_dir=args.serving_dir, class_names=classes, held_out_sources=args.held_out_source,
            image=args.image, beam_args=args.beam_arg)
    tasks = sorted(spec["pipelineSpec"]["root"]["dag"]["tasks"])
    print(f"wrote {args.out}: a Kubeflow Pipelines v2 / Vertex AI pipeline spec with {len(tasks)} tasks "
          f"({', '.join(tasks)}); image {args.image}; build log {log}")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value <= 0:  # float() accepts "inf" and "nan"
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, got {text}")
    return value


def _class_list(text: str) -> list:
    return [c.strip() for c in text.split(",") if c.strip()]


def _add_data_flags(parser) -> None:
    parser.add_argument("--data", type=Path, action="append", default=None, metavar="DIR",
                        help="class-per-folder image folder, repeatable: the first one's sub-folders are the "
                        "class set, each folder is a `source` (default: the generated faces in data/emoji_faces "
                        "and data/emoji_faces_wide plus the real-emoji sets in data/real_emoji, Noto and EmojiOne "
                        "held out)")
    parser.add_argument("--held-out", type=Path, action="append", default=[], metavar="DIR",
                        help="class-per-folder images the model never trains on, repeatable: all go to eval, "
                        "and the gate needs each folder's accuracy to reach its floor")


def add_generate_parser(sub) -> None:
    from happysad.data.emoji_faces import CLASS_NAMES, DEFAULT_COUNT, DEFAULT_DIR, DEFAULT_SEED, EXPRESSIONS, FAMILIES

    gen = sub.add_parser("generate", help="generate the synthetic emoji faces")
    gen.add_argument("--family", choices=sorted(FAMILIES) + ["variants"], default="classic",
                     help="classic: the seed's faces; wide: every style of the vendors' art; variants: the held-out "
                     "vendors' faces framed as people send them, the gate's (default: %(default)s)")
    gen.add_argument("--out", type=Path, default=None,
                     help=f"folder to write (default: {DEFAULT_DIR}, or data/emoji_faces_wide for wide)")
    gen.add_argument("--count", type=int, default=None,
                     help=f"total faces, a multiple of the class count (default: {DEFAULT_COUNT}, 200 for wide)")
    gen.add_argument("--classes", type=_class_list, default=list(CLASS_NAMES), metavar="A,B,...",
                     help=f"expressions to draw, from {','.join(EXPRESSIONS)} (default: happy,sad)")
    gen.add_argument("--seed", type=int, default=None,
                     help=f"random seed (default: {DEFAULT_SEED}, or the wide set's)")
    gen.set_defaults(func=cmd_generate)


def add_ingest_parser(sub) -> None:
    ing = sub.add_parser("ingest", help="turn class-per-folder image trees into train/eval TFRecords")
    _add_data_flags(ing)
    ing.add_argument("--out", type=Path, required=True,
                     help="folder for train.tfrecord.gz, eval.tfrecord.gz and the report")
    ing.add_argument("--span", type=_positive_int, default=None, metavar="N",
                     help="write into OUT/span-N/ instead: new data arriving as span N "
                     "(`happysad run --tfrecords OUT` then takes the newest span)")
    ing.set_defaults(func=cmd_ingest)


def add_run_parser(sub) -> None:
    defaults = configs.TrainingConfig()
    run = sub.add_parser("run", help="ingest the images and run the TFX pipeline")
    _add_data_flags(run)
    run.add_argument("--tfrecords", type=Path, default=None, metavar="DIR",
                     help="skip ingestion: run on the *.tfrecord.gz tf.Examples in DIR")
    run.add_argument("--classes", type=_class_list, default=None,
                     metavar="A,B,...", help="the class set; anything else is an anomaly "
                     "(default: the --data sub-folders, or happy,sad for --tfrecords)")
    run.add_argument("--runner", choices=local_runner.RUNNERS, default="beam",
                     help="TFX orchestrator: BeamDagRunner or LocalDagRunner (default: %(default)s)")
    run.add_argument("--epochs", type=int, default=defaults.epochs, help="at most this many epochs (default: %(default)s)")
    run.add_argument("--threshold", type=float, default=defaults.threshold,
                     help="stop when training accuracy reaches this (default: %(default)s)")
    run.add_argument("--seed", type=int, default=defaults.seed, help="training seed (default: %(default)s)")
    architectures = "; ".join(f"{name}, {module.DESCRIPTION}" for name, module in models.ARCHITECTURES.items())
    run.add_argument("--arch", choices=list(models.ARCHITECTURES), default=defaults.architecture,
                     help="the model (default: %(default)s; components/README.md compares them): "
                     + architectures.replace("%", "%%"))
    rates = ", ".join(f"{module.DEFAULT_LEARNING_RATE:g} {name}" for name, module in models.ARCHITECTURES.items())
    run.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                     help=f"Adam learning rate (default: the architecture's, {rates})")
    run.add_argument("--augment", action=argparse.BooleanOptionalAction, default=defaults.augment,
                     help="random flips/rotation/zoom/contrast on the training split (default: on; see the "
                     "README's transfer table)")
    run.add_argument("--pipeline-root", type=Path, default=None,
                     help="artefacts, ML Metadata and logs (default: ./pipeline_output)")
    run.add_argument("--serving-dir", type=Path, default=None,
                     help="blessed models go to DIR/happysad/<version>/ (default: ./serving_model)")
    run.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                     help="a Beam pipeline option, repeatable, e.g. --beam-arg=--direct_num_workers=2")
    run.add_argument("--no-cache", action="store_true", help="re-run every component")
    run.add_argument("--span-window", type=_positive_int, default=local_runner.RunConfig.span_window, metavar="K",
                     help="with a span root (--data or --tfrecords holding span-1/, span-2/, ...): train on the "
                     "latest K spans that passed validation (default: %(default)s)")
    run.set_defaults(func=cmd_run)


def add_inspect_parser(sub) -> None:
    insp = sub.add_parser("inspect", help="show a run's statistics, schema, anomalies, model and lineage")
    _add_recorded_run_flags(insp)
    insp.add_argument("--html", type=Path, default=None, metavar="PATH", help="also write a one-file HTML report")
    insp.set_defaults(func=cmd_inspect)


def _add_recorded_run_flags(parser) -> None:
    parser.add_argument("--pipeline-root", type=Path, default=None,
                        help="the run's pipeline root (default: ./pipeline_output)")
    parser.add_argument("--run", default=None, metavar="RUN_ID", help="a run id as `happysad run` prints it "
                        "(default: the latest run)")


def add_schema_parser(sub) -> None:
    from happysad.pipeline.schema import CURATED_SCHEMA

    sch = sub.add_parser("schema", help="compare SchemaGen's inferred schema with the curated one; promote "
                         "a feature on purpose")
    _add_recorded_run_flags(sch)
    sch.add_argument("--promote", action="append", default=[], metavar="FEATURE",
                     help="write SchemaGen's definition of FEATURE into the curated schema, repeatable")
    sch.add_argument("--schema-file", type=Path, default=CURATED_SCHEMA,
                     help="the curated schema (default: %(default)s)")
    sch.set_defaults(func=cmd_schema)


def add_serve_parser(sub) -> None:
    from happysad.serving.server_config import ServerConfig as defaults  # light: no TensorFlow

    srv = sub.add_parser("serve", help="serve pushed models over TF Serving's REST and gRPC APIs "
                         "(a development stand-in for TF Serving)")
    srv.add_argument("--model-base-path", type=Path, default=DEFAULT_MODEL_BASE,
                     help="TF Serving base path: <path>/<version>/saved_model.pb (default: %(default)s)")
    srv.add_argument("--model-name", default=configs.MODEL_NAME, help="(default: %(default)s)")
    srv.add_argument("--model-config-file", type=Path, default=None,
                     help="a TF Serving models.config instead (version policy, labels)")
    srv.add_argument("--model-config-file-poll-seconds", type=float, default=defaults.config_poll_seconds,
                     help="re-read --model-config-file this often; 0 reads it once (default: %(default)s)")
    srv.add_argument("--host", default=defaults.host, help="address to bind (default: %(default)s)")
    srv.add_argument("--rest-port", type=int, default=defaults.rest_port,
                     help="0 picks a free port (default: %(default)s)")
    srv.add_argument("--grpc-port", type=int, default=defaults.grpc_port,
                     help="0 picks a free port (default: %(default)s)")
    srv.add_argument("--poll-seconds", type=float, default=defaults.poll_seconds,
                     help="how often to look for new versions (default: %(default)s)")
    srv.add_argument("--max-request-bytes", type=int, default=defaults.max_request_bytes,
                     help="larger request bodies are refused with 413 (default: %(default)s)")
    srv.add_argument("--max-batch-size", type=_positive_int, default=defaults.max_batch_size,
                     help="a request with more examples is refused with 400 (default: %(default)s)")
    srv.add_argument("--idle-timeout-seconds", type=_positive_float, default=defaults.idle_timeout_seconds,
                     help="idle connections are closed after this (default: %(default)s)")
    srv.add_argument("--body-timeout-seconds", type=_positive_float, default=defaults.body_timeout_seconds,
                     help="a request body must arrive within this, or 408 (default: %(default)s)")
    srv.set_defaults(func=cmd_serve)


def add_predict_parser(sub) -> None:
    from happysad.serving.server_config import ServerConfig as served  # light: no TensorFlow

    pred = sub.add_parser("predict", help="classify images: in-process, or through a REST/gRPC server")
    pred.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    pred.add_argument("--server", default="", metavar="URL",
                      help=f"http://HOST:{served.rest_port} (REST) or grpc://HOST:{served.grpc_port} (gRPC); "
                      "default: in-process")
    pred.add_argument("--model", default=configs.MODEL_NAME, help="model name on the server (default: %(default)s)")
    pred.add_argument("--model-dir", type=Path, default=None,
                      help="SavedModel for in-process use (default: the latest version in serving_model/happysad)")
    pred.add_argument("--tflite", action="store_true",
                      help="run the version's TFLite model instead, fed by the documented preprocessing "
                           "(components/trainer/tflite_model.py), as a phone would")
    pred.set_defaults(func=cmd_predict)


def add_explain_parser(sub) -> None:
    expl = sub.add_parser("explain", help="draw what the model looks at: Grad-CAM and conv activations")
    expl.add_argument("image", type=Path, metavar="IMAGE")
    expl.add_argument("--model-dir", type=Path, default=None,
                      help="a pushed SavedModel version (default: the latest in serving_model/happysad)")
    expl.add_argument("--out", type=Path, default=None, help="PNG to write (default: explain-<image name>.png)")
    expl.set_defaults(func=cmd_explain)


def add_compile_parser(sub) -> None:
    from happysad.pipeline.kubeflow_v2_runner import DEFAULT_IMAGE

    comp = sub.add_parser("compile", help="write the pipeline spec for another orchestrator (offline)")
    comp.add_argument("out", type=Path, metavar="OUT.json")
    comp.add_argument("--target", choices=["kubeflow-v2"], default="kubeflow-v2",
                      help="Kubeflow Pipelines v2 / Vertex AI Pipelines (default: %(default)s)")
    comp.add_argument("--pipeline-root", required=True, metavar="URI",
                      help="shared storage for artefacts, e.g. gs://BUCKET/happysad (the schema is "
                      "written there now)")
    comp.add_argument("--examples-dir", required=True, metavar="URI",
                      help="shared storage holding train.tfrecord.gz and eval.tfrecord.gz "
                      "(`happysad ingest --out` then copy)")
    comp.add_argument("--held-out-source", action="append", default=[], metavar="NAME",
                      help="a `source` in the examples the model never trained on (ingested with --held-out); "
                      "the gate needs its accuracy to reach its floor. Repeatable")
    comp.add_argument("--serving-dir", required=True, metavar="URI", help="where blessed models are pushed")
    comp.add_argument("--classes", type=_class_list, default=None, metavar="A,B,...",
                      help="the class set (default: happy,sad)")
    comp.add_argument("--image", default=DEFAULT_IMAGE,
                      help="container image with this project installed (default: %(default)s, which lacks it)")
    comp.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                      help="a Beam option for the components' Beam jobs, e.g. --beam-arg=--runner=DataflowRunner")
    comp.set_defaults(func=cmd_compile)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="happysad", description="Happy/sad emoji TFX pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)

    add_generate_parser(sub)
    add_ingest_parser(sub)
    add_run_parser(sub)
    add_inspect_parser(sub)
    add_schema_parser(sub)
    add_serve_parser(sub)
    add_predict_parser(sub)
    add_explain_parser(sub)
    add_compile_parser(sub)
    return parser


# Commands whose console output is their result: TensorFlow's start-up notices
# are filtered out (run logs them instead; serve and ingest stream to stderr).
QUIET_COMMANDS = ("inspect", "schema", "predict", "explain", "compile")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        _check_run_args(parser, args)
    if args.command in QUIET_COMMANDS:
        from happysad.pipeline import progress

        with progress.without_native_noise():
            return args.func(args)
    return args.func(args)


def run_as_program() -> None:
    """The `happysad` command: main(), then an exit without Python's module teardown.

    Tearing down TensorFlow's, Beam's and TFMA's modules takes seconds with
    nothing left to do (benchmarks/RESULTS.md, Figures from code comments): each
    command has closed its files and stopped its servers by then. So the
    process waits for its threads and runs its exit handlers (logs flushed,
    temporary folders removed), as Python's shutdown would, then ends. An
    exception still ends it the usual way."""
    code = main()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe (`happysad inspect | head`): Python's own exit status for it
        os._exit(120)
    os._exit(code or 0)


if __name__ == "__main__":
    run_as_program()
