"""The versions of one model that `happysad serve` holds, kept in step with its base path.

TF Serving's layout: <base path>/<version>/saved_model.pb, versions being
integers. Like TF Serving, the registry polls the base path, loads the
versions its version policy wants (by default the latest one), and unloads the
rest. A new version is loaded fully before it is swapped in, and requests
already running keep the version they resolved, so a push never fails a
request. A version that fails to load (e.g. still being copied) is retried on
the next poll while the previous one keeps serving (availability-preserving).
"""
from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import threading
from typing import Optional, Sequence

from happysad.components.saved_model_bundle import SavedModelBundle, error_summary

log = logging.getLogger(__name__)


class NotFound(LookupError):
    """No such model, version or label (TF Serving's NOT_FOUND)."""


@dataclasses.dataclass(frozen=True)
class VersionPolicy:
    """TF Serving's ServableVersionPolicy: latest N, all, or specific versions."""

    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple = ()

    def choose(self, available: Sequence[int]) -> list:
        ordered = sorted(available)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions:]


@dataclasses.dataclass
class LoadedVersion:
    version: int
    path: str
    bundle: SavedModelBundle  # loaded as TF Serving loads it: a session, signatures run by tensor name

    @property
    def signature_defs(self) -> dict:
        """name -> SignatureDef proto (what GetModelMetadata returns), init op left out."""
        return self.bundle.signature_defs


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    policy: VersionPolicy = VersionPolicy()
    labels: tuple = ()  # ((label, version), ...)


