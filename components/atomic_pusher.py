"""The Pusher's executor, with a push TF Serving sees whole or not at all.

TFX's Pusher copies the model file by file straight into
<base>/<version>/ (saved_model.pb last). When the copy fails half way (a
full disk: ENOSPC), that folder stays, without saved_model.pb, a version
TF Serving tries to load, and nothing ever removes it; each later failure
adds another. Here the model is copied into a hidden folder beside the
versions, `.<version>.<pid>.partial` (TF Serving loads only folders named by
a number), then renamed to <version> in one step; a failed copy is removed.
A partial left by a killed run (its process is gone) is removed by the next
push to the same base. The PushedModel artifact, its properties and the
blessing checks are TFX's own; the archive copy under the pipeline root
is made first, so a version appears only once everything else has worked.
"""
from __future__ import annotations

import os
import re
import time
from typing import Any, Dict, List

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

_PARTIAL = re.compile(r"^\.(\d+)\.(\d+)\.partial$")  # .<version>.<pid>.partial


def partial_path(serving_path: str, pid: int = 0) -> str:
    """The hidden folder a push to serving_path (<base>/<version>) is written in first."""
    base, version = os.path.split(serving_path.rstrip("/"))
    return os.path.join(base, f".{version}.{pid or os.getpid()}.partial")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_partials(base_directory: str) -> list:
    """Removes the partial pushes under base_directory whose process is gone
    (a run killed mid-push); returns their paths. Another live push's is kept."""
    if not fileio.isdir(base_directory):
        return []
    removed = []
    for name in fileio.listdir(base_directory):
        match = _PARTIAL.match(name.rstrip("/"))
        if match and int(match.group(2)) != os.getpid() and not _alive(int(match.group(2))):
            path = os.path.join(base_directory, name.rstrip("/"))
            fileio.rmtree(path)
            removed.append(path)
    return removed


def push_atomically(model_path: str, serving_path: str) -> None:
    """Copies the SavedModel at model_path to serving_path (<base>/<version>),
    which appears complete in one rename or not at all: on any failure the
    partial copy is removed and the error raised."""
    base = os.path.dirname(serving_path.rstrip("/"))
    for stale in remove_stale_partials(base):
        logging.warning("Removed %s, a partial push left by a killed run.", stale)
    fileio.makedirs(base)
    partial = partial_path(serving_path)
    if fileio.exists(partial):
        fileio.rmtree(partial)
    try:
        io_utils.copy_dir(model_path, partial)
        if not fileio.exists(os.path.join(partial, "saved_model.pb")):
            raise FileNotFoundError(f"the model at {model_path} has no saved_model.pb: not pushed")
        fileio.rename(partial, serving_path, overwrite=False)
    except BaseException:
        if fileio.exists(partial):
            fileio.rmtree(partial)
        raise


class Executor(pusher_executor.Executor):
    """TFX's Pusher executor (filesystem destinations), pushing through push_atomically()."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]], output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"push destination {destination.WhichOneof('destination')}: only filesystem")
        versioning = destination.filesystem.versioning
        if versioning not in (pusher_pb2.Versioning.AUTO, pusher_pb2.Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(f"Invalid Versioning {versioning}")
        version = str(int(time.time()))
        serving_path = os.path.join(destination.filesystem.base_directory, version)

        # The archive copy under the pipeline root first (TFX removes this
        # execution's output folders if it fails), the version last.
        io_utils.copy_dir(model_path, model_push.uri)
        if fileio.exists(serving_path):
            logging.info("Destination directory %s already exists, skipping current push.", serving_path)
        else:
            push_atomically(model_path, serving_path)
            logging.info("Model written to serving path %s.", serving_path)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        logging.info("Model pushed to %s.", model_push.uri)
