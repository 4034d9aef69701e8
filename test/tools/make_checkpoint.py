#!/usr/bin/env python3
"""Writes a random DeepSeek-style checkpoint (config.json + safetensors).

  make_checkpoint.py --preset tiny_v3 --out DIR [--dtype f32|bf16|fp8] [--shards N] [--seed S]
                     [--mtp-copies]
  make_checkpoint.py --config FILE.json --out DIR ...
  make_checkpoint.py --list
  make_checkpoint.py ... --tokenizer DIR   # also copies DIR's tokenizer.json + tokenizer_config.json

Presets: tiny_v3, tiny_v3_mtp, tiny_v2_lite, tiny_v2_grouped, tiny_noyarn, demo
(test/tools/ds_testing/checkpoint.py says what each one exercises).
"""
import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", choices=sorted(checkpoint.PRESETS))
    src.add_argument("--config", help="a HF config.json with the fields of configs/*.json")
    src.add_argument("--list", action="store_true", help="print the presets and exit")
    ap.add_argument("--out")
    ap.add_argument("--dtype", choices=["f32", "bf16", "fp8"], default="f32")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mtp-copies", action="store_true",
                    help="MTP modules also store copies of embed_tokens and lm_head")
    ap.add_argument("--tokenizer", help="a directory whose tokenizer.json and "
                    "tokenizer_config.json are copied into the checkpoint")
    args = ap.parse_args()
    if args.list:
        for name, fn in sorted(checkpoint.PRESETS.items()):
            print(f"{name}: {' '.join(fn.__doc__.split())}")
        return
    if not args.out:
        ap.error("--out is required")
    if args.shards < 1:
        ap.error("--shards must be >= 1")
    if args.preset:
        cfg = checkpoint.PRESETS[args.preset]()
    else:
        with open(args.config) as f:
            cfg = json.load(f)
    checkpoint.write_checkpoint(args.out, cfg, dtype=args.dtype, shards=args.shards,
                                seed=args.seed, mtp_copies=args.mtp_copies)
    if args.tokenizer:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            src = os.path.join(args.tokenizer, name)
            if not os.path.isfile(src):
                sys.exit(f"make_checkpoint.py: error: {src}: no such file")
            shutil.copyfile(src, os.path.join(args.out, name))


if __name__ == "__main__":
    main()
