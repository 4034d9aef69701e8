#!/usr/bin/env python3
"""Compiled model vs the numpy reference, on a generated checkpoint.

Writes a random checkpoint of a preset, compiles it with ds-compile, runs
ds-run with teacher forcing (the reference's inputs, not free-running
greedy chains, whose top-2 margins can be tiny), and checks:
  - every prompt position and every forced decode step within --atol of the
    float64 reference;
  - decode through the cache equals a one-shot prefill of the whole
    sequence (--oneshot-atol);
  - with --routing, the experts chosen per token and layer equal the
    reference's sets.
The reference rounds what the runtime rounds (a bf16 / fp8 cache; the GEMM
inputs of its bf16 units, --activations), and where f32 and float64 round
a value apart (a rounding tie: within f32 noise of a boundary) it takes
the ties that explain the compiled run the other way
(ds_testing/rounding_ties.py); the decode and one-shot runs may each take
a tie their own way, and must then differ by what the reference with their
ties differs by.
Prints one line per check; exits 1 on the first failure.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import checkpoint  # noqa: E402
from ds_testing.rounding_ties import TieBook, resolve_ties  # noqa: E402
from ds_testing.reference import ReferenceModel  # noqa: E402

# Distance from a bf16 midpoint within which a GEMM input the runtime
# computes in f32 may round either way, relative to the value or to a
# quarter of its row's RMS (reference.INPUT_TIE_FLOOR), the larger: most
# flips the runs needed lay within 1e-7 of it, the farthest 2.2e-6 of the
# RMS (a small value late in the model), ds_testing/rounding_ties.py.
INPUT_TIE_WINDOW = 2e-5


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def runtime_bf16_dtypes():
    """The checkpoint dtypes whose GEMM inputs the CPU runtime rounds to
    bf16 here (empty: none): BF16 weights on its avx512bf16 kernels, FP8
    (F8_E4M3) ones too on avx512vbmi (e4m3 looked up as bf16), chosen by
    DSRT_CPU_ISA or, unset, as the best set this CPU has
    (runtime/src/cpu/Isa.cpp); none when weights are forced to f32 copies
    (DSRT_WEIGHTS_F32=1)."""
    if os.environ.get("DSRT_WEIGHTS_F32") == "1":
        return ()
    isa = os.environ.get("DSRT_CPU_ISA", "")
    if not isa:
        flags = cpu_flags()
        if not {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
                "avx512_bf16"} <= flags:
            return ()
        isa = "avx512vbmi" if "avx512vbmi" in flags else "avx512bf16"
    return {"avx512bf16": ("BF16",), "avx512vbmi": ("BF16", "F8_E4M3"),
            "amx": ("BF16", "F8_E4M3")}.get(isa, ())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", required=True, choices=sorted(checkpoint.PRESETS))
    ap.add_argument("--bin", required=True, help="directory with ds-compile and ds-run")
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "fp8"],
                    help="compile dtype (latent cache element type)")
    ap.add_argument("--weights-dtype", default="f32", choices=["f32", "bf16", "fp8"])
    ap.add_argument("--prompt", type=int, default=20)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--oneshot-atol", type=float, default=1e-5,
                    help="decode through the cache vs one-shot prefill (the same model "
                         "twice: only summation order differs)")
    ap.add_argument("--reference-cache-rounding", default="nearest",
                    choices=["nearest", "truncate"],
                    help="how the reference rounds a bf16 cache (truncate: to show that "
                         "the tolerance tells rounding modes apart)")
    ap.add_argument("--reference-fp8-group", type=int, default=128,
                    help="latent values per scale in the reference's fp8 cache (another "
                         "value: to show that the check tells groupings apart)")
    ap.add_argument("--reference-fp8-max", type=float, default=448.0,
                    help="scale = amax / this in the reference's fp8 cache (another value: "
                         "to show that the check tells scales apart)")
    ap.add_argument("--tie-window", type=float, default=1e-5,
                    help="relative distance from a bf16/fp8 rounding boundary within which "
                         "a cache value may round either way (f32 vs float64; "
                         "ds_testing/rounding_ties.py); 0: none")
    ap.add_argument("--input-tie-window", type=float, default=INPUT_TIE_WINDOW,
                    help="the same for the GEMM inputs the runtime rounds to bf16 "
                         "(--activations bf16); 0: none")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--routing", action="store_true")
    ap.add_argument("--mla-form", default="auto", choices=["auto", "absorbed", "naive"])
    ap.add_argument("--work", default=None)
    ap.add_argument("--target", default="cpu", choices=["cpu", "cuda"],
                    help="compile for and run on this device (cuda needs a GPU)")
    ap.add_argument("--gpu-arch", default="sm_90")
    ap.add_argument("--activations", default="auto", choices=["auto", "f32", "bf16"],
                    help="how the reference treats the inputs of GEMMs over the "
                         "checkpoint's BF16 (and, on avx512vbmi, FP8) weights: bf16 "
                         "rounds them as the runtime's AVX512-BF16 path does; auto: bf16 "
                         "when the CPU runtime takes that path (runtime_bf16_dtypes)")
    ap.add_argument("--compile-arg", action="append", default=[],
                    help="extra ds-compile argument (repeatable)")
    args = ap.parse_args()

    work = args.work or tempfile.mkdtemp(prefix=f"ds-parity-{args.preset}-")
    ckpt = os.path.join(work, "ckpt")
    cfg = checkpoint.PRESETS[args.preset]()
    checkpoint.write_checkpoint(ckpt, cfg, dtype=args.weights_dtype, shards=args.shards,
                                seed=args.seed)
    artifact = os.path.join(work, "model.dsa")
    compile_cmd = [os.path.join(args.bin, "ds-compile"), ckpt, "-o", artifact,
                   "--kv-dtype", args.dtype, "--mla-form", args.mla_form,
                   "--target", args.target]
    if args.target == "cuda":
        compile_cmd += ["--gpu-arch", args.gpu_arch]
    compile_cmd += args.compile_arg
    device = ["--device", args.target]
    if args.routing:
        compile_cmd.append("--trace-routing")
    run(compile_cmd)

    rng = np.random.default_rng(args.seed + 1)
    vocab = cfg["vocab_size"]
    seq = rng.integers(2, vocab, size=args.prompt + args.steps).tolist()  # no bos/eos
    prompt, forced = seq[:args.prompt], seq[args.prompt:]

    activations = args.activations
    rounded = (runtime_bf16_dtypes() if args.target == "cpu" else ()) or ("BF16",)
    if activations == "auto":
        activations = "bf16" if args.target == "cpu" and runtime_bf16_dtypes() else "f32"
    ref = ReferenceModel.load(ckpt, activations, rounded)

    def reference(flips):
        # The reference stores its cache and rounds its GEMM inputs as the
        # compiled model does; one book lists the ties of both.
        book = TieBook(flips)
        cache = ref.new_cache(args.dtype, args.reference_cache_rounding,
                              args.reference_fp8_group, args.reference_fp8_max)
        cache.tie_window, cache.book = args.tie_window, book
        ref.input_tie_window, ref.book = args.input_tie_window, book
        logits = ref.forward(seq, 0, cache)
        book.routing = dict(ref.last_routing)  # the run's experts, for --routing
        return book, logits

    def matched(logits):
        """The reference with the rounding ties that best explain the
        compiled `logits` flipped (ds_testing/rounding_ties.py): (reference
        logits, state, flips). Searched down to the one-shot check's
        tolerance where that is the tighter: a tie left unflipped within
        --atol still moves a row by more than the two runs may differ."""
        return resolve_ties(reference, logits, args.atol, target=args.oneshot_atol)

    stepped = os.path.join(work, "stepped.npy")
    cmd = [os.path.join(args.bin, "ds-run"), artifact, "--weights", ckpt,
           "--prompt-tokens", ",".join(map(str, prompt)),
           "--force-tokens", ",".join(map(str, forced)), "--dump-logits", stepped] + device
    routing_file = os.path.join(work, "routing.json")
    if args.routing:
        cmd += ["--dump-routing", routing_file]
    run(cmd)
    got = np.load(stepped)
    # Row t: logits after token t of (prompt + forced); the last forced
    # token's logits are the final row.
    if got.shape != (len(seq), vocab):
        sys.exit(f"FAIL: logits shape {got.shape}, reference {(len(seq), vocab)}")
    # A bf16 / fp8 cache value or a bf16 GEMM input that f32 rounds the
    # other way moves its row, and a cache value every later row
    # (ds_testing/rounding_ties.py): those ties may round either way.
    ref_logits, state, flips = matched(got)
    ref_routing = state.routing
    err = np.abs(got - ref_logits)
    worst = np.unravel_index(err.argmax(), err.shape)
    status = "ok" if err.max() <= args.atol else "FAIL"
    tie_count = len({key for key, _ in state.ties})
    ties = (f", {len(flips)} of {tie_count} rounding ties rounded to the other neighbour"
            if tie_count else "")
    print(f"{status}: {args.preset} prompt+decode vs reference: max |diff| {err.max():.3g} "
          f"at row {worst[0]} (atol {args.atol}, {activations} activations{ties})")
    if status == "FAIL":
        sys.exit(1)

    oneshot = os.path.join(work, "oneshot.npy")
    run([os.path.join(args.bin, "ds-run"), artifact, "--weights", ckpt,
         "--prompt-tokens", ",".join(map(str, seq)), "--max-new-tokens", "0",
         "--dump-logits", oneshot] + device)
    whole = np.load(oneshot)
    d = np.abs(whole - got).max()
    moved = ""
    if d > args.oneshot_atol and state.ties:
        # The two runs sum in different orders, so a tie may round one way
        # in each: what they may differ by is then what the reference with
        # each run's ties differs by (each run within --atol of its own).
        whole_ref, _, whole_flips = matched(whole)
        whole_err = np.abs(whole - whole_ref).max()
        if whole_err > args.atol:
            sys.exit(f"FAIL: {args.preset} one-shot prefill vs reference: max |diff| "
                     f"{whole_err:.3g} (atol {args.atol})")
        d = np.abs((whole - got) - (whole_ref - ref_logits)).max()
        moved = (f", less the reference's difference between the runs' ties "
                 f"({len(whole_flips ^ flips)} rounded apart)")
    status = "ok" if d <= args.oneshot_atol else "FAIL"
    print(f"{status}: {args.preset} decode through the cache vs one-shot prefill: "
          f"max |diff| {d:.3g} (atol {args.oneshot_atol}{moved})")
    if status == "FAIL":
        sys.exit(1)

    if args.routing:
        with open(routing_file) as f:
            traced = json.load(f)
        # One record per (call, layer): concatenate the calls per layer.
        per_layer = {}
        for rec in traced:
            per_layer.setdefault(rec["layer"], []).extend(rec["experts"])
        for ordinal, L in enumerate(sorted(ref_routing)):
            ids = ref_routing[L]
            mine = per_layer.get(ordinal)
            if mine is None or len(mine) != len(ids):
                sys.exit(f"FAIL: layer {L}: {0 if mine is None else len(mine)} routed tokens "
                         f"traced, reference has {len(ids)}")
            for t, (a, b) in enumerate(zip(mine, ids.tolist())):
                if sorted(a) != sorted(b):
                    sys.exit(f"FAIL: layer {L} token {t}: experts {sorted(a)}, "
                             f"reference {sorted(b)}")
        print(f"ok: {args.preset} expert sets match the reference for "
              f"{len(ref_routing)} MoE layers x {len(seq)} tokens")


if __name__ == "__main__":
    main()
