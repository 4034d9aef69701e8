"""Reading and writing safetensors files with numpy only.

Why our own codec: the tests must not depend on torch or the `safetensors`
package, and they need byte-level control to build malformed files.

Layout (https://github.com/huggingface/safetensors): u64 little-endian header
length N, N bytes of JSON (padded with spaces to a multiple of 8), then the
data section. Each header entry is {"dtype", "shape", "data_offsets": [b, e]}
relative to the data section; an optional "__metadata__" maps str -> str.

bf16 is stored as uint16 (round to nearest even from f32). F8_E4M3 is the
e4m3fn encoding (bias 7, no infinities, 0x7F/0xFF are NaN, max 448); the
encoder rounds to nearest even and saturates to +-448, as DeepSeek's FP8
checkpoints were produced.
"""
import json
import os
import struct

import numpy as np

# safetensors dtype -> numpy dtype of the stored bits.
STORAGE = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
           "F8_E4M3": np.uint8, "I64": np.int64, "I32": np.int32, "I16": np.int16,
           "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
ITEMSIZE = {k: np.dtype(v).itemsize for k, v in STORAGE.items()}


class SafetensorsError(ValueError):
    """A malformed file; `kind` names the problem with the same words as
    MALFORMED_CASES so tests can check that a damaged file fails as intended."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------- bf16 codec

def f32_to_bf16_bits(x):
    """Round-to-nearest-even f32 -> bf16 bits; NaN stays a (quiet) NaN."""
    f = np.ascontiguousarray(x, dtype=np.float32)
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (bits >> 16).astype(np.uint16) | np.uint16(0x0040)
    return np.where(np.isnan(f), nan, rounded).astype(np.uint16)


def bf16_bits_to_f32(b):
    return (np.asarray(b, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------------- e4m3 codec

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


E4M3 = _e4m3_table()                 # code -> value (float64), NaN for 0x7F/0xFF
E4M3_MAX = 448.0
_POS_VALUES = E4M3[:0x7F]             # codes 0..126: the finite non-negative values, ascending


def f32_to_e4m3_bits(x):
    """Nearest e4m3fn code, ties to the even code, saturating at +-448
    (infinities too); NaN -> 0x7F; the sign of -0.0 is kept."""
    x = np.asarray(x, dtype=np.float64)
    mag = np.minimum(np.abs(np.nan_to_num(x, nan=0.0)), E4M3_MAX)
    idx = np.clip(np.searchsorted(_POS_VALUES, mag), 1, len(_POS_VALUES) - 1)
    lo, hi = _POS_VALUES[idx - 1], _POS_VALUES[idx]
    up = (mag - lo > hi - mag) | ((mag - lo == hi - mag) & (idx % 2 == 0))
    code = np.where(up, idx, idx - 1).astype(np.uint8)
    code = np.where(np.signbit(x), code | 0x80, code).astype(np.uint8)
    return np.where(np.isnan(x), np.uint8(0x7F), code).astype(np.uint8)


def e4m3_bits_to_f32(b):
    return E4M3[np.asarray(b, dtype=np.uint8)].astype(np.float32)


# ---------------------------------------------------------------- encode / decode

def encode(array, dtype):
    """numpy values -> the raw little-endian bytes of safetensors `dtype`."""
    if dtype == "BF16":
        return f32_to_bf16_bits(array).tobytes()
    if dtype == "F8_E4M3":
        return f32_to_e4m3_bits(array).tobytes()
    if dtype not in STORAGE:
        raise ValueError(f"cannot encode dtype {dtype!r}")
    return np.ascontiguousarray(array, dtype=np.dtype(STORAGE[dtype]).newbyteorder("<")).tobytes()


def decode(raw, dtype, shape):
    """Raw bytes -> array; BF16 and F8_E4M3 are decoded to float32."""
    a = np.frombuffer(raw, dtype=np.dtype(STORAGE[dtype]).newbyteorder("<")).reshape(shape)
    if dtype == "BF16":
        return bf16_bits_to_f32(a)
    if dtype == "F8_E4M3":
        return e4m3_bits_to_f32(a)
    return a.astype(a.dtype.newbyteorder("="))


# ---------------------------------------------------------------- writing

def build(tensors):
    """tensors: {name: (dtype, shape, raw bytes)} -> (header dict, data bytes).

    Tensors are laid out contiguously in sorted-name order, as the reference
    `safetensors` writer does, so offsets are predictable in tests."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": [int(d) for d in shape],
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    return header, b"".join(chunks)


def serialize(header, data, header_text=None, metadata=None):
    """(header, data) -> file bytes. `header_text` replaces the JSON verbatim
    (for malformed files); `metadata` becomes "__metadata__"."""
    if header_text is None:
        full = dict(header)
        if metadata:
            full = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}, **full}
        header_text = json.dumps(full, separators=(",", ":"))
    raw = header_text.encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def tensors_from_arrays(arrays, dtypes=None):
    """{name: array} (+ {name: dtype}, default F32) -> {name: (dtype, shape, raw)}."""
    dtypes = dtypes or {}
    out = {}
    for name, a in arrays.items():
        dt = dtypes.get(name, "F32")
        out[name] = (dt, np.shape(a), encode(a, dt))
    return out


