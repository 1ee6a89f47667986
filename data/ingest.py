"""Class-per-folder image trees -> GZIP TFRecord files of tf.Examples, split train/eval.

The layout is the one Keras's `image_dataset_from_directory` reads: every
sub-folder of the data folder is a class, class indices follow the sorted
folder names, and images may sit in nested folders below their class folder.

Each image is normalised to what the model expects - RGB, 150x150 PNG:
transparent pixels are composited onto white (the same background the
serving graph uses), grayscale/palette/CMYK/16-bit images are converted, other
sizes are resized (stretched, as Keras does). Files that cannot be read are
reported and skipped, never fatal on their own. Output is written to
temporary files and renamed into place, so a crash leaves no half file; an
unchanged input is not re-written (ExampleGen caches on file times).

Several sources may be ingested together (the default run: the generated
faces plus the real-emoji pack). Every example records its source, and the
train/eval split is made here: 4:1 by a hash of the source and file name, so
an image keeps its split whatever else changes, except that a held-out
source goes to eval whole - real art the model never trains on, for the gate.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
import stat
import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from happysad import contract

IMAGE_SIZE = contract.IMAGE_SIZE
BACKGROUND = contract.BACKGROUND
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp")  # as Keras
# One file per split, read by ImportExampleGen as its input splits.
TFRECORD_NAMES = {split: f"{split}.tfrecord.gz" for split in contract.SPLITS}
REPORT_NAME = "ingest_report.json"
_OLD_TFRECORD_NAME = "images.tfrecord.gz"  # before splits were made here: removed when found
_FORMAT_VERSION = 2  # bump when normalisation changes, to invalidate old outputs
_PARALLEL_FROM = 256  # below this many files, worker start-up costs more than it saves
# The most bytes one image file may hold: ingestion and `happysad predict` /
# `explain` read no more than this (+1, to tell) of any file. An emoji is tens
# of KB; a PNG of contract.MAX_DECODED_PIXELS is rarely over this, and a request to
# `happysad serve` is bounded at 16 MiB anyway.
MAX_FILE_BYTES = 64 * 2**20


class IngestError(Exception):
    """The input cannot give a usable data set; the message says what to fix.
    `skipped` lists every other problem found before it had to stop."""

    def __init__(self, message: str, skipped: list | None = None):
        super().__init__(message)
        self.skipped = skipped or []


# Fewer images than this in a class cannot fill both splits (4:1 by file-name
# hash) reliably: the class would be missing from one split and read as skew.
MIN_IMAGES_PER_CLASS = 5


@dataclasses.dataclass(frozen=True)
class Source:
    """One class-per-folder tree and how its images are used."""

    folder: Path
    name: str  # every example's `source` feature: "generated", a vendor, a folder name
    held_out: bool = False  # all of it goes to eval: art the model never trains on

    @classmethod
    def of(cls, folder: Path | str, held_out: bool = False) -> "Source":
        """Named after the folder; the generator's committed sets are "generated" and "generated-wide"."""
        from happysad.data import emoji_faces

        folder = Path(folder)
        names = {emoji_faces.DEFAULT_DIR.resolve(): contract.GENERATED_SOURCE,
                 emoji_faces.WIDE_DIR.resolve(): contract.GENERATED_SOURCE + "-wide"}
        return cls(folder, names.get(folder.resolve(), folder.resolve().name), held_out)


@dataclasses.dataclass
class IngestResult:
    tfrecord_paths: dict[str, Path]  # split -> file
    report_path: Path
    class_names: list[str]
    counts: dict[str, int]
    skipped: list[dict]  # {"file", "reason"}
    changed: list[dict]  # {"file", "changes"}
    reused: bool  # True when an up-to-date output was kept as it was
    sources: dict[str, dict] = dataclasses.field(default_factory=dict)  # name -> {split: {class: n}}
    held_out: list[str] = dataclasses.field(default_factory=list)  # source names


