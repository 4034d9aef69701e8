#!/usr/bin/env python3
"""Builds everything the GPU benchmark needs, on a machine WITHOUT a GPU.

The GPU machine has no MLIR: artifacts are compiled here, and the runtime
(ds-run, libdsrt and its OpenBLAS) is packed beside them. Checkpoints are
not carried (size): bench/gpu/run.py regenerates them there from the same
configs and seeds, which gives the same bytes.

    make build && /usr/bin/python3 bench/gpu/prepare.py [--build build] [--arch sm_90]
    # then, on the GPU machine, from the repository root:
    bash bench/gpu/run.sh            # results in $OUT (or bench/gpu/out)

Writes bench/gpu/work/ (git-ignored): cases.json, *.dsa, runtime.tar.xz.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from ds_testing import checkpoint  # noqa: E402

def mla_widths():
    """DeepSeek's attention widths (latent 512 + rope 64, per head 128 nope,
    128 v) with everything else small: the shapes the production split-KV
    kernel is specialised for (16-byte loads of 576-wide bf16 rows), in a
    2-layer model (one dense, one MoE) the float64 reference can follow."""
    cfg = checkpoint.PRESETS["tiny_v3"]()
    cfg.update({"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4,
                "q_lora_rank": 64, "kv_lora_rank": 512, "qk_rope_head_dim": 64,
                "qk_nope_head_dim": 128, "v_head_dim": 128, "intermediate_size": 128,
                "moe_intermediate_size": 32, "vocab_size": 256,
                "max_position_embeddings": 16384,
                "rope_scaling": dict(cfg["rope_scaling"], original_max_position_embeddings=4096)})
    return cfg


def mla_fp8(name, form, prompt, seconds, reference=True):
    """A parity case of mla_widths() over the FP8 cache (tolerances: PARITY's
    comment on mla-fp8-600)."""
    return {"name": name, "config": mla_widths(), "dtype": "fp8", "form": form,
            "atol": 2e-3, "atol_cpu": 2e-3, "prompt": prompt, "steps": 8,
            "reference": reference, "seconds": seconds}


def preset(name):
    return checkpoint.PRESETS[name]()


def v3_routing():
    """DeepSeek-V3's routing shape (256 experts in 8 groups, top-4 groups,
    top-8, sigmoid + bias, normalised, x2.5) in the tiny V3 model: the GPU's
    block-per-token routing kernel at the width it is built for (a thread
    per expert, a warp per group)."""
    cfg = checkpoint.PRESETS["tiny_v3"]()
    cfg.update({"n_routed_experts": 256, "n_group": 8, "topk_group": 4,
                "num_experts_per_tok": 8, "moe_intermediate_size": 8})
    return cfg


def check_block_routing(compiler, ckpt, arch):
    """The CUDA artifact of `ckpt` must route with the block-per-token kernel
    (RoutingKernel.cpp marks it ds.block_per_token); a configuration that fell
    back to the generic one-thread-per-token mapping fails here, before any
    GPU time is spent."""
    out = ckpt + ".gpu.mlir"
    run([compiler, ckpt, "-o", out, "--target", "cuda", "--gpu-arch", arch, "--emit=gpu"])
    with open(out) as f:
        heads = [l for l in f if l.lstrip().startswith("func.func private @__ds_moe_route")]
    if not heads or not all("ds.block_per_token" in l for l in heads):
        sys.exit(f"prepare.py: {ckpt}: MoE routing is not the block-per-token GPU kernel")
    print(f"  {len(heads)} routing kernel(s), one block per token")


# Parity cases: teacher-forced prompt + decode, ds on the GPU against ds on
# the CPU (atol_cpu) and against the float64 reference (atol; the reference
# rounds a bf16 cache as the cache write does, so bf16 caches keep the f32
# tolerance). Tolerances, measured on the CPU path: f32 kernels ~1e-6 from
# the reference (3e-6 for the 512-wide naive chunked case, demo 2.5e-6);
# the GPU's ex2.approx / rsqrt.approx add ~1e-6 relative: 1e-3 leaves room
# for summation order over 4K rows without hiding a wrong row (an error
# there moves logits by >1e-2). With a bf16 cache of 576-wide rows, a
# latent that differs by 1e-7 can round to the neighbouring bf16 value, so
# the CPU measured 4.5e-4 against the reference at 600 tokens: 2e-3 there.
# bf16 weights round the activations to bf16 on the GPU only
# (cublasGemmEx): 5e-2.
#   prompt/steps: tokens; seconds: what the case may take on the GPU machine
#   (the run skips what its budget cannot fit); hf: also compare with
#   transformers' model of the same checkpoint (atol_hf, f32, no TF32).
PARITY = [
    {"name": "v3-f32", "config": preset("tiny_v3"), "dtype": "f32", "form": "auto",
     "atol": 1e-3, "atol_cpu": 1e-3, "hf": True, "atol_hf": 1e-3},
    {"name": "v3-bf16cache", "config": preset("tiny_v3"), "dtype": "bf16", "form": "auto",
     "atol": 1e-3, "atol_cpu": 1e-3},
    {"name": "v2lite-absorbed", "config": preset("tiny_v2_lite"), "dtype": "f32",
     "form": "absorbed", "atol": 1e-3, "atol_cpu": 1e-3, "hf": True, "atol_hf": 1e-3},
    {"name": "v2grouped-naive", "config": preset("tiny_v2_grouped"), "dtype": "f32",
     "form": "naive", "atol": 1e-3, "atol_cpu": 1e-3},
    {"name": "demo", "config": preset("demo"), "dtype": "f32", "form": "auto", "atol": 1e-3,
     "atol_cpu": 1e-3, "prompt": 200, "steps": 8},
    {"name": "v2lite-w16", "config": preset("tiny_v2_lite"), "dtype": "bf16", "form": "auto",
     "atol": 5e-2, "atol_cpu": 5e-2, "weights": "bf16"},
    # V3's routing shape on the block-per-token routing kernel ("routing":
    # prepare.py checks the artifact uses it; both artifacts trace their
    # expert choices and run.py wants the same set for every token and layer
    # on the GPU as on the CPU).
    {"name": "v3-routing", "config": v3_routing(), "dtype": "f32", "form": "auto",
     "atol": 1e-3, "atol_cpu": 1e-3, "routing": True, "compile": ["--trace-routing"],
     "seconds": 15},
    # The production decode kernel: V3 widths, bf16 cache, decode at 600
    # tokens of context = 3 splits (256-row slices), against the reference.
    {"name": "mla-bf16-600", "config": mla_widths(), "dtype": "bf16", "form": "auto",
     "atol": 2e-3, "atol_cpu": 2e-3, "prompt": 600, "steps": 8, "seconds": 40},
    # ... and at 4K: 16 splits; the float64 reference would take minutes
    # here, so GPU against CPU only (the CPU is checked against the
    # reference by the case above and test/Integration/CPU/parity.test).
    {"name": "mla-bf16-4k", "config": mla_widths(), "dtype": "bf16", "form": "auto",
     "atol": 2e-3, "atol_cpu": 2e-3, "prompt": 4000, "steps": 8, "reference": False,
     "seconds": 60},
    # Naive prefill over the context in chunks of 64 rows (partial attention
    # merged by log-sum-exp), a 300-token prompt = 5 chunks.
    {"name": "mla-naive-chunked", "config": mla_widths(), "dtype": "f32", "form": "naive",
     "compile": ["--attention-chunk=64"], "atol": 1e-3, "atol_cpu": 1e-3, "prompt": 300,
     "steps": 4, "seconds": 30},
    # The FP8 latent cache (FlashMLA's rows: 512 e4m3 in 4 groups of 128
    # with an f32 scale each, 64 bf16 rope) through the split-KV kernel at
    # 600 tokens (3 splits). The reference quantises rows as the cache write
    # does, but a latent 1e-7 away can round to the neighbouring e4m3 value
    # (a step of 1/8). Measured on an H200: 7.7e-5 against the reference,
    # up to 4.6e-4 against the CPU (mla-fp8-absorbed), so 2e-3; a wrong
    # scale or group moves the logits by > 1e-2 (check_parity.py's BREAK
    # cases on the CPU), and the cache write's zeroed low bytes (fixed in
    # CacheCodec.cpp) moved them by 2-3.7.
    mla_fp8("mla-fp8-600", "auto", 600, seconds=40),
    # The same rows through other kernels, to place a failure: one split
    # (a 28-token context), prefill and decode through the absorbed form
    # (the split-KV kernel for both), through the naive form (no split-KV
    # kernel at all: the cache is read by the generic kernels' e4m3 table),
    # and the smallest FP8 shape (2 groups of 128, rope 8) with its
    # reference.
    mla_fp8("mla-fp8-20", "auto", 20, seconds=10, reference=False),
    mla_fp8("mla-fp8-absorbed", "absorbed", 300, seconds=15, reference=False),
    mla_fp8("mla-fp8-naive", "naive", 300, seconds=15, reference=False),
    {"name": "fp8kv-v3", "config": preset("fp8kv_v3"), "dtype": "fp8", "form": "auto",
     "atol": 2e-3, "atol_cpu": 2e-3, "seconds": 10},
]
SMOKE = "v3-f32"

# The serving engine's ragged step on the GPU (GpuStepExecutor, @ragged_step
# with the paged split-KV kernel): a mixed batch (a chunked prefill beside
# decodes and short prompts, pages crossed, teacher-forced) on the GPU
# against the same batch on the CPU, every logits row. "gpu"/"cpu": the
# parity case whose artifact runs (or an artifact of its own, "compile"
# below); "cpu_executor": the CPU side's executor. The GPU step is absorbed
# for every sequence while the CPU step takes the naive form for long
# chunks, so the bf16 case compares with CPU sessions of an absorbed
# artifact: both read the bf16-rounded rows through the absorbed kernel.
# Tolerances as the parity cases with the same cache (1e-3 f32, 2e-3 bf16
# at V3 widths); a row read from the wrong page moves logits by > 1e-2.
#   prompts: prompt lengths; forced: fed tokens per request; budget:
#   max_num_batched_tokens (smaller than the longest prompt: chunked).
STEP = [
    # tiny_v3: 2 heads, tiles of 4 query rows span 2 tokens (folding).
    {"name": "step-v3-f32", "gpu": "v3-f32-cuda", "cpu": "v3-f32-cpu", "parity": "v3-f32",
     "cpu_executor": "step", "prompts": [40, 17, 6, 1], "forced": 8, "budget": 24,
     "atol": 1e-3},
    # V3 widths, f32 cache: 600 rows (3 splits of 256), 3 query rows a tile.
    {"name": "step-mla-f32", "gpu": "step-mla-f32-cuda", "cpu": "step-mla-f32-cpu",
     "parity": "mla-bf16-600", "cpu_executor": "step", "prompts": [600, 130, 64, 1],
     "forced": 6, "budget": 256, "atol": 1e-3,
     "compile": {"step-mla-f32-cuda": ["--dtype", "f32", "--target", "cuda"],
                 "step-mla-f32-cpu": ["--dtype", "f32", "--target", "cpu"]}},
    # V3 widths, bf16 cache (the production rows: 8 bf16 per 16-byte load).
    {"name": "step-mla-bf16", "gpu": "mla-bf16-600-cuda", "cpu": "step-mla-bf16-cpu",
     "parity": "mla-bf16-600", "cpu_executor": "session", "prompts": [600, 130, 64, 1],
     "forced": 6, "budget": 256, "atol": 2e-3,
     "compile": {"step-mla-bf16-cpu": ["--dtype", "bf16", "--mla-form", "absorbed",
                                       "--target", "cpu"]}},
]


def attention_config(heads):
    """One layer with DeepSeek's MLA shapes (latent 512 + rope 64, per-head
    128/64/128) and everything else tiny, so a decode step at long context
    is the attention kernel plus a fixed overhead."""
    with open(os.path.join(ROOT, "test", "Import", "configs", "deepseek-v2-lite.json")) as f:
        cfg = json.load(f)
    cfg.update({
        "num_hidden_layers": 1, "first_k_dense_replace": 1, "num_attention_heads": heads,
        "num_key_value_heads": heads, "hidden_size": 1024, "intermediate_size": 256,
        "vocab_size": 256, "bos_token_id": 0, "eos_token_id": 1,
        "max_position_embeddings": 65536,
    })
    return cfg


def run(cmd):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    args = ap.parse_args()
    compiler = os.path.join(args.build, "bin", "ds-compile")
    if not os.access(compiler, os.X_OK):
        sys.exit(f"prepare.py: {compiler} not found; run `make build` first")
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    scratch = os.path.join(work, "scratch")
    cases = {"arch": args.arch, "parity": [], "attention": [], "e2e": None, "smoke": None}

    for c in PARITY:
        ckpt = os.path.join(scratch, c["name"])
        cfg = c["config"]
        checkpoint.write_checkpoint(ckpt, cfg, dtype=c.get("weights", "f32"), seed=0)
        for target in ("cuda", "cpu"):
            out = os.path.join(work, f"{c['name']}-{target}.dsa")
            cmd = [compiler, ckpt, "-o", out, "--dtype", c["dtype"], "--mla-form", c["form"],
                   "--target", target] + c.get("compile", [])
            if target == "cuda":
                cmd += ["--gpu-arch", args.arch]
            run(cmd)
        if c.get("routing"):
            check_block_routing(compiler, ckpt, args.arch)
        cases["parity"].append(dict(c, seed=0, weights_dtype=c.get("weights", "f32"),
                                    prompt=c.get("prompt", 20), steps=c.get("steps", 8)))
    cases["smoke"] = SMOKE

    cases["step"] = []
    for c in STEP:
        ckpt = os.path.join(scratch, c["parity"])
        for name, flags in c.get("compile", {}).items():
            cmd = [compiler, ckpt, "-o", os.path.join(work, name + ".dsa")] + flags
            if "cuda" in flags:
                cmd += ["--gpu-arch", args.arch]
            run(cmd)
        cases["step"].append({k: v for k, v in c.items() if k != "compile"})

    # bf16 cache rows (1152 bytes a token and layer), then the FP8 rows
    # (656 bytes), which run.py measures last, after the end-to-end stages.
    for heads, kv in ((16, "bf16"), (128, "bf16"), (128, "fp8")):
        cfg = attention_config(heads)
        name = f"attn{heads}" + ("" if kv == "bf16" else f"-{kv}")
        path = os.path.join(scratch, f"{name}.json")
        os.makedirs(scratch, exist_ok=True)
        with open(path, "w") as f:
            json.dump(cfg, f)
        out = os.path.join(work, f"{name}.dsa")
        run([compiler, path, "-o", out, "--dtype", kv, "--target", "cuda",
             "--gpu-arch", args.arch])
        cases["attention"].append({"name": name, "heads": heads, "config": cfg, "kv": kv})

    lite = os.path.join(ROOT, "test", "Import", "configs", "deepseek-v2-lite.json")
    with open(lite) as f:
        cfg = json.load(f)
    run([compiler, lite, "-o", os.path.join(work, "v2lite.dsa"), "--dtype", "bf16",
         "--target", "cuda", "--gpu-arch", args.arch])
    cases["e2e"] = {"name": "v2lite", "config": cfg}

    with open(os.path.join(work, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)

    # The runtime: ds-run + libdsrt (its RUNPATH points into this build, so
    # run.sh sets LD_LIBRARY_PATH) and OpenBLAS, which the GPU image lacks.
    libs = [os.path.join(args.build, "lib", "libdsrt.so")]
    ldd = subprocess.run(["ldd", libs[0]], capture_output=True, text=True, check=True).stdout
    for line in ldd.splitlines():
        parts = line.split("=>")
        if len(parts) == 2 and any(n in parts[0] for n in ("openblas", "gfortran", "quadmath")):
            libs.append(parts[1].split("(")[0].strip())
    with tarfile.open(os.path.join(work, "runtime.tar.xz"), "w:xz") as tar:
        tar.add(os.path.join(args.build, "bin", "ds-run"), arcname="bin/ds-run")
        for lib in libs:
            tar.add(os.path.realpath(lib), arcname="lib/" + os.path.basename(lib))
    shutil.rmtree(scratch)
    total = sum(os.path.getsize(os.path.join(work, f)) for f in os.listdir(work))
    print(f"prepared {work}: {len(os.listdir(work))} files, {total / 2**20:.1f} MiB "
          f"(carry it with the device call: carry=['bench/gpu/work'])")


if __name__ == "__main__":
    main()
