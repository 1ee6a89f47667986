"""Runs the pipeline on this machine: picks the paths and the orchestrator.

Layout under the pipeline root (default ./pipeline_output):
  metadata.sqlite              ML Metadata of every run
  tfrecords/                   ingested images (train/eval.tfrecord.gz, ingest_report.json)
  schema/schema-<hash>.pbtxt   the curated schema fitted to the run's class set
  logs/run-<time>.log          the full log of each run
  ir/pipeline-<hash>.pb        the compiled pipeline, reused while its configuration and code stay
  <Component>/<output>/<id>/   the artefacts TFX writes
Blessed models are pushed to <serving dir>/<model name>/<version>/.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from happysad import contract
from happysad.pipeline import configs

DEFAULT_PIPELINE_ROOT = Path("pipeline_output")
DEFAULT_SERVING_DIR = Path("serving_model")
RUNNERS = ("beam", "local")


class PipelineFailed(Exception):
    """A component failed; `node` names it (None if it failed before any ran)."""

    def __init__(self, node: Optional[str], cause: BaseException, log_path: str, summary=None):
        # summary: the failed run as ML Metadata recorded it (None if unreadable)
        self.node, self.cause, self.log_path, self.summary = node, cause, log_path, summary
        where = f"component {node} failed" if node else "the pipeline failed before any component ran"
        super().__init__(f"{where}: {type(cause).__name__}: {cause}\n(full log: {log_path})")


class DataRejected(PipelineFailed):
    """The DataGate stopped the run: the data failed validation, so nothing was
    trained or pushed; `summary` lists the anomalies."""


class StoreDamaged(PipelineFailed):
    """The root's ML Metadata store is damaged (metadata.StoreDamaged): nothing
    ran. The message names the store and what to do."""

    def __init__(self, damaged: BaseException):
        self.node, self.cause, self.log_path, self.summary = None, damaged, None, None
        Exception.__init__(self, str(damaged))


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One run, from data folders to a pushed model."""

    data: Optional[Sequence[Path]] = None  # class-per-folder trees; None: the default sources
    held_out: Sequence[Path] = ()  # trees the model never trains on; the gate reads them
    tfrecords: Optional[Path] = None  # tf.Examples made elsewhere, instead of data/held_out
    classes: Optional[Sequence[str]] = None  # default: the data's class folders (happy, sad for tfrecords)
    runner: str = "beam"
    training: configs.TrainingConfig = configs.TrainingConfig()
    pipeline_root: Optional[Path] = None
    serving_dir: Optional[Path] = None
    beam_args: Sequence[str] = ()
    enable_cache: bool = True
    # With a span root (span-1/, span-2/, ...): train on the latest this many spans that passed validation.
    span_window: int = 3


@dataclasses.dataclass(frozen=True)
class RunPaths:
    pipeline_root: Path
    serving_dir: Path

    @property
    def metadata_path(self) -> Path:
        return self.pipeline_root / "metadata.sqlite"

    @property
    def examples_dir(self) -> Path:
        return self.pipeline_root / "tfrecords"

    @property
    def schema_dir(self) -> Path:
        return self.pipeline_root / "schema"

    @property
    def ir_dir(self) -> Path:
        return self.pipeline_root / "ir"

    @property
    def logs_dir(self) -> Path:
        return self.pipeline_root / "logs"

    @property
    def model_push_dir(self) -> Path:
        return configs.model_base(self.serving_dir)


def make_paths(pipeline_root: Optional[Path] = None, serving_dir: Optional[Path] = None) -> RunPaths:
    return RunPaths(Path(pipeline_root or DEFAULT_PIPELINE_ROOT).resolve(),
                    Path(serving_dir or DEFAULT_SERVING_DIR).resolve())


def run(config: RunConfig, say=print):
    """Runs the pipeline as `happysad run` does and returns its RunRecord:
    takes the root's lock (run_lock.RootBusy if another run has it), recovers
    what a killed run left, generates the default faces if they are missing,
    ingests the data (ingest.IngestError names the files at fault), picks the
    class set, and runs the pipeline (DataRejected or PipelineFailed). `say`
    gets the progress lines. A damaged ML Metadata store stops it first
    (StoreDamaged, a PipelineFailed): recovery opens the store before anything
    else does, and metadata.open_store() checks it."""
    from happysad.pipeline import metadata, run_lock

    paths = make_paths(config.pipeline_root, config.serving_dir)
    with run_lock.exclusive(paths.pipeline_root):
        try:
            for note in run_lock.recover(paths.pipeline_root, paths.metadata_path, paths.examples_dir):
                say(f"note: {note}")
            return _run_locked(config, paths, say)
        except metadata.StoreDamaged as e:
            raise StoreDamaged(e) from None