def split_of(source: Source, rel: str) -> str:
    """eval for a held-out source; else 1 in 5 files by a hash of source and name."""
    if source.held_out:
        return "eval"
    bucket = int(hashlib.sha256(f"{source.name}/{rel}".encode()).hexdigest(), 16) % contract.HASH_BUCKETS
    return "eval" if bucket < contract.EVAL_BUCKETS else "train"


def default_sources(held_out: Sequence[str]) -> list[Source]:
    """What `happysad run` trains on without --data: the generated faces (the
    classic 80 and the wide family's 200), then every real-emoji set of the
    pack (data/real_emoji); the sets named in held_out go to eval whole, for
    the gate, and so does data/emoji_variants (the default held-out sets'
    faces small, off-centre, JPEG, dark, rotated: `happysad generate --family
    variants`). (The wide faces transfer to unseen vendors best; data/README,
    "which default".)"""
    from happysad.data import emoji_faces, framing_variants, real_emoji_pack

    unknown = set(held_out) - set(real_emoji_pack.SETS)
    if unknown:
        raise IngestError(f"no real-emoji set named {', '.join(sorted(unknown))}; the pack has "
                          + ", ".join(sorted(real_emoji_pack.SETS)))
    return [Source.of(folder) for folder in emoji_faces.TRAINING_DIRS] + [
        Source(real_emoji_pack.PACK_DIR / name, name, held_out=name in held_out)
        for name in sorted(real_emoji_pack.SETS)] + [
        Source(framing_variants.HELD_OUT_DIR, contract.VARIANTS_SOURCE, held_out=True)]


def held_out_sources(examples_dir: Path) -> list[str]:
    """The held-out sources ingestion recorded in examples_dir ([] when it has no report)."""
    report = _read_report(Path(examples_dir) / REPORT_NAME)
    return list(report.get("held_out", [])) if report else []


def spans_in(folder: Path) -> dict[int, Path]:
    """{N: folder/span-N} when the folder's sub-folders are spans (span-1/,
    span-2/, ...: data as it arrived, each a class-per-folder tree); {} when
    none is. IngestError when span folders are mixed with others."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    spans = {}
    for path in subfolders:
        number = path.name[len(contract.SPAN_PREFIX):]
        if path.name.startswith(contract.SPAN_PREFIX) and number.isdigit() and int(number) > 0:
            spans[int(number)] = path
    if spans and len(spans) != len(subfolders):
        others = sorted(p.name for p in subfolders if p not in spans.values())
        raise IngestError(f"{folder} mixes span folders ({', '.join(sorted(p.name for p in spans.values()))}) with "
                          f"other folders ({', '.join(others)}): a span root holds only {contract.SPAN_PREFIX}N/ "
                          "folders (N = 1, 2, ...), each a class-per-folder tree")
    return spans


def ingested_spans(examples_dir: Path) -> dict[int, Path]:
    """{N: examples_dir/span-N} for the span folders `happysad ingest --span N` wrote there."""
    try:
        spans = spans_in(examples_dir)
    except IngestError:
        return {}
    return {n: path for n, path in spans.items() if is_ingested(path)}


def is_ingested(examples_dir: Path) -> bool:
    """True when examples_dir holds ingestion's split files (not bare TFRecords made elsewhere)."""
    return all((Path(examples_dir) / name).is_file() for name in TFRECORD_NAMES.values())


class UnreadableFile(ValueError):
    """A file refused before or while reading it: not a regular file, or over
    MAX_FILE_BYTES. The message says why and what to do; the caller names the file."""


_NOT_REGULAR = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                (stat.S_ISSOCK, "a socket"))


def _check_regular(mode: int) -> None:
    for test, kind in _NOT_REGULAR:
        if test(mode):
            raise UnreadableFile(f"{kind}, not an image file: not read; give the path of an image file")
    if not stat.S_ISREG(mode):
        raise UnreadableFile("not a regular file: not read; give the path of an image file")


def _over_limit(size: str, limit: int) -> UnreadableFile:
    return UnreadableFile(f"{size} bytes, over the {limit:,}-byte limit for one image file "
                          "(MAX_FILE_BYTES in data/ingest.py): not read; shrink or re-encode it")


