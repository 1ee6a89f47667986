"""create_pipeline()'s arguments for one run, the same for every runner.

Writes the curated schema fitted to the class set, points the Trainer at the
installed run_fn and its code version, and sends blessed models to
<serving dir>/<model name>. Light: no TFX import, so a runner can key its
compiled-pipeline cache on these before building anything.
"""
from __future__ import annotations

from typing import Sequence

from happysad.pipeline import configs


def pipeline_arguments(*, pipeline_root: str, examples_dir: str, serving_dir: str, class_names: Sequence[str],
                       held_out_sources: Sequence[str] = (), presplit: bool = True,
                       training: configs.TrainingConfig = configs.TrainingConfig(),
                       **runner_specific) -> dict:
    """runner_specific: the rest of create_pipeline's keywords (gate,
    validation, metadata_connection_config, beam_pipeline_args, enable_cache,
    builtin_resolvers)."""
    from happysad.components import TRAINER_RUN_FN, trainer_code_version
    from happysad.pipeline import schema

    return dict(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=pipeline_root,
        examples_dir=examples_dir,
        schema_file=schema.write_for_classes(class_names, f"{pipeline_root.rstrip('/')}/schema"),
        trainer_run_fn=TRAINER_RUN_FN,
        trainer_code_version=trainer_code_version(),
        serving_model_dir=configs.model_base(serving_dir),
        class_names=list(class_names),
        presplit=presplit,
        held_out_sources=list(held_out_sources),
        training=training,
        **runner_specific,
    )
