"""Reading and writing safetensors files with numpy only.

bf16 is stored as uint16 (round to nearest even from f32); F8_E4M3 is the
e4m3fn encoding (bias 7, no infinities, max 448).
"""
import json
import struct

import numpy as np

_NP = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64,
       "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
       "BOOL": np.bool_, "BF16": np.uint16, "F8_E4M3": np.uint8}


def f32_to_bf16_bits(x):
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint32) << 16).view(np.float32)


def _e4m3_table():
    vals = np.zeros(256, dtype=np.float64)
    for v in range(256):
        sign = -1.0 if v & 0x80 else 1.0
        exp, mant = (v >> 3) & 0xF, v & 0x7
        if exp == 0xF and mant == 0x7:
            vals[v] = np.nan
        elif exp == 0:
            vals[v] = sign * mant / 8.0 * 2.0 ** -6
        else:
            vals[v] = sign * (1 + mant / 8.0) * 2.0 ** (exp - 7)
    return vals


E4M3 = _e4m3_table()
_E4M3_FINITE = np.where(np.isnan(E4M3), np.inf, E4M3)
_POS_CODES = np.arange(0, 0x7F, dtype=np.uint8)  # 0..126: finite non-negative
_POS_VALUES = E4M3[_POS_CODES]


def f32_to_e4m3_bits(x):
    """Nearest e4m3fn code (ties to even code), saturating at +-448."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.minimum(np.abs(x), 448.0)
    idx = np.searchsorted(_POS_VALUES, mag)
    idx = np.clip(idx, 1, len(_POS_VALUES) - 1)
    lo, hi = _POS_VALUES[idx - 1], _POS_VALUES[idx]
    pick_hi = (mag - lo > hi - mag) | ((mag - lo == hi - mag) & ((idx % 2) == 0))
    code = np.where(pick_hi, idx, idx - 1).astype(np.uint8)
    code = np.where(mag == 0, 0, code).astype(np.uint8)
    return np.where(x < 0, code | 0x80, code).astype(np.uint8)


def e4m3_bits_to_f32(b):
    return E4M3[np.asarray(b, dtype=np.uint8)].astype(np.float32)


def encode(array, dtype):
    """numpy array -> (dtype name, raw bytes)."""
    if dtype == "BF16":
        return f32_to_bf16_bits(array).tobytes()
    if dtype == "F8_E4M3":
        return f32_to_e4m3_bits(array).tobytes()
    return np.ascontiguousarray(array, dtype=_NP[dtype]).tobytes()


def build(tensors):
    """tensors: {name: (dtype, shape, raw bytes)} -> (header dict, data bytes)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    return header, b"".join(chunks)


def serialize(header, data, header_text=None):
    text = header_text if header_text is not None else json.dumps(header)
    raw = text.encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def write(path, arrays, dtypes=None):
    """arrays: {name: np.ndarray}; dtypes: {name: safetensors dtype} (F32 default)."""
    dtypes = dtypes or {}
    tensors = {}
    for name, a in arrays.items():
        dt = dtypes.get(name, "F32")
        tensors[name] = (dt, a.shape, encode(a, dt))
    header, data = build(tensors)
    with open(path, "wb") as f:
        f.write(serialize(header, data))


def read(path):
    """-> {name: (dtype, np.ndarray as float32 for float types)}."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = np.frombuffer(data[b:end], dtype=_NP[e["dtype"]]).reshape(e["shape"])
        if e["dtype"] == "BF16":
            raw = bf16_bits_to_f32(raw)
        elif e["dtype"] == "F8_E4M3":
            raw = e4m3_bits_to_f32(raw)
        out[name] = (e["dtype"], raw)
    return out
