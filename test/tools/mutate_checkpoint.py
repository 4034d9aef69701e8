#!/usr/bin/env python3
"""Damages a checkpoint or artifact on purpose, for error-path tests.

  mutate_checkpoint.py drop DIR NAME            remove tensor NAME
  mutate_checkpoint.py reshape DIR NAME A,B     give NAME another shape (same bytes)
  mutate_checkpoint.py retype DIR NAME DTYPE    store NAME as DTYPE (e.g. I32, F64)
  mutate_checkpoint.py nan DIR NAME             put a NaN into NAME
  mutate_checkpoint.py rename DIR NAME NEW DT   rename NAME to NEW and label it DT, both JSON
                                                strings (so they may hold control characters)
  mutate_checkpoint.py bad-header DIR CASE      rewrite model.safetensors with a malformed header:
      truncated | header_too_long | not_json | not_object | bad_dtype | bad_shape |
      size_mismatch | overlap | reversed_offsets | offsets_past_end | duplicate_name
  mutate_checkpoint.py truncate FILE BYTES      keep the first BYTES bytes of FILE
  mutate_checkpoint.py flip FILE OFFSET         invert one byte of FILE
  mutate_checkpoint.py artifact-version FILE V  rewrite an artifact's format version
  mutate_checkpoint.py artifact-target FILE T   rewrite the manifest's target (checksum kept valid)
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import safetensors as st  # noqa: E402


def load_raw(path):
    """{name: (dtype, shape, raw bytes)} of a valid file."""
    with open(path, "rb") as f:
        header, _, data = st.parse(f.read())
    return {name: (e["dtype"], e["shape"], data[e["data_offsets"][0]:e["data_offsets"][1]])
            for name, e in header.items()}


def single_file(d):
    files = [f for f in os.listdir(d) if f.endswith(".safetensors")]
    if len(files) != 1:
        sys.exit("expected exactly one .safetensors file in " + d)
    return os.path.join(d, files[0])


def write_raw(path, tensors):
    st.write_tensors(path, tensors)


def main():
    op, target = sys.argv[1], sys.argv[2]
    args = sys.argv[3:]
    if op in ("drop", "reshape", "retype", "nan", "rename"):
        path = single_file(target)
        t = load_raw(path)
        name = args[0]
        dtype, shape, raw = t[name]
        if op == "drop":
            del t[name]
        elif op == "rename":
            del t[name]
            t[json.loads(args[1])] = (json.loads(args[2]), shape, raw)
        elif op == "reshape":
            t[name] = (dtype, [int(x) for x in args[1].split(",")], raw)
        elif op == "retype":
            new = args[1]
            size = {"F64": 8, "I64": 8, "I32": 4, "F32": 4, "I16": 2, "I8": 1, "U8": 1}[new]
            n = int(np.prod(shape))
            t[name] = (new, shape, bytes(n * size))
        elif op == "nan":
            if dtype != "F32" and dtype != "BF16":
                sys.exit("nan: only F32/BF16 tensors")
            arr = bytearray(raw)
            arr[0:4 if dtype == "F32" else 2] = (b"\x00\x00\xc0\x7f" if dtype == "F32"
                                                 else b"\xc0\x7f")
            t[name] = (dtype, shape, bytes(arr))
        write_raw(path, t)
    elif op == "bad-header":
        path = single_file(target)
        case = args[0]
        if case not in st.MALFORMED_CASES:
            sys.exit("unknown case " + case)
        blob = st.malformed(load_raw(path), case)  # read before "wb" truncates it
        with open(path, "wb") as f:
            f.write(blob)
    elif op == "truncate":
        blob = open(target, "rb").read()
        open(target, "wb").write(blob[:int(args[0])])
    elif op == "flip":
        blob = bytearray(open(target, "rb").read())
        i = int(args[0]) % len(blob)
        blob[i] ^= 0xFF
        open(target, "wb").write(bytes(blob))
    elif op == "artifact-version":
        blob = bytearray(open(target, "rb").read())
        blob[8:12] = struct.pack("<I", int(args[0]))
        open(target, "wb").write(bytes(blob))
    elif op == "artifact-target":
        blob = open(target, "rb").read()
        ms, osz = struct.unpack("<QQ", blob[16:32])
        manifest = json.loads(blob[40:40 + ms])
        manifest["target"] = args[0]
        mtext = json.dumps(manifest).encode()
        obj = blob[40 + ms:]
        h = 14695981039346656037
        for byte in mtext + obj:
            h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        out = blob[:16] + struct.pack("<QQQ", len(mtext), len(obj), h) + mtext + obj
        open(target, "wb").write(out)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