def read_image_file(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of one image file, with a bound: what ingestion and the CLI's
    predict and explain read.

    A folder, device, FIFO or socket is refused without blocking (it is
    stat-ed, not read; opened with O_NONBLOCK and fstat-ed again, in case it
    was swapped); a file over `limit` bytes (default MAX_FILE_BYTES) is refused
    after reading at most limit + 1 bytes, whatever its size claims. Raises
    UnreadableFile for those, OSError when it cannot be opened."""
    limit = MAX_FILE_BYTES if limit is None else limit
    _check_regular(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        _check_regular(info.st_mode)
        if info.st_size > limit:
            raise _over_limit(f"{info.st_size:,}", limit)
        chunks, remaining = [], limit + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        if remaining <= 0:  # it grew while being read
            raise _over_limit("more than " + f"{limit:,}", limit)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _inside(real: str, root_real: str) -> bool:
    """True when the resolved path `real` is root_real or below it."""
    return os.path.commonpath([real, root_real]) == root_real


def list_images(data_dir: Path) -> tuple[list[str], list[tuple[str, str]], list[dict]]:
    """Returns (class names, [(relative file, class name)], skipped entries)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise IngestError(f"data folder {data_dir} does not exist or is not a folder: "
                          "pass --data with a folder holding one sub-folder per class")
    try:
        entries = sorted(os.scandir(data_dir), key=lambda e: e.name)
    except PermissionError as e:
        raise IngestError(f"cannot read data folder {data_dir}: {e.strerror}") from e
    files, skipped = [], []
    # Every path followed must resolve inside the data folder: a link out of it
    # (to /, /proc/self, another user's files) is skipped, never listed or read.
    # Symlinked folders inside it are followed, but never twice and never back
    # up the tree: a link to the data root or to a class folder would list every
    # image again (under a second label, which would drop both copies).
    root_real = os.path.realpath(data_dir)

    def followed(path: str, rel: str) -> str | None:
        """The real path when `path` may be followed; None after recording why not."""
        real = os.path.realpath(path)
        if not _inside(real, root_real):
            reason = (f"symlink to {real}, outside the data folder {root_real}: not followed "
                      "(only links that stay inside the data folder are)")
        elif real == root_real:
            reason = "symlink loop: leads back to ./ (a parent of itself); skipped"
        else:
            return real
        skipped.append({"file": rel, "reason": reason})
        return None

    class_names, visited = [], {}
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            real = followed(entry.path, entry.name + "/")
            if real is not None:
                class_names.append(entry.name)
                visited.setdefault(real, f"class folder {entry.name}/")
        elif entry.is_file():
            skipped.append({"file": entry.name, "reason": "file outside any class folder"})

    def unreadable(error: OSError):  # os.walk would skip such a folder silently
        rel = os.path.relpath(error.filename, data_dir) if error.filename else "?"
        skipped.append({"file": rel + "/", "reason": f"unreadable folder ({error.strerror}): "
                        "fix its permissions to include its images"})

    def walkable(root: str, folder: str) -> bool:
        path = os.path.join(root, folder)
        rel = os.path.relpath(path, data_dir) + "/"
        real = followed(path, rel)
        if real is None:
            return False
        if real in visited:
            skipped.append({"file": rel, "reason": f"symlink to {visited[real]}, already included; skipped"})
            return False
        visited[real] = rel
        return True

    for name in class_names:
        for root, dirs, names in os.walk(data_dir / name, onerror=unreadable, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and walkable(root, d))
            for file_name in sorted(names):
                path = os.path.join(root, file_name)
                rel = os.path.relpath(path, data_dir)
                if file_name.startswith("."):
                    continue  # hidden files (.DS_Store, editor swap files) are not data
                if followed(path, rel) is None:
                    continue
                if not file_name.lower().endswith(IMAGE_EXTENSIONS):
                    skipped.append({"file": rel, "reason": "not an image file name "
                                    f"(expected one of {', '.join(IMAGE_EXTENSIONS)})"})
                    continue
                try:
                    os.stat(path)
                except OSError as e:  # a link loop, a dangling link
                    kind = "symlink loop" if os.path.islink(path) else "cannot read file"
                    skipped.append({"file": rel, "reason": f"{kind}: {e.strerror or e}; skipped"})
                    continue
                files.append((rel, name))
    return class_names, files, skipped


def find_duplicates(files: list[tuple[str, Path, str]]) -> dict[str, str]:
    """Files with the same bytes as another: {name: reason to skip it}, for
    files given as (name, path, class).

    Within one class the first copy (in the given order) is kept. The same image
    in two classes is a labelling error: every copy is skipped, since either
    label may be the wrong one."""
    by_digest: dict[str, list[tuple[str, str]]] = {}
    for name, path, class_name in files:
        try:
            digest = hashlib.sha256(read_image_file(path)).hexdigest()
        except (OSError, UnreadableFile):
            continue  # reported as unreadable when it is normalised
        by_digest.setdefault(digest, []).append((name, class_name))
    skip = {}
    for copies in by_digest.values():
        if len(copies) < 2:
            continue
        classes = sorted({class_name for _, class_name in copies})
        if len(classes) > 1:
            names = ", ".join(name for name, _ in copies)
            for name, _ in copies:
                skip[name] = (f"labelling error: the same image is in classes {' and '.join(classes)} "
                              f"({names}); keep it in one class only")
        else:
            for name, _ in copies[1:]:
                skip[name] = f"duplicate of {copies[0][0]} (same bytes)"
    return skip


def normalise_image(data: bytes) -> tuple[bytes, list[str]]:
    """Encoded image bytes -> (RGB 150x150 PNG bytes, list of changes made).

    Raises ValueError with a reason a person can act on."""
    if not data:
        raise ValueError("empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > contract.MAX_DECODED_PIXELS:
                raise ValueError(f"image is {width}x{height} = {width * height:,} pixels, over the "
                                 f"{contract.MAX_DECODED_PIXELS:,} pixel limit (a decompression bomb?)")
            image.load()
        except ValueError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise ValueError(f"refused: over the {contract.MAX_DECODED_PIXELS:,} pixel limit "
                             f"(a decompression bomb?): {e}") from e
        except Exception as e:  # PIL raises many types for broken files
            raise ValueError(f"not a readable image ({type(e).__name__}: {e})") from e
    changes = []
    if getattr(image, "n_frames", 1) > 1:
        changes.append("first frame of an animation kept")
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        scale = 255.0 / 65535.0 if mode.startswith("I") else 255.0
        image = Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8), "L")
        changes.append(f"{mode} pixels scaled to 8 bits")
        mode = "L"
    has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        if rgba.getextrema()[3][0] < 255:
            changes.append("transparent pixels composited onto white")
        canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        canvas.alpha_composite(rgba)
        image = canvas.convert("RGB")
    elif mode != "RGB":
        image = image.convert("RGB")
        changes.append(f"{mode} converted to RGB")
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        changes.append(f"resized to {IMAGE_SIZE}x{IMAGE_SIZE} (was {image.size[0]}x{image.size[1]})")
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), changes