def read_model_config(path: str) -> list:
    """The models of a TF Serving model config file (ModelServerConfig text proto)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    with open(path) as f:
        try:
            config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
        except text_format.ParseError as e:
            raise ValueError(f"{path}: not a TF Serving model config: {e}") from e
    return models_from_config(config, os.path.dirname(os.path.abspath(path)))


def models_from_config(config, base_dir: str) -> list:
    """[ModelConfig] of a ModelServerConfig proto; relative base paths are taken from base_dir."""
    models = []
    for model in config.model_config_list.config:
        which = model.model_version_policy.WhichOneof("policy_choice")
        if which == "all":
            policy = VersionPolicy("all")
        elif which == "specific":
            policy = VersionPolicy("specific", versions=tuple(model.model_version_policy.specific.versions))
        else:
            policy = VersionPolicy("latest", num_versions=model.model_version_policy.latest.num_versions or 1)
        if not model.name or not model.base_path:
            raise ValueError(f"every model needs a name and a base_path; got {model.name!r}, {model.base_path!r}")
        base = model.base_path if os.path.isabs(model.base_path) else os.path.join(base_dir, model.base_path)
        models.append(ModelConfig(model.name, base, policy, tuple(sorted(model.version_labels.items()))))
    if len({m.name for m in models}) != len(models):
        raise ValueError(f"model names repeat: {[m.name for m in models]}")
    return models


def versions_on_disk(base_path: str) -> list:
    """The version numbers under a TF Serving base path that hold a SavedModel."""
    if not os.path.isdir(base_path):
        return []
    # isascii(): "²".isdigit() is True but int("²") fails; TF Serving takes only 0-9.
    return sorted(int(d) for d in os.listdir(base_path)
                  if d.isascii() and d.isdigit() and os.path.exists(os.path.join(base_path, d, "saved_model.pb")))


def _fingerprint(path: str) -> tuple:
    """(relative path, size, mtime) of every file of a version folder: changes
    while a copy is going on, so a failed version is retried only then."""
    found = []
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:
                continue
            found.append((os.path.relpath(full, path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(found))


def release_freed_memory() -> None:
    """Hands memory freed to glibc back to the OS (malloc_trim). glibc keeps
    what a thread frees in that thread's arena: an unloaded session, or the
    buffers of a large request served on one of many threads. Without this RSS
    climbs across pushes and bursts of requests."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class ModelRegistry:
    """Loaded versions of one model; poll() syncs them with the base path."""

    def __init__(self, config: ModelConfig):
        self.config = config
        self._versions: dict = {}  # version -> LoadedVersion; replaced, never mutated
        self._failures: dict = {}  # version -> load error text
        self._failed_files: dict = {}  # version -> its files when it failed (see _fingerprint)
        self._lock = threading.Lock()  # one poll at a time

    @property
    def name(self) -> str:
        return self.config.name

    def poll(self) -> bool:
        """Loads wanted versions not yet loaded and drops unwanted ones; True if
        anything changed.

        TF Serving's availability-preserving policy: a served version is
        unloaded only once every version the policy wants has loaded. A new
        version that fails to load (garbage, or still being copied) is retried
        on the next poll while the old one keeps serving."""
        with self._lock:
            on_disk = versions_on_disk(self.config.base_path)
            wanted = self.config.policy.choose(on_disk)
            current = self._versions
            loaded = dict(current)
            failed = False
            for version in wanted:
                if version in loaded:
                    continue
                path = os.path.join(self.config.base_path, str(version))
                files = _fingerprint(path)
                if version in self._failures and self._failed_files.get(version) == files:
                    continue  # unchanged since it failed: retried once its files change (a copy going on)
                try:
                    bundle = SavedModelBundle(path)
                    warmed = bundle.warm_up()  # before it serves, as TF Serving does
                    loaded[version] = LoadedVersion(version, path, bundle)
                    self._failures.pop(version, None)
                    log.info("loaded %s version %d from %s (%d warm-up requests)", self.name, version, path, warmed)
                except Exception as e:  # half-copied or broken: keep serving what we have
                    error = f"{type(e).__name__}: {error_summary(str(e))}"
                    if self._failures.get(version) != error:  # once per distinct error, not every poll
                        log.warning("could not load %s version %d (will retry; still serving %s): %s",
                                    self.name, version, sorted(loaded) or "nothing", error)
                    self._failures[version] = error
                    self._failed_files[version] = files
                    failed = True
            # A failed version that went away (or is no longer wanted) is forgotten.
            self._failures = {v: e for v, e in self._failures.items() if v in wanted}
            self._failed_files = {v: f for v, f in self._failed_files.items() if v in self._failures}
            if all(v in loaded for v in wanted):
                for version in list(loaded):
                    if version not in wanted:
                        del loaded[version]
                        log.info("unloaded %s version %d", self.name, version)
            if current.keys() - loaded.keys() or failed:
                release_freed_memory()
            if loaded.keys() == current.keys():
                return False
            self._versions = loaded  # one reference swap: readers see old or new, never half
            return True

    def versions(self) -> list:
        return sorted(self._versions)

    def resolve(self, version: Optional[int] = None, label: Optional[str] = None) -> LoadedVersion:
        """The version a request names (by number or label), or the latest."""
        versions = self._versions
        if label is not None:
            labels = dict(self.config.labels)
            if label not in labels:
                raise NotFound(f"Unrecognized servable version label: {label}")
            version = labels[label]
        if version is None:
            if not versions:
                raise NotFound(f"Servable not found for request: Latest({self.name})")
            return versions[max(versions)]
        if version not in versions:
            raise NotFound(f"Servable not found for request: Specific({self.name}, {version})")
        return versions[version]

    def status(self, version: Optional[int] = None, label: Optional[str] = None) -> list:
        """[(version, state, error)] as GetModelStatus reports them."""
        if version is not None or label is not None:
            loaded = self.resolve(version, label)
            return [(loaded.version, "AVAILABLE", "")]
        rows = [(v, "AVAILABLE", "") for v in sorted(self._versions, reverse=True)]
        rows += [(v, "LOADING", error) for v, error in sorted(self._failures.items()) if v not in self._versions]
        if not rows:
            raise NotFound(f"Could not find any versions of model {self.name}")
        return rows


class Models:
    """Every served model by name."""

    def __init__(self, configs: Sequence[ModelConfig]):
        self._registries = {c.name: ModelRegistry(c) for c in configs}

    def reconfigure(self, configs: Sequence[ModelConfig]) -> None:
        """Applies a new model list: new models are added, dropped ones go, and
        kept ones take their new policy, labels and base path (loaded versions
        stay until the next poll decides). Without a restart, as TF Serving's
        config reload."""
        if not configs:
            raise ValueError("the new config lists no model")
        registries = {}
        for config in configs:
            registry = self._registries.get(config.name) or ModelRegistry(config)
            registry.config = config
            registries[config.name] = registry
        dropped = set(self._registries) - set(registries)
        self._registries = registries  # one reference swap
        log.info("model config applied: %s%s", sorted(registries),
                 f" (dropped {sorted(dropped)})" if dropped else "")

    def get(self, name: str) -> ModelRegistry:
        if name not in self._registries:
            raise NotFound(f"Servable not found for request: Latest({name})")
        return self._registries[name]

    def poll(self) -> bool:
        return any([registry.poll() for registry in self._registries.values()])

    def __iter__(self):
        return iter(self._registries.values())
