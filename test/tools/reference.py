#!/usr/bin/env python3
"""Runs the float64 numpy reference (ds_testing/reference.py) on a checkpoint.

  reference.py --checkpoint DIR --tokens 1,2,3 --out logits.npy
               [--routing-out routing.json] [--absorbed] [--prefill N]

Logits are [n_tokens, vocab] float64, row t = logits after token t. With
--prefill N the first N tokens go through one forward call and the rest
through the cache one at a time (decode); otherwise one call takes all.
routing.json: [{"layer": L, "experts": [[...] per token], "weights": [[...]]}]
for each MoE layer L, over all calls.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing.reference import ReferenceModel  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--out", required=True, help=".npy file for the logits")
    ap.add_argument("--routing-out")
    ap.add_argument("--absorbed", action="store_true", help="absorbed MLA (default naive)")
    ap.add_argument("--prefill", type=int, default=None)
    args = ap.parse_args()
    try:
        tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
        m = ReferenceModel.load(args.checkpoint)
        n0 = len(tokens) if args.prefill is None else max(1, min(args.prefill, len(tokens)))
        cache = m.new_cache()
        rows = [m.forward(tokens[:n0], 0, cache, absorbed=args.absorbed)]
        routing = {L: [ids] for L, ids in m.last_routing.items()}
        weights = {L: [w] for L, w in m.last_routing_weights.items()}
        for i in range(n0, len(tokens)):
            rows.append(m.forward(tokens[i:i + 1], i, cache, absorbed=args.absorbed))
            for L in m.last_routing:
                routing[L].append(m.last_routing[L])
                weights[L].append(m.last_routing_weights[L])
    except (ValueError, KeyError, OSError) as e:
        sys.exit(f"reference.py: error: {e}")
    np.save(args.out, np.concatenate(rows))
    if args.routing_out:
        recs = [{"layer": L, "experts": np.concatenate(routing[L]).tolist(),
                 "weights": np.concatenate(weights[L]).tolist()} for L in sorted(routing)]
        with open(args.routing_out, "w") as f:
            json.dump(recs, f)


if __name__ == "__main__":
    main()