def _normalise_file(path: str) -> tuple[bytes | None, list[str] | str]:
    """Worker: (png, changes) on success, (None, reason) on failure."""
    try:
        return normalise_image(read_image_file(path))
    except OSError as e:
        return None, f"cannot read file: {e.strerror or e}"
    except ValueError as e:
        return None, str(e)


@dataclasses.dataclass(frozen=True)
class _File:
    source: Source
    rel: str  # relative to source.folder
    class_name: str
    name: str  # the filename feature and the name reports use

    @property
    def path(self) -> Path:
        return self.source.folder / self.rel


def _fingerprint(files: list[_File]) -> str:
    """Changes when any listed file, its source or split, the class set or the normalisation changes."""
    digest = hashlib.sha256(f"v{_FORMAT_VERSION}/{IMAGE_SIZE}".encode())
    for f in files:
        stat = os.stat(f.path)
        digest.update(f"{f.name}\0{f.source.name}\0{f.source.held_out}\0{f.class_name}\0"
                      f"{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _atomic_write(paths: dict[str, Path], write) -> None:
    """Calls write({key: tmp_path}) and renames every tmp_path onto its path only if it returned."""
    tmps = {}
    try:
        for key, path in paths.items():
            fd, tmps[key] = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
        write(tmps)
        for key, path in paths.items():
            os.replace(tmps.pop(key), path)
    finally:
        for tmp in tmps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)


