"""Compiles the pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines, offline.

The same create_pipeline() as the local runner; this runner picks shared-storage
paths and TFX's KubeflowV2DagRunner, and writes the pipeline spec JSON. It does
not submit anything. Everything a component reads must be on storage every
worker sees (gs://... on Vertex): the TFRecords, the schema, the pipeline root
and the serving directory. The container image must hold this project (its
custom components and the Trainer's package, whose run_fn the Trainer
imports), e.g. one built FROM gcr.io/tfx-oss-public/tfx:1.16.0 with
`pip install .`.
"""
from __future__ import annotations

import json
from typing import Sequence

from happysad.pipeline import configs

DEFAULT_IMAGE = "gcr.io/tfx-oss-public/tfx:1.16.0"  # replace with an image that has happysad installed


def compile_spec(out_file: str, *, pipeline_root: str, examples_dir: str, serving_dir: str,
                 class_names: Sequence[str], held_out_sources: Sequence[str] = (),
                 image: str = DEFAULT_IMAGE, beam_args: Sequence[str] = (),
                 training: configs.TrainingConfig = configs.TrainingConfig()) -> dict:
    """Writes the KFP v2 pipeline job spec to out_file and returns it.
    examples_dir holds `happysad ingest --out` output (its train and eval files)."""
    import os

    from tfx import v1 as tfx

    from happysad.pipeline.arguments import pipeline_arguments
    from happysad.pipeline.pipeline import create_pipeline

    pipeline = create_pipeline(**pipeline_arguments(
        pipeline_root=pipeline_root,
        examples_dir=examples_dir,
        serving_dir=serving_dir,
        class_names=class_names,
        held_out_sources=held_out_sources,
        training=training,
        beam_pipeline_args=list(beam_args),  # e.g. --runner=DataflowRunner --project=... --region=...
        builtin_resolvers=True,  # the only resolver strategies the KFP v2 compiler accepts
    ))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image),
        output_dir=os.path.dirname(os.path.abspath(out_file)) if "://" not in out_file else os.path.dirname(out_file),
        output_filename=os.path.basename(out_file),
    )
    runner.run(pipeline, write_out=True)
    with open(out_file) as f:
        return json.load(f)