def write(path, arrays, dtypes=None, metadata=None):
    """Writes {name: array} as one file; dtypes: {name: safetensors dtype}."""
    write_tensors(path, tensors_from_arrays(arrays, dtypes), metadata)


def write_tensors(path, tensors, metadata=None):
    """Writes already-encoded tensors {name: (dtype, shape, raw)}."""
    header, data = build(tensors)
    with open(path, "wb") as f:
        f.write(serialize(header, data, metadata=metadata))


INDEX_NAME = "model.safetensors.index.json"


def shard_file_name(i, n):
    return f"model-{i + 1:05d}-of-{n:05d}.safetensors"


def write_sharded(out_dir, tensors, shards, metadata=None, file_metadata=None):
    """Writes encoded tensors into `shards` files plus model.safetensors.index.json
    ({"metadata": {"total_size": ..., **metadata}, "weight_map": {name: file}}).

    Names go round-robin over the shards in sorted order, so one layer's
    tensors land in different files: harder for a loader than HF's
    contiguous split, and still valid. Returns the index dict."""
    names = sorted(tensors)
    shards = max(1, min(int(shards), len(names)))
    weight_map = {}
    for s in range(shards):
        part = {n: tensors[n] for n in names[s::shards]}
        fname = shard_file_name(s, shards)
        write_tensors(os.path.join(out_dir, fname), part, file_metadata)
        weight_map.update({n: fname for n in part})
    meta = {"total_size": sum(len(t[2]) for t in tensors.values())}
    meta.update(metadata or {})
    index = {"metadata": meta, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out_dir, INDEX_NAME), "w") as f:
        json.dump(index, f, indent=2)
    return index


# ---------------------------------------------------------------- reading