def _normalised(files: list[_File], workers: int | None, progress: bool):
    """Yields (file, png | None, changes | reason) in input order."""
    from tqdm import tqdm

    paths = [str(f.path) for f in files]
    bar = tqdm(total=len(paths), desc="ingest", unit="img", disable=not progress, leave=False)
    pool = None
    try:
        if len(paths) < _PARALLEL_FROM or workers == 1:
            results = map(_normalise_file, paths)
        else:
            # spawn: the caller may have TensorFlow's threads running; forking them is unsafe.
            pool = multiprocessing.get_context("spawn").Pool(workers or os.cpu_count())
            results = pool.imap(_normalise_file, paths, chunksize=32)
        for f, (png, info) in zip(files, results):
            bar.update()
            yield f, png, info
    finally:
        bar.close()
        if pool:  # also when the caller stopped early: no worker outlives the write
            pool.terminate()
            pool.join()


def _list_sources(sources: list[Source]) -> tuple[list[str], list[_File], list[dict]]:
    """(class set, files, skipped): the first source's class folders are the
    class set; the others contribute their folders of those classes only."""
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise IngestError(f"two sources share a name ({', '.join(names)}): each needs its own folder name")
    several = len(sources) > 1
    class_names, all_files, all_skipped = [], [], []
    for index, source in enumerate(sources):
        classes, files, skipped = list_images(source.folder)
        if index == 0:
            class_names = classes
        prefix = f"{source.name}/" if several else ""
        all_files += [_File(source, rel, c, prefix + rel) for rel, c in files if c in class_names]
        all_skipped += [dict(row, file=prefix + row["file"]) for row in skipped]
    return class_names, all_files, all_skipped


