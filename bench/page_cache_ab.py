#!/usr/bin/env python3
"""Whole-model tok/s with the checkpoint cached in 2 MiB pages against the
same bytes cached in 4 KiB pages, interleaved, in one run.

The runtime reads weights in place from the checkpoint's mapping, so the
page cache's page size is the size of the pages the kernels stream. A file
read from disk lands in 2 MiB folios where the kernel caches the file
system's files in large folios (Linux 6.18's ext4 here); a file written
since it was last read (a download, a conversion, a copy) sits in 4 KiB
pages. For each dtype of a bench/cpu_kernels.py --work folder this makes
`ckpt-DTYPE-written` (a copy: written, so in small pages), drops
`ckpt-DTYPE` from the page cache (the first run reads it back), then
alternates `ds-cpu-bench model` on the two, the order swapped every pair.
Prints per dtype the medians of read / written over the pairs, each side's
median tok/s, and each side's share of touched weight pages the kernel
mapped in 2 MiB pages (smaps), which says whether the two states were what
they should be.

    /usr/bin/python3 bench/cpu_kernels.py --shape v3-width --work /tmp/v3w
    /usr/bin/python3 bench/page_cache_ab.py --work /tmp/v3w --pairs 6
"""
import argparse
import os
import shutil
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_kernels import drop_page_cache, probe  # noqa: E402


def run(bin_dir, art, ckpt, prompt, steps, reps):
    j = probe(bin_dir, "model", art, ckpt, prompt, steps, reps)
    huge = j["weights_huge_page_bytes"] / max(j["weights_resident_bytes"], 1)
    return j["prefill_tokens_per_second"], j["decode_tokens_per_second"], huge


def written_copy(ckpt):
    """ckpt's files copied to ckpt-written (kept between runs: a copy made
    once stays in small pages while it stays cached)."""
    out = ckpt + "-written"
    if not os.path.exists(os.path.join(out, "config.json")):
        print(f"copying {ckpt} to {out}", file=sys.stderr, flush=True)
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(ckpt, out)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--work", required=True,
                    help="a bench/cpu_kernels.py --work folder")
    ap.add_argument("--dtypes", default="bf16,fp8,f32")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print("| dtype | pairs | prefill read / written | decode read / written "
          "| prefill tok/s written, read | decode tok/s written, read "
          "| in 2 MiB pages: written, read |")
    print("|---|---|---|---|---|---|---|")
    for dtype in args.dtypes.split(","):
        art = os.path.join(args.work, f"model-{dtype}.dsa")
        ckpt = os.path.join(args.work, f"ckpt-{dtype}")
        written = written_copy(ckpt)
        drop_page_cache(ckpt)
        runs = {"read": [], "written": []}
        for i in range(args.pairs):
            sides = [("written", written), ("read", ckpt)]
            if i % 2:
                sides.reverse()
            for name, path in sides:
                runs[name].append(run(args.bin, art, path, args.prompt,
                                      args.steps, args.reps))
        ratio = lambda k: statistics.median(
            r[k] / w[k] for w, r in zip(runs["written"], runs["read"]))
        med = lambda side, k: statistics.median(r[k] for r in runs[side])
        print(f"| {dtype} | {args.pairs} | {ratio(0):.3f}x | {ratio(1):.3f}x "
              f"| {med('written', 0):.0f}, {med('read', 0):.0f} "
              f"| {med('written', 1):.1f}, {med('read', 1):.1f} "
              f"| {med('written', 2):.0%}, {med('read', 2):.0%} |", flush=True)


if __name__ == "__main__":
    main()