def _run_locked(config: RunConfig, paths: RunPaths, say):
    from happysad.data import ingest

    span_window = 0
    if config.tfrecords is not None:  # made elsewhere: validation alone vouches for them
        examples_dir = config.tfrecords.resolve()
        class_names = list(config.classes or configs.DEFAULT_CLASSES)
        spans = ingest.ingested_spans(examples_dir)  # `happysad ingest --span N --out DIR` output
        # `happysad ingest --out` output keeps its split and held-out sources.
        presplit = bool(spans) or ingest.is_ingested(examples_dir)
        held_out = ingest.held_out_sources(spans[max(spans)] if spans else examples_dir) if presplit else []
        if spans:
            span_window = config.span_window
            say(_spans_line(examples_dir, spans, span_window))
        else:
            say(f"examples: {examples_dir} (not ingested); class set {', '.join(sorted(class_names))}")
    else:
        if config.data is None:
            from happysad.data import emoji_faces

            if not emoji_faces.DEFAULT_DIR.is_dir():
                say(f"generating the default faces in {emoji_faces.DEFAULT_DIR}")
                emoji_faces.generate(emoji_faces.DEFAULT_DIR)
        spans = ingest.spans_in(config.data[0]) if config.data and len(config.data) == 1 else {}
        if spans:  # a span root: this run ingests its newest span, named after the root
            span_window, newest = config.span_window, max(spans)
            say(_spans_line(config.data[0], spans, span_window))
            ingested = ingest.ingest(
                [ingest.Source(spans[newest], config.data[0].resolve().name)]
                + [ingest.Source.of(d, held_out=True) for d in config.held_out],
                paths.examples_dir / f"{contract.SPAN_PREFIX}{newest}")
        else:
            ingested = ingest_sources(config.data, config.held_out, paths.examples_dir)
        say(ingest.format_report(ingested))
        examples_dir, class_names = paths.examples_dir, list(config.classes or ingested.class_names)
        presplit, held_out = True, ingested.held_out
    say(f"running pipeline {configs.PIPELINE_NAME} ({config.runner} orchestrator), root {paths.pipeline_root}")
    return run_pipeline(paths, class_names, runner=config.runner, examples_dir=examples_dir, presplit=presplit,
                        held_out_sources=held_out, training=config.training, beam_args=config.beam_args,
                        enable_cache=config.enable_cache, span_window=span_window)


def _spans_line(root: Path, spans: dict, window: int) -> str:
    return (f"spans in {root}: {', '.join(map(str, sorted(spans)))}; this run takes span {max(spans)} and trains "
            f"on the latest {window} accepted spans")


def ingest_sources(data: Optional[Sequence[Path]], held_out: Sequence[Path], out_dir: Path):
    """Ingests the data folders (default: the generated faces and the
    real-emoji pack, configs.HELD_OUT_SOURCES held out) and the held-out
    folders into out_dir; returns the IngestResult (ingest.IngestError: why not)."""
    from happysad.data import ingest

    sources = (ingest.default_sources(configs.HELD_OUT_SOURCES) if data is None
               else [ingest.Source.of(d) for d in data])
    return ingest.ingest(sources + [ingest.Source.of(d, held_out=True) for d in held_out], out_dir)


@contextlib.contextmanager
def _temp_folder_of_this_run():
    """Python's temp files go to a folder removed when the run ends. Given any Beam
    option, TFX's Beam executors build an sdist of TFX for remote workers in a
    temp folder of their own and never remove it: every run would leave one per
    component behind (their size: benchmarks/RESULTS.md, Figures from code comments)."""
    previous = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="happysad-run-") as folder:
        tempfile.tempdir = folder
        try:
            yield
        finally:
            tempfile.tempdir = previous