def _no_duplicates(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise SafetensorsError("duplicate_name", f"tensor '{k}': appears twice in the header")
        seen[k] = v
    return seen


def parse(blob):
    """Validates file bytes -> (header {name: entry}, metadata dict, data bytes).

    Checks what a loader must check before trusting offsets: header length
    inside the file, JSON object, no duplicate names, known dtype,
    non-negative shape, ordered offsets inside the data section, byte count
    = shape x itemsize, no two tensors sharing bytes. Raises SafetensorsError."""
    if len(blob) < 8:
        raise SafetensorsError("truncated", f"file is {len(blob)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise SafetensorsError("header_too_long", f"header length {n} runs past the end of the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except SafetensorsError:
        raise
    except (ValueError, UnicodeDecodeError) as e:
        raise SafetensorsError("not_json", f"header is not valid JSON: {e}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("not_object", "header is not a JSON object")
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    spans = []
    for name, e in header.items():
        if not isinstance(e, dict):
            raise SafetensorsError("not_object", f"tensor '{name}': entry is not an object")
        dtype, shape, offs = e.get("dtype"), e.get("shape"), e.get("data_offsets")
        if dtype not in STORAGE:
            raise SafetensorsError("bad_dtype", f"tensor '{name}': unknown dtype {dtype!r}")
        if (not isinstance(shape, list) or
                any(not isinstance(d, int) or isinstance(d, bool) or d < 0 for d in shape)):
            raise SafetensorsError("bad_shape", f"tensor '{name}': bad shape {shape!r}")
        if (not isinstance(offs, list) or len(offs) != 2 or
                any(not isinstance(o, int) or isinstance(o, bool) or o < 0 for o in offs)):
            raise SafetensorsError("bad_offsets", f"tensor '{name}': bad data_offsets {offs!r}")
        b, end = offs
        if b > end:
            raise SafetensorsError("reversed_offsets", f"tensor '{name}': data_offsets out of order (begin {b} > end {end})")
        if end > len(data):
            raise SafetensorsError("offsets_past_end", f"tensor '{name}': data_offsets end {end} is past the data section ({len(data)} bytes)")
        need = int(np.prod(shape, dtype=np.int64)) * ITEMSIZE[dtype]
        if end - b != need:
            raise SafetensorsError("size_mismatch", f"tensor '{name}': holds {end - b} bytes but shape {shape} x {dtype} needs {need}")
        spans.append((b, end, name))
    reach, owner = 0, None  # furthest end so far among non-empty spans, and whose
    for b, end, name in sorted(s for s in spans if s[1] > s[0]):
        if b < reach:
            raise SafetensorsError("overlap", f"tensor '{name}': bytes overlap tensor '{owner}'")
        reach, owner = end, name
    return header, meta, data


def read_header(path):
    """-> (header {name: entry}, metadata) of a valid file."""
    with open(path, "rb") as f:
        header, meta, _ = parse(f.read())
    return header, meta


def read(path):
    """-> {name: (dtype, array)}; BF16/F8_E4M3 decoded to float32, others as stored."""
    with open(path, "rb") as f:
        header, _, data = parse(f.read())
    return {name: (e["dtype"], decode(data[e["data_offsets"][0]:e["data_offsets"][1]],
                                      e["dtype"], e["shape"]))
            for name, e in header.items()}


def checkpoint_files(ckpt_dir):
    """The safetensors files of a checkpoint dir: the index's files if there is
    one (a tensor listed there must be in that file), else every *.safetensors."""
    index = os.path.join(ckpt_dir, INDEX_NAME)
    if os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        return sorted(set(wm.values())), wm
    return sorted(f for f in os.listdir(ckpt_dir) if f.endswith(".safetensors")), None


def read_dir(ckpt_dir):
    """All tensors of a checkpoint dir (single file or index + shards)."""
    files, wm = checkpoint_files(ckpt_dir)
    out = {}
    for fname in files:
        for name, t in read(os.path.join(ckpt_dir, fname)).items():
            if name in out:
                raise SafetensorsError("duplicate_name", f"tensor '{name}' is in two files")
            if wm is not None and wm.get(name) != fname:
                raise SafetensorsError("index", f"tensor '{name}' is in {fname}, index says {wm.get(name)}")
            out[name] = t
    if wm is not None:
        missing = sorted(set(wm) - set(out))
        if missing:
            raise SafetensorsError("index", f"tensor '{missing[0]}' is listed in {INDEX_NAME} but missing")
    return out


# ---------------------------------------------------------------- malformed files

# Each case damages one thing of a valid layout. The damaged tensor is the
# first (or second / last) in sorted order so messages are predictable.
MALFORMED_CASES = {
    "truncated": "file cut in the middle of the data section",
    "header_too_long": "header length field points past the end of the file",
    "not_json": "header bytes are not JSON",
    "not_object": "header is JSON but not an object",
    "bad_dtype": "first tensor has dtype 'Q7'",
    "bad_shape": "first tensor has a negative dimension",
    "size_mismatch": "first tensor's shape needs more bytes than its offsets hold",
    "overlap": "second tensor's offsets start inside the first tensor",
    "reversed_offsets": "first tensor has begin > end",
    "offsets_past_end": "last tensor's offsets run past the data section",
    "duplicate_name": "first tensor's key appears twice in the JSON text",
}

# What parse() reports for each case (a cut file is seen as offsets past the end).
EXPECTED_KIND = dict({c: c for c in MALFORMED_CASES}, truncated="offsets_past_end")


def malformed(tensors, case):
    """Encoded tensors {name: (dtype, shape, raw)} (at least 2, non-empty) ->
    bytes of a file damaged as MALFORMED_CASES[case] says."""
    if case not in MALFORMED_CASES:
        raise ValueError(f"unknown case {case!r}; known: {', '.join(MALFORMED_CASES)}")
    header, data = build(tensors)
    names = sorted(header)
    if len(names) < 2:
        raise ValueError("need at least two tensors")
    a, b, last = names[0], names[1], names[-1]
    text = None
    if case == "truncated":
        blob = serialize(header, data)
        return blob[:len(blob) - max(1, len(data) // 2)]
    if case == "header_too_long":
        blob = serialize(header, data)
        return struct.pack("<Q", len(blob) * 4) + blob[8:]
    if case == "not_json":
        text = "{this is not json"
    elif case == "not_object":
        text = "[1, 2, 3]"
    elif case == "bad_dtype":
        header[a]["dtype"] = "Q7"
    elif case == "bad_shape":
        header[a]["shape"] = [-1] + header[a]["shape"][1:]
    elif case == "size_mismatch":
        shape = header[a]["shape"] or [1]
        header[a]["shape"] = [shape[0] + 1] + shape[1:]
    elif case == "overlap":
        ab, ae = header[a]["data_offsets"]
        bb, be = header[b]["data_offsets"]
        start = ab + (ae - ab) // 2
        header[b]["data_offsets"] = [start, start + be - bb]
    elif case == "reversed_offsets":
        bg, en = header[a]["data_offsets"]
        if bg == en:
            raise ValueError(f"tensor '{a}' is empty; cannot reverse its offsets")
        header[a]["data_offsets"] = [en, bg]
    elif case == "offsets_past_end":
        bg, en = header[last]["data_offsets"]
        header[last]["data_offsets"] = [bg + 64, en + 64]
    elif case == "duplicate_name":
        body = json.dumps(header)
        dup = json.dumps({a: header[a]})[1:-1]
        text = body[:-1] + ", " + dup + "}"
    return serialize(header, data, text)


def write_malformed(path, tensors, case):
    with open(path, "wb") as f:
        f.write(malformed(tensors, case))
