#!/usr/bin/env python3
"""CPU kernels against the machine's own limits, in one run.

The run is --rounds interleaved rounds (default 3), each measuring the
GEMM rates and then every model between two read streams of its own;
each ratio pairs a model with its own round's GEMM rate and the better
of the streams around it, and the table gives the ratios' medians over
the rounds and their ranges (this shared VM's bandwidth and core speed
move by up to 2x between minutes).

For one random V3-shaped model stored as f32, bf16 and FP8 (e4m3, 128x128
block scales), with the weights read in place from the mapped checkpoint:

- prefill tok/s against the machine's GEMM rate for that dtype, measured
  in the same run (ds-cpu-bench gemm: a 256 x 4096 x 4096 product; the
  rate is the fastest of oneDNN (weights packed once, or plain), OpenBLAS
  sgemm and ds's own kernel for f32 and bf16; for FP8 ds's own kernel, no
  library here multiplying e4m3 on a CPU, with FP8 prefill against the
  bf16 rate printed beside it). Prefill's share = GEMM FLOPs
  per token (every linear layer, routed experts at top_k / E, lm_head for
  every prompt row as dsrt_session_prefill computes it; attention left out)
  x tok/s / rate. Beside it, prefill against its roofline: the least time
  the prompt's products can take, each at the slower of that GEMM rate
  and its weights' read from memory at the read stream's rate
  (prefill_bound_seconds; a routed expert's group of prompt x top_k / E
  rows is bound by its weights' read on AMX, so the GEMM rate alone asks
  for more than the memory can feed it). Weights that stay in the L3
  between repetitions (the bench shape's) can beat that read, and the
  figure pass 100%. Prefill as generation runs it (logits of the last
  row only) is shown beside it;
- decode tok/s against the read roofline: bandwidth of a multi-threaded
  read-only stream over 1 GiB (ds-cpu-bench read: the best of a loop of
  8-byte loads, one of vector loads and one of vector loads with a
  non-temporal prefetch ahead; the word loop alone, the stream before
  the twenty-sixth session, read 20-35% below the vector loads and put
  decode that much nearer its limit than it was) / bytes a decode step
  reads (the file's bytes of every tensor, routed experts at top_k / E, one
  embedding row, FP8 scales, plus the f32 latent cache; kv_b_proj too is
  read in place, by the runtime's per-head products). Beside it, decode
  against the same stream over the checkpoint's own pages (every tensor
  but the embedding, read by ds-cpu-bench model after decode through a
  second mapping of the file: the same page-cache pages): on this VM
  where a page lies moves its read rate by up to a third, so a fresh
  buffer's stream and the model's pages need not agree (WeightSpans.h);
- one-row products (decode's GEMVs) over 16 weights of 2048 x 2048 per
  dtype against a read-only stream over 256 MiB (ds-cpu-bench gemv): the
  kernels' share of the memory rate, apart from the model;
- peak RSS (VmHWM) against the file's tensor bytes, less what the process
  held before loading (libraries), and also less the latent cache, the
  activations buffer (every kernel's planned intermediates, the prompt's
  [rows, vocab] logits among them) and the benchmark's own logits buffer
  (every prompt row, which the caller owns): what is left is the weights'
  memory (the mapping's touched pages, f32 copies of the 1-D tensors) plus
  everything else the runtime holds that no term above names: per-thread
  GEMM buffers, the touched pages of the session's host logits for
  generation (only the last row of a [chunk, vocab] buffer is written),
  the artifact's code, heap overhead. Pages of the mapping never touched (embedding rows of
  tokens the prompt does not hold) are not resident, so the figure can
  be below 1 (f32: its embedding is 5% of the file); and load time.
  Artifacts are compiled afresh on every run: an artifact kept from an
  older compiler (one whose embedding and kv_b_proj were f32 copies)
  measured 1.16 (bf16) and 1.31 (FP8) here.

Before the rounds each checkpoint is dropped from the page cache, so the
first run reads it back as a served model's checkpoint is read: in 2 MiB
folios where the kernel caches the file system's files in large folios
(a file just written sits in 4 KiB pages, from which decode at V3's
widths ran up to 1.26x slower). The "2 MiB pages" column is the share of
the weights' touched pages the kernel mapped so (smaps);
--keep-page-cache measures the cache as it is.

--isa avx2 measures the table as an AVX2 machine would run it: ds's
kernels (DSRT_CPU_ISA), oneDNN (ONEDNN_MAX_CPU_ISA) and OpenBLAS
(OPENBLAS_CORETYPE=Haswell) all held to AVX2 and FMA, so the reference
rates are the libraries' own AVX2 code on this CPU. --isa avx512 does the
same for AVX-512 without BF16 or VBMI (Skylake-SP, Cascade Lake; Ice Lake
has VBMI but no BF16 and runs this set too): AVX512_CORE, SkylakeX.

Prints a Markdown table (bench/RESULTS.md keeps a run with its command).
Usage: /usr/bin/python3 bench/cpu_kernels.py [--bin build/bin] [--work DIR]
       [--shape bench|v3-width] [--rounds N] [--reps N] [--isa avx2|avx512]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from ds_testing import checkpoint  # noqa: E402


def config(shape="bench"):
    cfg = checkpoint.PRESETS["demo"]()
    if shape == "v3-width":
        # DeepSeek-V3's widths (hidden 7168, 128 heads, q_lora 1536,
        # kv_lora 512, rope 64, nope 128, v 128, expert width 2048) in two
        # MoE layers of 8 experts, top 1 (an expert gets 32 of 256 prompt
        # rows on average, as in the bench shape), and a vocabulary of
        # 8192: 1.29 G parameters, 5.2 GB in f32.
        cfg.update(vocab_size=8192, hidden_size=7168, intermediate_size=18432,
                   moe_intermediate_size=2048, num_hidden_layers=2,
                   first_k_dense_replace=0, num_attention_heads=128, q_lora_rank=1536,
                   kv_lora_rank=512, qk_nope_head_dim=128, qk_rope_head_dim=64,
                   v_head_dim=128, n_routed_experts=8, num_experts_per_tok=1, n_group=1,
                   topk_group=1, n_shared_experts=1, max_position_embeddings=4096)
        return cfg
    cfg.update(vocab_size=8192, hidden_size=1024, intermediate_size=2048,
               moe_intermediate_size=256, num_hidden_layers=6, first_k_dense_replace=1,
               num_attention_heads=8, q_lora_rank=384, kv_lora_rank=256,
               qk_nope_head_dim=64, qk_rope_head_dim=32, v_head_dim=64,
               n_routed_experts=32, num_experts_per_tok=4, n_group=4, topk_group=2,
               n_shared_experts=1, max_position_embeddings=4096)
    return cfg


def write_large_checkpoint(out_dir, cfg, dtype, seed):
    """checkpoint.write_checkpoint's files, byte for byte, for a model too
    large for it (it holds every tensor three times over, 21 GB for
    v3-width in f32): the header first, then each tensor drawn (in
    random_weights' order, so its values), encoded and written at its
    offset one at a time."""
    from ds_testing import safetensors as st
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(cfg)
    shapes = checkpoint.tensor_shapes(cfg)
    itemsize = {"F32": 4, "BF16": 2, "F8_E4M3": 1}
    header = {}
    for name, (shape, kind) in shapes.items():
        sdt = checkpoint.stored_dtype(kind, dtype)
        header[name] = (sdt, list(shape))
        if sdt == "F8_E4M3":
            header[name + "_scale_inv"] = ("F32", [-(-d // checkpoint.FP8_BLOCK) for d in shape])
    offsets, offset = {}, 0
    for name in sorted(header):  # st.build's layout
        sdt, shape = header[name]
        n = itemsize[sdt] * int(np.prod(shape))
        offsets[name] = {"dtype": sdt, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps({"__metadata__": {"format": "pt"}, **offsets}, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    base = 8 + len(text)
    rng = np.random.default_rng(seed)
    with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text.encode())
        for name, (shape, kind) in shapes.items():
            w = checkpoint.random_tensor(rng, shape, kind)
            sdt = header[name][0]
            parts = {name: st.encode(w, sdt)} if sdt != "F8_E4M3" else None
            if parts is None:
                bits, scale = checkpoint.quantize_fp8_blocks(w)
                parts = {name: bits.tobytes(), name + "_scale_inv": scale.tobytes()}
            for part, raw in parts.items():
                f.seek(base + offsets[part]["data_offsets"][0])
                f.write(raw)
            del w, parts
    if dtype == "fp8":
        cfg["quantization_config"] = dict(checkpoint.FP8_QUANTIZATION_CONFIG)
    cfg["torch_dtype"] = "float32" if dtype == "f32" else "bfloat16"
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)


def drop_page_cache(ckpt):
    """Writes back and drops the checkpoint's files from the page cache
    (pages another process maps stay)."""
    for name in sorted(os.listdir(ckpt)):
        if name.endswith(".safetensors"):
            fd = os.open(os.path.join(ckpt, name), os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


# Environment for every ds-cpu-bench run (--isa).
ISA_ENV = {}
ISA_ENVS = {
    "avx2": {"DSRT_CPU_ISA": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "OPENBLAS_CORETYPE": "Haswell"},
    "avx512": {"DSRT_CPU_ISA": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
               "OPENBLAS_CORETYPE": "SkylakeX"},
    # AVX-512 with BF16 but no AMX: on an AMX machine, the table its CPU
    # would give without the tiles (ds and oneDNN both held to it).
    "avx512vbmi": {"DSRT_CPU_ISA": "avx512vbmi",
                   "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
}


def probe(bin_dir, *args):
    env = dict(os.environ, **ISA_ENV)
    # oneDNN's OpenMP threads follow the runtime pool's count.
    if "DSRT_NUM_THREADS" in env:
        env.setdefault("OMP_NUM_THREADS", env["DSRT_NUM_THREADS"])
    out = subprocess.run([os.path.join(bin_dir, "ds-cpu-bench"), *map(str, args)],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out)


def read_stream(bin_dir):
    """Bytes per second of the read roofline (ds-cpu-bench read: the best
    of its loops over 1 GiB)."""
    return probe(bin_dir, "read", 1024, 3)["read_gbps"] * 1e9


def reference_rates(gemm):
    """The machine's GEMM rate per dtype: the fastest of the libraries here
    (oneDNN with its weights packed once or plain, OpenBLAS sgemm) and
    ds's own kernel. FP8: no library here multiplies e4m3 on a CPU, so
    ds's FP8 kernel is the reference, and the bf16 rate (what the
    hardware can do once e4m3 is widened) is printed beside it. bf16 and
    FP8 take the f32 rate where it is higher (bf16 or e4m3 widened to f32:
    an AVX2 machine's case)."""
    dnnl = gemm.get("onednn") or {}
    f32 = {"OpenBLAS sgemm": gemm["openblas_sgemm_gflops"],
           "oneDNN f32": max(dnnl.get("f32_packed_gflops", 0), dnnl.get("f32_plain_gflops", 0)),
           "ds f32": gemm["ds_f32_gflops"]}
    # bf16 and e4m3 weights widened to f32 can run at the f32 libraries'
    # rate (on AVX2, which has no bf16 arithmetic, that rate is theirs).
    bf16 = {"oneDNN bf16": max(dnnl.get("bf16_packed_gflops", 0),
                               dnnl.get("bf16_plain_gflops", 0)),
            "ds bf16": gemm["ds_bf16_gflops"], **f32}
    fp8 = {"ds FP8": gemm["ds_fp8_gflops"], **f32}
    rates, by = {}, {}
    for dtype, options in (("f32", f32), ("bf16", bf16), ("fp8", fp8)):
        by[dtype] = max(options, key=options.get)
        rates[dtype] = options[by[dtype]]
    return rates, by


def tensor_bytes(ckpt):
    """{name: (dtype, shape, bytes)} from the safetensors headers."""
    out = {}
    for f in os.listdir(ckpt):
        if not f.endswith(".safetensors"):
            continue
        with open(os.path.join(ckpt, f), "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        for name, e in header.items():
            if name != "__metadata__":
                b, end = e["data_offsets"]
                out[name] = (e["dtype"], e["shape"], end - b)
    return out


def products(cfg, shapes):
    """(name, shape, share of the rows) of every linear layer's product,
    lm_head included: routed experts get top_k / E of the rows."""
    E, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    for name, (shape, kind) in shapes.items():
        if kind not in ("linear", "head") or len(shape) != 2:
            continue
        routed = ".experts." in name and ".shared_experts." not in name
        yield name, shape, k / E if routed else 1.0


def gemm_flops_per_token(cfg, shapes, prompt):
    return sum(2.0 * shape[0] * shape[1] * share for _, shape, share in products(cfg, shapes))


def prefill_bound_seconds(cfg, shapes, tensors, prompt, rate_gflops, read_bw):
    """The least time a prefill of `prompt` tokens can take on this machine:
    each product (gemm_flops_per_token's) at the slower of the GEMM rate and
    its weights' read (file bytes, FP8 scales included, once a prefill, at
    the read stream's rate), routed experts with their average share of
    the rows (prompt x top_k / E). A product whose weights arrive slower
    than the tiles would consume them (an expert's group of 32 rows on
    AMX) is bound by the read, whatever the GEMM rate."""
    total = 0.0
    for name, shape, share in products(cfg, shapes):
        nbytes = tensors[name][2] + tensors.get(name + "_scale_inv", (0, 0, 0))[2]
        total += max(2.0 * shape[0] * shape[1] * prompt * share / (rate_gflops * 1e9),
                     nbytes / read_bw)
    return total


def dnnl_rate(gemm, dtype):
    d = gemm["onednn"]
    return f"{d[dtype + '_packed_gflops']:.1f} / {d[dtype + '_plain_gflops']:.1f}"


def decode_bytes(cfg, tensors, ctx):
    E, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    total = 0.0
    for name, (_, shape, nbytes) in tensors.items():
        if name == "model.embed_tokens.weight":
            nbytes = nbytes / shape[0]
        elif ".experts." in name and ".shared_experts." not in name:
            nbytes = nbytes * k / E
        total += nbytes
    cache = cfg["num_hidden_layers"] * (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * 4 * ctx
    return total + cache


def model_rss(r):
    """Peak RSS less the process before loading, the latent cache, the
    activations buffer and the benchmark's own logits buffer."""
    return (r["peak_rss_bytes"] - r["baseline_rss_bytes"] - r["cache_bytes"]
            - r["activation_bytes"] - r["logits_buffer_bytes"])


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def measure_round(args, cfg, shapes, models):
    """One round: the GEMM rates, then every model between two read
    streams of its own. The ratios pair each model with references
    measured within the same half minute: on a shared machine the memory
    bandwidth and the cores' speed change by up to 2x from one minute to
    the next (one 3-round run saw the stream at 43 and 82 GB/s)."""
    gemm = probe(args.bin, "gemm", 256, 4096, 4096, 3)
    rates, rate_by = reference_rates(gemm)
    rows, reads = [], []
    for dtype, art, ckpt, tensors in models:
        bw = read_stream(args.bin)
        m = probe(args.bin, "model", art, ckpt, args.prompt, args.steps, args.reps)
        bw_after = read_stream(args.bin)
        reads += [bw / 1e9, bw_after / 1e9]
        read_bw = max(bw, bw_after)  # the better (a roofline may only be too high)
        bound = prefill_bound_seconds(cfg, shapes, tensors, args.prompt, rates[dtype], read_bw)
        rows.append(dict(dtype=dtype, file_bytes=sum(b for _, _, b in tensors.values()),
                         rate=rates[dtype], bf16_rate=rates["bf16"],
                         prefill_bound_tps=args.prompt / bound,
                         flops=gemm_flops_per_token(cfg, shapes, args.prompt),
                         step_bytes=decode_bytes(cfg, tensors, args.prompt + args.steps / 2),
                         read_bw=read_bw, **m))
    f32 = rows[0]
    for r in rows:
        r["roofline"] = r["read_bw"] / r["step_bytes"]
        r["prefill_share"] = r["prefill_tokens_per_second"] * r["flops"] / (r["rate"] * 1e9)
        r["of_prefill_bound"] = r["prefill_tokens_per_second"] / r["prefill_bound_tps"]
        r["of_roofline"] = r["decode_tokens_per_second"] / r["roofline"]
        r["of_own_read"] = (r["decode_tokens_per_second"] * r["step_bytes"]
                            / (r["weights_read_gbps"] * 1e9))
        r["prefill_vs_f32"] = r["prefill_tokens_per_second"] / f32["prefill_tokens_per_second"]
        r["decode_vs_f32"] = r["decode_tokens_per_second"] / f32["decode_tokens_per_second"]
        r["huge_share"] = r["weights_huge_page_bytes"] / max(r["weights_resident_bytes"], 1)
        r["rss_ratio"] = (r["peak_rss_bytes"] - r["baseline_rss_bytes"]) / r["file_bytes"]
        r["model_rss_ratio"] = model_rss(r) / r["file_bytes"]
        r["fp8_vs_bf16_rate"] = (r["prefill_tokens_per_second"] * r["flops"]
                                 / (r["bf16_rate"] * 1e9))
    return dict(gemm=gemm, rates=rates, rate_by=rate_by, read_gbps=reads,
                models=rows)


def spread(rounds, dtype, key, fmt):
    """Median over the rounds, then the range: "66% (59-76%)"."""
    v = [next(r for r in rnd["models"] if r["dtype"] == dtype)[key] for rnd in rounds]
    if len(v) == 1:
        return fmt(v[0])
    return f"{fmt(median(v))} ({fmt(min(v))}-{fmt(max(v))})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--work", default=None)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds of references and models; the table "
                         "gives each ratio's median over them and its range")
    ap.add_argument("--shape", default="bench", choices=["bench", "v3-width"],
                    help="bench: the 625 MB f32 model the goal table uses; v3-width: "
                         "DeepSeek-V3's layer widths in two MoE layers (5.2 GB f32, "
                         "config() says what it keeps)")
    ap.add_argument("--keep-page-cache", action="store_true",
                    help="measure the checkpoints' page cache as it is (by default "
                         "they are dropped from it and read back by the first run)")
    ap.add_argument("--isa", choices=["detected", *ISA_ENVS], default="detected",
                    help="avx2: ds, oneDNN and OpenBLAS held to AVX2 + FMA (an AVX2 "
                         "machine's table on this CPU); avx512: to AVX-512 without "
                         "BF16 or VBMI; avx512vbmi: to AVX-512 with BF16 and VBMI "
                         "but no AMX (an AMX machine's table without its tiles)")
    args = ap.parse_args()
    ISA_ENV.update(ISA_ENVS.get(args.isa, {}))
    work = args.work or tempfile.mkdtemp(prefix="ds-cpu-kernels-")
    cfg = config(args.shape)
    shapes = checkpoint.tensor_shapes(cfg)

    models = []
    for dtype in ("f32", "bf16", "fp8"):
        ckpt = os.path.join(work, f"ckpt-{dtype}")
        if not os.path.exists(os.path.join(ckpt, "config.json")):
            print(f"writing the {dtype} checkpoint in {ckpt}", file=sys.stderr, flush=True)
            if args.shape == "bench":
                checkpoint.write_checkpoint(ckpt, cfg, dtype=dtype, seed=2)
            else:
                write_large_checkpoint(ckpt, cfg, dtype, seed=2)
        art = os.path.join(work, f"model-{dtype}.dsa")
        # Always this compiler's artifact (a few seconds): one kept from an
        # older build measures that build's bindings, not this one's.
        subprocess.run([os.path.join(args.bin, "ds-compile"), ckpt, "-o", art], check=True)
        models.append((dtype, art, ckpt, tensor_bytes(ckpt)))
        if not args.keep_page_cache:
            drop_page_cache(ckpt)
    gemv = probe(args.bin, "gemv", 2048, 2048, 16, 3)
    rounds = []
    for i in range(max(1, args.rounds)):
        print(f"round {i + 1} of {max(1, args.rounds)}", file=sys.stderr, flush=True)
        rounds.append(measure_round(args, cfg, shapes, models))
    first = rounds[0]
    gemm, rate_by = first["gemm"], first["rate_by"]
    reads = [g for rnd in rounds for g in rnd["read_gbps"]]
    pct = lambda v: f"{v:.0%}"
    tok = lambda v: f"{v:.0f}"
    lines = [f"{len(rounds)} rounds (medians, ranges in brackets). GEMM 256x4096x4096, first round "
             f"({gemm['threads']} threads, ds kernels: {gemm['isa']}"
             + (f", {gemm['tiles']} tiles for bf16/FP8 ({gemm['tiles_by']}: bf16 tile "
                f"{gemm['tile_l1_bf16_gflops']:.0f}, f32 tile {gemm['tile_l1_f32_gflops']:.0f} "
                f"GFLOP/s a thread in L1)" if "tiles" in gemm else "")
             + (f", stream prefetch {gemm['prefetch']}" if "prefetch" in gemm else "")
             + "): "
             f"OpenBLAS sgemm {gemm['openblas_sgemm_gflops']:.1f} GFLOP/s, "
             f"ds f32 {gemm['ds_f32_gflops']:.1f}, bf16 {gemm['ds_bf16_gflops']:.1f}, "
             f"FP8 {gemm['ds_fp8_gflops']:.1f}; "
             + (f"oneDNN f32 {dnnl_rate(gemm, 'f32')}, bf16 {dnnl_rate(gemm, 'bf16')} "
                f"(weights packed once / plain). " if gemm.get("onednn") else
                "oneDNN: not built in (libdnnl-dev missing). ")
             + f"Reference rates: f32 {rate_by['f32']}, bf16 {rate_by['bf16']}, FP8 {rate_by['fp8']}; "
             f"per round: f32 " + " / ".join(f"{r['rates']['f32']:.0f}" for r in rounds)
             + ", bf16 " + " / ".join(f"{r['rates']['bf16']:.0f}" for r in rounds)
             + ", FP8 " + " / ".join(f"{r['rates']['fp8']:.0f}" for r in rounds)
             + f" GFLOP/s. FP8 prefill / bf16 rate = {{fp8_vs_bf16}}. Read stream: "
             f"{min(reads):.1f}-{max(reads):.1f} GB/s over the rounds.", "",
             f"GEMV (one row, 16 x 2048x2048 weights, {gemv['threads']} threads) against a "
             f"read stream over the f32 weights' 256 MiB ({gemv['read_gbps_f32_bytes']:.1f} GB/s; "
             f"the FP8 weights' 64 MiB partly fit the L3: {gemv['read_gbps_fp8_bytes']:.1f}): "
             f"f32 {gemv['f32_gbps']:.1f} GB/s ({gemv['f32_gbps'] / gemv['read_gbps_f32_bytes']:.0%}), "
             f"bf16 {gemv['bf16_gbps']:.1f} ({gemv['bf16_gbps'] / gemv['read_gbps_f32_bytes']:.0%}), "
             f"FP8 {gemv['fp8_gbps']:.1f} ({gemv['fp8_gbps'] / gemv['read_gbps_f32_bytes']:.0%}).", "",
             "| weights | file tensors | load | prefill tok/s (all rows' logits) "
             "| prefill / GEMM rate of its round | prefill / its roofline "
             "| vs f32 | prefill tok/s (last row's logits) "
             "| decode tok/s | of the read roofline around it "
             "| of its weights' own read | decode vs f32 "
             "| weights in 2 MiB pages | peak RSS (process before load) "
             "| (RSS - before) / file | (RSS - before - cache - activations - logits) / file |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    times = lambda v: f"{v:.2f}x"
    for r in first["models"]:
        d = r["dtype"]
        lines.append(
            f"| {d} | {r['file_bytes'] / 2**20:.0f} MiB | {r['load_seconds']:.2f} s "
            f"| {spread(rounds, d, 'prefill_tokens_per_second', tok)} "
            f"| {spread(rounds, d, 'prefill_share', pct)} "
            f"| {spread(rounds, d, 'of_prefill_bound', pct)} "
            f"| {spread(rounds, d, 'prefill_vs_f32', times)} "
            f"| {spread(rounds, d, 'prefill_last_row_tokens_per_second', tok)} "
            f"| {spread(rounds, d, 'decode_tokens_per_second', lambda v: f'{v:.1f}')} "
            f"| {spread(rounds, d, 'of_roofline', pct)} "
            f"| {spread(rounds, d, 'of_own_read', pct)} "
            f"| {spread(rounds, d, 'decode_vs_f32', times)} "
            f"| {spread(rounds, d, 'huge_share', pct)} "
            f"| {r['peak_rss_bytes'] / 2**20:.0f} MiB ({r['baseline_rss_bytes'] / 2**20:.0f}) "
            f"| {spread(rounds, d, 'rss_ratio', lambda v: f'{v:.2f}')} "
            f"| {spread(rounds, d, 'model_rss_ratio', lambda v: f'{v:.2f}')} |")
    lines[0] = lines[0].replace("{fp8_vs_bf16}", spread(rounds, "fp8", "fp8_vs_bf16_rate", pct))
    print("\n".join(lines))
    with open(os.path.join(work, "cpu_kernels.json"), "w") as out:
        print(json.dumps({"gemv": gemv, "rounds": rounds}), file=out)


if __name__ == "__main__":
    main()
