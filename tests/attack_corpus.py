"""Hostile inputs as code: generators of image bytes and requests meant to exhaust
the server's memory or CPU. Each image is built from its headers and a little
data, so a case costs the test almost nothing and the server what it declares.
"""
from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image

# The budget the server must hold these to (contract.MAX_DECODED_PIXELS).
BUDGET_PIXELS = 40_000_000


def png(width: int, height: int, mode: str = "1") -> bytes:
    """A real PNG of a blank width x height image (a few KB for tens of MP)."""
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, "PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height RGBA and whose data stops short:
    a decoder that trusts the header allocates before it finds out."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def jpeg_header_only(width: int, height: int) -> bytes:
    """A real 16x16 JPEG whose frame header (SOF0) is rewritten to declare
    width x height: libjpeg allocates the declared output, then runs out of data."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_header_only(width: int, height: int) -> bytes:
    """A 24-bit BMP header declaring width x height (negative: top-down) and no pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def _frame_blocks(width: int, height: int) -> bytes:
    """One GIF image (descriptor + LZW data) of a blank width x height frame, as Pillow writes it."""
    out = io.BytesIO()
    Image.new("P", (width, height), 0).save(out, "GIF")
    data = out.getvalue()
    return data[data.index(b"\x2c", 13):-1]  # from the image separator to before the trailer


def gif(width: int, height: int, frames: int) -> bytes:
    """An animated GIF: `frames` blank frames on a width x height canvas. The
    frame's compressed bytes repeat, so 4,000 frames of 1000x1000 take ~9 MB."""
    header = b"GIF89a" + struct.pack("<HH", width, height) + bytes([0x80, 0, 0]) + b"\0\0\0\xff\xff\xff"
    return header + _frame_blocks(width, height) * frames + b"\x3b"


def gif_fragmented(width: int, height: int, blocks: int) -> bytes:
    """A GIF whose first frame's data comes in `blocks` one-byte sub-blocks:
    the most steps a parser of its structure can be made to take per byte."""
    header = b"GIF89a" + struct.pack("<HH", width, height) + bytes([0x80, 0, 0]) + b"\0\0\0\xff\xff\xff"
    descriptor = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00" + b"\x02"
    return header + descriptor + b"\x01\x00" * blocks + b"\x00\x3b"


def gif_frame_outside_canvas(width: int, height: int) -> bytes:
    """A 1x1 canvas whose first frame declares width x height."""
    header = b"GIF89a" + struct.pack("<HH", 1, 1) + bytes([0x80, 0, 0]) + b"\0\0\0\xff\xff\xff"
    descriptor = b"\x2c" + struct.pack("<HHHH", 0, 0, width, height) + b"\x00\x02\x02\x4c\x01\x00"
    return header + descriptor + b"\x3b"


def images(seed: int = 0):
    """(name, [image bytes], refused) for one request each: `refused` is True
    where the request is over the decoding budget or malformed, False where it
    is within the budget and must be answered, at bounded cost."""
    yield "wide PNG 1,000,000 x 39 (39 MP, under the budget)", [png(1_000_000, 39)], False
    yield "tall RGBA PNG 39 x 1,000,000", [png(39, 1_000_000, "RGBA")], False
    yield "four wide PNGs in one request", [png(1_000_000, 39)] * 4, True
    yield "PNG bomb 10000 x 10000", [png(10_000, 10_000)], True
    yield "PNG header 2^31-1 x 2^31-1, no data", [png_header_only(2 ** 31 - 1, 2 ** 31 - 1)], True
    yield "JPEG header 65500 x 65500, no data", [jpeg_header_only(65_500, 65_500)], True
    yield "BMP header 100000 x -100000 (top-down), no data", [bmp_header_only(100_000, -100_000)], True
    yield "GIF of 4,000 frames of 1000 x 1000", [gif(1000, 1000, 4000)], False
    yield "GIF canvas 65535 x 65535", [gif(65_535, 65_535, 1)[:200] + b"\x3b"], True
    yield "GIF first frame in 3,000,000 one-byte blocks", [gif_fragmented(100, 100, 3_000_000)], True
    yield "GIF first frame in 1,000,000 one-byte blocks", [gif_fragmented(100, 100, 1_000_000)], False
    yield "GIF frame 60000 x 60000 on a 1 x 1 canvas", [gif_frame_outside_canvas(60_000, 60_000)], True
    yield "WebP (a format the model does not take)", [b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\0" * 16], True
    yield "256 images of 400 x 400 (41 MP in all)", [png(400, 400)] * 256, True
    rng = random.Random(seed)
    for _ in range(6):  # random aspect ratios just under and just over the budget
        width = rng.randint(40, 2_000_000)
        for factor, refused in ((0.98, False), (1.02, True)):
            height = max(1, int(BUDGET_PIXELS * factor) // width)
            if width * height > BUDGET_PIXELS * 1.01 or width * height < BUDGET_PIXELS * 0.97:
                continue  # rounding left it on the other side
            yield f"PNG {width} x {height}", [png_header_only(width, height)], refused


def tensor_protos():
    """(name, input key, TensorProto) for gRPC Predict: each declares more than
    it holds, or what the signature does not take."""
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

    def proto(dtype, dims, unknown_rank=False, **values):
        shape = tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims], unknown_rank=unknown_rank)
        return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, **values)

    yield "float [1, 200000000] from one value (45 bytes)", "images", proto(types_pb2.DT_FLOAT, [1, 200_000_000],
                                                                             float_val=[1.0])
    yield "float [1, 10000000] from one value", "images", proto(types_pb2.DT_FLOAT, [1, 10_000_000], float_val=[1.0])
    yield "string [100000000] from one value", "images", proto(types_pb2.DT_STRING, [100_000_000], string_val=[b"x"])
    yield "string [1, 100000000]", "images", proto(types_pb2.DT_STRING, [1, 100_000_000], string_val=[b"x"])
    yield "string [-1]", "images", proto(types_pb2.DT_STRING, [-1], string_val=[b"x"])
    yield "string of unknown rank", "images", proto(types_pb2.DT_STRING, [], unknown_rank=True, string_val=[b"x"])
    yield "double [1] holding 10 MB", "images", proto(types_pb2.DT_DOUBLE, [1], tensor_content=b"\0" * 10_000_000)
    yield "an input the signature lacks", "pixels", proto(types_pb2.DT_FLOAT, [1, 150, 150, 3], float_val=[0.0])
    yield "a dtype that does not exist", "images", proto(999, [1], string_val=[b"x"])