def run_pipeline(paths: RunPaths, class_names: Sequence[str], *, runner: str = "beam",
                 examples_dir: Optional[Path] = None, presplit: bool = True,
                 held_out_sources: Sequence[str] = (),
                 training: configs.TrainingConfig = configs.TrainingConfig(),
                 gate: configs.GateConfig = configs.GateConfig(),
                 validation: configs.ValidationConfig = configs.ValidationConfig(),
                 beam_args: Sequence[str] = (), enable_cache: bool = True, progress=None, span_window: int = 0):
    """Runs the pipeline over examples_dir (default paths.examples_dir, where
    ingestion writes; presplit: in ingestion's split files; span_window > 0:
    in its span-N/ folders, see create_pipeline) and returns its RunRecord.
    held_out_sources are gated on as unseen art.

    Raises PipelineFailed naming the failing component."""
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    from happysad.pipeline import metadata, run_record
    from happysad.pipeline import progress as progress_lib
    from happysad.pipeline.arguments import pipeline_arguments

    paths.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = str(paths.logs_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log")
    reporter = progress or progress_lib.ComponentProgress()
    progress_lib.capture_logs(log_path, reporter)

    pipeline_ir = compiled_pipeline(paths.ir_dir, pipeline_arguments(
        pipeline_root=str(paths.pipeline_root),
        examples_dir=str(examples_dir or paths.examples_dir),
        serving_dir=str(paths.serving_dir),
        class_names=class_names,
        presplit=presplit,
        held_out_sources=held_out_sources,
        training=training,
        gate=gate,
        validation=validation,
        metadata_connection_config=metadata.connection_config(str(paths.metadata_path)),
        # Only the user's Beam options: Beam's defaults are already one in-process
        # worker, which for a few hundred examples beats a multi-process start-up
        # (a TensorFlow import per worker). Given any option, TFX's Beam executors
        # each build an sdist of TFX for remote workers, time a local run does not need.
        beam_pipeline_args=list(beam_args),
        enable_cache=enable_cache,
        span_window=span_window,
    ))
    if runner == "local":
        from tfx.orchestration.local.local_dag_runner import LocalDagRunner
        dag_runner = LocalDagRunner()
    else:  # not exported by tfx.v1, but the supported Beam orchestrator of TFX 1.16
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
        dag_runner = BeamDagRunner()
    # This run's own id: the run context it adds to ML Metadata (not "the latest").
    before = metadata.run_ids(str(paths.metadata_path), configs.PIPELINE_NAME)
    try:
        with progress_lib.console_to_log(log_path) as console, _temp_folder_of_this_run():
            reporter.stream = console  # status lines only; the rest is in the log
            dag_runner.run_with_ir(pipeline_ir)
    except Exception as e:  # name the component that was running when it broke
        node = next(iter(reporter.running), None)
        try:
            failed_run = run_record.read_run(str(paths.metadata_path), configs.PIPELINE_NAME,
                                             _own_run(paths.metadata_path, before))
        except Exception:  # the store may not exist if the very first step broke
            failed_run = None
        raise (DataRejected if node == configs.DATA_GATE_ID else PipelineFailed)(node, e, log_path, failed_run) from e
    summary = run_record.read_run(str(paths.metadata_path), configs.PIPELINE_NAME,
                                  _own_run(paths.metadata_path, before))
    summary.log_path = log_path
    report_dir = Path(examples_dir or paths.examples_dir)
    if summary.spans:  # the newest span's ingestion report
        report_dir = report_dir / f"{contract.SPAN_PREFIX}{summary.spans['current']}"
    _write_model_card(summary, report_dir, gate)
    summary.model_card = run_record.model_card_file(summary.pushed_dir)  # written since it was read
    return summary


def _write_model_card(summary, examples_dir: Path, gate: configs.GateConfig) -> None:
    """The model card beside a model this run pushed (or one pushed before
    cards were written). The model is already pushed: a card that cannot be
    written is logged, not a failed run."""
    import logging

    from happysad.data import ingest
    from happysad.pipeline import model_card

    if not summary.pushed_dir:
        return
    pusher = summary.component("Pusher")
    missing = not all((Path(summary.pushed_dir) / name).exists() for name in model_card.CARD_FILES)
    if missing or (pusher is not None and pusher.state == "COMPLETE"):
        try:
            model_card.write(summary, examples_dir / ingest.REPORT_NAME, gate)
        except Exception:  # noqa: BLE001 - reported in the log; the push stands
            logging.exception("could not write the model card in %s", summary.pushed_dir)


def compiled_pipeline(ir_dir: Path, arguments: dict):
    """TFX's compiled form (IR) of create_pipeline(**arguments), kept in ir_dir
    and reused while the arguments, this package's code and TFX's version stay
    the same. Compiling builds every component, which imports every executor's
    module (TFMA, Google Cloud's clients) that a cached run never
    calls; the orchestrator runs the IR either way and records the run in MLMD."""
    import tfx
    from google.protobuf.message import DecodeError
    from tfx.proto.orchestration import pipeline_pb2

    key = hashlib.sha256("\n".join([tfx.__version__, package_code_version(), repr(sorted(arguments.items()))])
                         .encode()).hexdigest()[:16]
    path = ir_dir / f"pipeline-{key}.pb"
    compiled = pipeline_pb2.Pipeline()
    if path.is_file():
        try:
            compiled.ParseFromString(path.read_bytes())
            return compiled
        except DecodeError:  # damaged on disk: compile it again
            compiled = pipeline_pb2.Pipeline()
    from tfx.dsl.compiler import compiler

    from happysad.pipeline.pipeline import create_pipeline

    compiled = compiler.Compiler().compile(create_pipeline(**arguments))
    ir_dir.mkdir(parents=True, exist_ok=True)
    for stale in ir_dir.glob("pipeline-*.pb"):  # another configuration's: compiled again when needed
        stale.unlink()
    partial = path.with_suffix(".partial")
    partial.write_bytes(compiled.SerializeToString())
    os.replace(partial, path)  # never a half-written IR
    return compiled


def package_code_version() -> str:
    """A hash of every .py under happysad's pipeline/ and components/ folders and
    of the contract: the code that defines the compiled pipeline."""
    from happysad.components import CONTRACT_FILE, code_version

    root = Path(__file__).resolve().parents[1]
    return code_version([*root.joinpath("pipeline").glob("*.py"), *root.joinpath("components").rglob("*.py"),
                         CONTRACT_FILE], root)


def _own_run(metadata_path: Path, before: set) -> Optional[str]:
    """The run this process added (None: read the latest, as before any run)."""
    from happysad.pipeline import metadata

    new = sorted(metadata.run_ids(str(metadata_path), configs.PIPELINE_NAME) - before)
    return new[-1] if new else None
