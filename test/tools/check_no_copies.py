#!/usr/bin/env python3
"""Checks that the CPU runtime keeps no f32 or bf16 copy of a GEMM weight.

ds-run's --stats-json `weights_bytes` counts what the runtime holds for the
weights: an in-place binding at its bytes in the file (FP8 scales as f32,
which is how the file stores them), a copy at 4 bytes an element. So it
must equal the file's bytes of every 2-D tensor plus 4 bytes an element of
the 1-D ones (norms, biases: the small f32 copies the issue allows). A
matrix copied to f32 (kv_b_proj before the per-head products read it in
place) adds 3 bytes an element for FP8 and 2 for bf16; the mismatch is
reported with the tensors that could explain it.

Usage: check_no_copies.py CKPT_DIR STATS_JSON
Prints "no copies" or "FAIL: ..." (exit 1).
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import safetensors as st  # noqa: E402

def main():
    ckpt, stats = sys.argv[1], sys.argv[2]
    files, _ = st.checkpoint_files(ckpt)
    entries = {}
    for f in files:
        for name, e in st.read_header(os.path.join(ckpt, f))[0].items():
            if name != "__metadata__":
                entries[name] = e
    expected = 0
    growth = {}  # per tensor name with layer numbers as N: bytes an f32 copy adds
    for name, e in entries.items():
        nbytes = e["data_offsets"][1] - e["data_offsets"][0]
        numel = 1
        for d in e["shape"]:
            numel *= d
        if len(e["shape"]) < 2:
            expected += numel * 4
            continue
        expected += nbytes
        if name.endswith("_scale_inv") or e["dtype"] == "F32":
            continue
        # A copy holds 4 bytes an element, and no scales.
        scale = entries.get(name + "_scale_inv")
        held = nbytes + (scale["data_offsets"][1] - scale["data_offsets"][0] if scale else 0)
        key = re.sub(r"\.\d+\.", ".N.", name)
        growth[key] = growth.get(key, 0) + numel * 4 - held
    got = json.load(open(stats))["weights_bytes"]
    if got == expected:
        print("no copies")
        return 0
    extra = got - expected
    named = [k for k, g in growth.items() if g == extra]
    print(f"FAIL: the runtime holds {got} bytes of weights, {expected} read in place "
          f"(+{extra}); {'an f32 copy of ' + ', '.join(named) if named else 'copies of several tensors'}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
