#!/usr/bin/env python3
"""Where a prefill's GEMM time goes, per kind of product, against the large
GEMM's rate measured in the same run.

Runs `ds-cpu-bench gemm ROWS N K 5` and then `ds-cpu-bench model ARTIFACT
CKPT PROMPT 0 REPS`, both with DSRT_TILE_TRACE=1 (the runtime then prints,
at exit, one line per shape of the chunks its GEMM tiles ran: K, formats,
path, x's panels and last rows, thread-seconds, useful GFLOP/s a thread;
runtime/src/cpu/TileTrace.h). The large GEMM gives the reference rate
of each weight format on each tile arithmetic (its fastest such line). The model's lines are grouped:
  - "all rows": products over every prompt row (its panels of 32 rows or
    more: q_a, q_b, kv_a, o_proj, dense and shared-expert MLPs);
  - "all rows, exact": the same with f32 x over bf16 or FP8 weights, the
    naive form's exact kv_b expansion over the context: on AMX three
    passes of the bf16 tiles (tiles=bf16x3, x split into three bf16
    terms, held to a third of the bf16 tiles' reference; tiles=bf16x2
    where x's third terms were all zero, and plain bf16 tiles where x was
    bf16 already, as a bf16 latent cache's rows), on AVX-512 BF16
    the f32 tiles (and where bf16 runs on widened f32 tiles,
    KernelSet::widenedTiles, every bf16 product);
  - "groups of N panels": products over fewer rows (the routed experts'
    groups), by panels of 32 rows.
and each group's thread-seconds, share of the traced time, rate and rate
against the reference are printed, then the largest shapes.

Usage: /usr/bin/python3 bench/tile_trace.py ARTIFACT CKPT [--prompt 256]
       [--reps 4] [--gemm 256x4096x4096] [--bin build/bin] [--top 10]
Compare traced runs with traced runs: timing costs two TSC reads a chunk.
"""
import argparse
import collections
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = re.compile(r"dsrt-tiles k=(\d+) weights=(\w+) tiles=(\w+) path=([\w-]+) "
                  r"panels=(\d+) last_rows=(\d+) chunks=(\d+) seconds=([\d.]+) "
                  r"gflops=([\d.]+)")
Shape = collections.namedtuple("Shape", "k weights tiles path panels last chunks seconds gflops")


def traced(bin_dir, args):
    """The trace's shapes from one ds-cpu-bench run."""
    env = dict(os.environ, DSRT_TILE_TRACE="1")
    out = subprocess.run([os.path.join(bin_dir, "ds-cpu-bench")] + [str(a) for a in args],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"tile_trace: ds-cpu-bench {' '.join(map(str, args))} failed: "
                 f"{out.stderr.strip().splitlines()[-1:] or out.returncode}")
    shapes = []
    for line in out.stderr.splitlines():
        m = LINE.match(line)
        if m:
            k, w, t, p, panels, last, chunks, sec, gf = m.groups()
            shapes.append(Shape(int(k), w, t, p, int(panels), int(last), int(chunks),
                                float(sec), float(gf)))
    if not shapes:
        sys.exit("tile_trace: no dsrt-tiles lines (a runtime without DSRT_TILE_TRACE?)")
    return shapes


def group_of(s, prompt_panels):
    if s.panels < prompt_panels:
        return f"groups of {s.panels} panel{'s' if s.panels > 1 else ''}"
    if s.tiles in ("f32", "bf16x2", "bf16x3") and s.weights != "f32":
        return "all rows, exact"
    return "all rows"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifact")
    ap.add_argument("ckpt")
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--gemm", default="256x4096x4096", help="ROWSxNxK of the reference GEMM")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args()
    try:
        rows, n, k = (int(v) for v in args.gemm.split("x"))
    except ValueError:
        sys.exit(f"tile_trace: --gemm {args.gemm!r} is not ROWSxNxK")

    # Per (weights, tiles): the large GEMM's fastest line in that
    # arithmetic (its bf16 weights run on bf16 tiles and, widened, on f32).
    reference = {}
    for s in traced(args.bin, ["gemm", rows, n, k, 5]):
        key = (s.weights, s.tiles)
        reference[key] = max(reference.get(key, 0.0), s.gflops)
    shapes = traced(args.bin, ["model", args.artifact, args.ckpt, args.prompt, 0, args.reps])
    # Products over every prompt row (or more: the naive form expands
    # the whole context's latents) against the experts' smaller groups.
    prompt_panels = (args.prompt + 31) // 32
    total = sum(s.seconds for s in shapes)

    groups = collections.OrderedDict()
    for s in sorted(shapes, key=lambda s: (-s.panels, s.tiles)):
        g = groups.setdefault(group_of(s, prompt_panels), {"seconds": 0.0, "flops": 0.0, "kinds": set()})
        g["seconds"] += s.seconds
        g["flops"] += s.gflops * s.seconds
        g["kinds"].add((s.weights, s.tiles))

    print(f"Reference: ds-cpu-bench gemm {rows} {n} {k}, traced, GFLOP/s a thread "
          "(weights on tiles): " +
          ", ".join(f"{w} on {t} {r:.0f}" for (w, t), r in sorted(reference.items())))
    print(f"Model: {args.artifact}, prompt {args.prompt}, {args.reps} warm repetitions (the "
          f"first, cold prefill not traced); {total:.3f} thread-seconds in the tiles.\n")
    print("| products | thread-s | share | GFLOP/s a thread | of the reference |")
    print("|---|---|---|---|---|")
    for name, g in groups.items():
        rate = g["flops"] / g["seconds"] if g["seconds"] else 0.0
        # A group of several kinds is held to the fastest kind's rate; f32
        # tiles over weights the large GEMM ran on no f32 tile (FP8 on
        # AMX) to the f32 weights' rate; the split's passes (three, or two
        # where x's last plane was zero) to that share of the bf16 tiles'.
        ref = max(reference.get((kind[0], "bf16"), 0.0) / int(kind[1][-1])
                  if kind[1] in ("bf16x2", "bf16x3")
                  else reference.get(kind, reference.get(("f32", kind[1]), 0.0))
                  for kind in g["kinds"])
        of = f"{rate / ref:.0%}" if ref else "-"
        print(f"| {name} | {g['seconds']:.3f} | {g['seconds'] / total:.0%} | {rate:.0f} | {of} |")
    print(f"\nLargest shapes (of {len(shapes)}):\n")
    print("| K | weights | tiles | path | panels | last rows | thread-s | GFLOP/s a thread |")
    print("|---|---|---|---|---|---|---|---|")
    for s in sorted(shapes, key=lambda s: -s.seconds)[:args.top]:
        print(f"| {s.k} | {s.weights} | {s.tiles} | {s.path} | {s.panels} | {s.last} | "
              f"{s.seconds:.3f} | {s.gflops:.0f} |")


if __name__ == "__main__":
    main()
