#!/usr/bin/env python3
"""Writes a directory holding one deliberately malformed model.safetensors
(and no config.json), for loader error-path tests.

  make_bad_safetensors.py --case NAME --out DIR
  make_bad_safetensors.py --case valid --out DIR     (the undamaged control)
  make_bad_safetensors.py --list

The file has three tensors, in sorted order: "a" F32 [4, 8], "b" BF16 [8],
"c" F8_E4M3 [2, 16]; each case damages "a", "b" or "c" as --list says.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import safetensors as st  # noqa: E402


def sample_tensors():
    rng = np.random.default_rng(0)
    return st.tensors_from_arrays(
        {"a": rng.standard_normal((4, 8)), "b": rng.standard_normal(8),
         "c": rng.standard_normal((2, 16))},
        {"a": "F32", "b": "BF16", "c": "F8_E4M3"})


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=["valid"] + list(st.MALFORMED_CASES))
    ap.add_argument("--out")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for name, what in st.MALFORMED_CASES.items():
            print(f"{name}: {what}")
        return
    if not args.case or not args.out:
        ap.error("--case and --out are required")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.safetensors")
    if args.case == "valid":
        st.write_tensors(path, sample_tensors())
    else:
        st.write_malformed(path, sample_tensors(), args.case)


if __name__ == "__main__":
    main()