def ingest(data: Path | str | list[Source], out_dir: Path | str, workers: int | None = None,
           progress: bool = True) -> IngestResult:
    """Writes out_dir/{train,eval}.tfrecord.gz and out_dir/ingest_report.json
    from one data folder or a list of Sources (the first one's class folders are
    the class set).

    Raises IngestError when the result would be unusable (missing folder, fewer
    than two classes, a class with no readable image)."""
    sources = [Source.of(data)] if isinstance(data, (str, Path)) else list(data)
    out_dir = Path(out_dir)
    class_names, files, skipped = _list_sources(sources)
    data_dir = sources[0].folder
    if len(class_names) < 2:
        raise IngestError(
            f"data folder {data_dir} has {len(class_names)} class folder(s) "
            f"({', '.join(class_names) or 'none'}); a classifier needs at least two: "
            "make one sub-folder per class, each holding that class's images", skipped)
    tfrecord_paths = {split: out_dir / name for split, name in TFRECORD_NAMES.items()}
    report_path = out_dir / REPORT_NAME
    fingerprint = _fingerprint(files)
    previous = _read_report(report_path)
    if previous and previous.get("fingerprint") == fingerprint and is_ingested(out_dir):
        return IngestResult(tfrecord_paths, report_path, previous["class_names"], previous["counts"],
                            previous["skipped"], previous["changed"], reused=True,
                            sources=previous["sources"], held_out=previous["held_out"])
    duplicates = find_duplicates([(f.name, f.path, f.class_name) for f in files])
    skipped.extend({"file": name, "reason": reason} for name, reason in sorted(duplicates.items()))
    files = [f for f in files if f.name not in duplicates]

    import tensorflow as tf  # only when there is something to write

    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {name: 0 for name in class_names}
    per_source = {s.name: {split: {} for split in contract.SPLITS} for s in sources}
    label_of = {name: index for index, name in enumerate(class_names)}
    changed: list[dict] = []

    def write(tmp_paths):
        writers = {split: tf.io.TFRecordWriter(tmp, options="GZIP") for split, tmp in tmp_paths.items()}
        try:
            for f, png, info in _normalised(files, workers, progress):
                if png is None:
                    skipped.append({"file": f.name, "reason": info})
                    continue
                if info:
                    changed.append({"file": f.name, "changes": info})
                counts[f.class_name] += 1
                split = split_of(f.source, f.rel)
                tally = per_source[f.source.name][split]
                tally[f.class_name] = tally.get(f.class_name, 0) + 1
                writers[split].write(_example(png, label_of[f.class_name], f.class_name, f.name, f.source.name))
        finally:
            for writer in writers.values():
                writer.close()
        empty = [name for name, n in counts.items() if n == 0]
        if empty:
            raise IngestError(
                f"class folder(s) {', '.join(empty)} in {data_dir} hold no readable image: "
                "add images there or remove the folder", skipped)
        few = {name: n for name, n in counts.items() if n < MIN_IMAGES_PER_CLASS}
        if few:
            raise IngestError(
                "too few images: " + ", ".join(f"{name} has {n}" for name, n in few.items())
                + f"; each class needs at least {MIN_IMAGES_PER_CLASS} so that both the train and the eval "
                "split hold it", skipped)

    _atomic_write(tfrecord_paths, write)
    old = out_dir / _OLD_TFRECORD_NAME
    if old.exists():  # ImportExampleGen must not read both layouts
        old.unlink()
    report = {"data_dir": str(data_dir.resolve()), "fingerprint": fingerprint,
              "class_names": class_names, "counts": counts, "examples": sum(counts.values()),
              "sources": per_source,
              "held_out": [s.name for s in sources if s.held_out],
              "skipped": skipped, "changed": changed}
    _atomic_write({"report": report_path}, lambda tmp: Path(tmp["report"]).write_text(json.dumps(report, indent=2)))
    return IngestResult(tfrecord_paths, report_path, class_names, counts, skipped, changed, reused=False,
                        sources=per_source, held_out=report["held_out"])


def _example(png: bytes, label: int, class_name: str, name: str, source: str) -> bytes:
    import tensorflow as tf

    def _bytes(value: bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    return tf.train.Example(features=tf.train.Features(feature={
        contract.IMAGE_KEY: _bytes(png),
        contract.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        contract.CLASS_NAME_KEY: _bytes(class_name.encode()),
        contract.FILENAME_KEY: _bytes(name.encode()),
        contract.SOURCE_KEY: _bytes(source.encode()),
    })).SerializeToString(deterministic=True)  # sorted map keys: reproducible bytes


def _read_report(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def format_report(result: IngestResult, limit: int = 20) -> str:
    """A short console table: counts per class, each skipped file with its
    reason, and how many files each kind of conversion touched."""
    lines = [f"ingested {sum(result.counts.values())} images "
             f"({', '.join(f'{n} {c}' for c, n in result.counts.items())})"
             + (" - input unchanged, previous TFRecords kept" if result.reused else "")]
    if len(result.sources) > 1:
        for name, splits in result.sources.items():
            train, held = sum(splits["train"].values()), sum(splits["eval"].values())
            lines.append(f"  {name:<22} {train:>4} train {held:>4} eval"
                         + ("  (held out: the gate's unseen art)" if name in result.held_out else ""))
    if result.skipped:
        lines.append(f"{len(result.skipped)} file(s) skipped:")
        for row in result.skipped[:limit]:
            lines.append(f"  {row['file']:<40} {row['reason']}")
        if len(result.skipped) > limit:
            lines.append(f"  ... and {len(result.skipped) - limit} more in {result.report_path}")
    kinds: dict[str, int] = {}
    for row in result.changed:
        for change in row["changes"]:
            kind = change.split(" (")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n} file(s): {kind}")
    if kinds:
        lines.append(f"  (every file and change is listed in {result.report_path})")
    return "\n".join(lines)
