#!/usr/bin/env python3
"""Everything that needs a GPU, in one run, from bench/gpu/prepare.py's work
folder (no MLIR needed here). Prints a table last and writes RESULTS-gpu.md
(+ logs) into --out.

  1. device facts and the measured device-to-device copy bandwidth (torch);
  2. parity: ds-run --device cuda, teacher-forced, against the float64
     reference of test/tools/ds_testing, and against ds-run on the CPU;
  3. decode attention over the latent cache at 1K..32K context: step time
     minus the step time at context 1 (the rest of the 1-layer model), as
     cache bytes per second, against the copy bandwidth;
  4. end-to-end batch-1 decode on a random V2-Lite-sized bf16 checkpoint
     against the roofline (bytes a step must read / copy bandwidth), and
     against Hugging Face transformers on the same checkpoint if it loads.

Run through bench/gpu/run.sh (unpacks the runtime, sets library paths).
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from ds_testing import checkpoint  # noqa: E402
from ds_testing.reference import ReferenceModel  # noqa: E402

CONTEXTS = [1024, 2048, 4096, 8192, 16384, 32768]
LOG = []


def log(msg):
    print(msg, flush=True)
    LOG.append(msg)


def ds_run(args, dsrun, timeout=900):
    cmd = [dsrun] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


def copy_bandwidth():
    """Bytes read + written per second by a 4 GiB device-to-device copy."""
    import torch
    n = 1 << 30  # floats: 4 GiB
    a = torch.empty(n, dtype=torch.float32, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        b.copy_(a)
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) / 1e3)
    del a, b
    torch.cuda.empty_cache()
    return 2 * 4 * n / float(np.median(times))


def parity(case, work, scratch, dsrun):
    ckpt = os.path.join(scratch, case["name"])
    checkpoint.write_checkpoint(ckpt, case["config"], dtype=case["weights_dtype"],
                                seed=case["seed"])
    rng = np.random.default_rng(case["seed"] + 1)
    vocab = case["config"]["vocab_size"]
    seq = rng.integers(2, vocab, size=28).tolist()
    prompt, forced = seq[:20], seq[20:]
    ref = ReferenceModel.load(ckpt)
    want = ref.forward(seq, 0, ref.new_cache())
    rows = {}
    for target in ("cuda", "cpu"):
        out = os.path.join(scratch, f"{case['name']}-{target}.npy")
        ds_run([os.path.join(work, f"{case['name']}-{target}.dsa"), "--weights", ckpt,
                "--device", target, "--prompt-tokens", ",".join(map(str, prompt)),
                "--force-tokens", ",".join(map(str, forced)), "--dump-logits", out], dsrun)
        rows[target] = np.load(out)
    vs_ref = float(np.abs(rows["cuda"] - want).max())
    vs_cpu = float(np.abs(rows["cuda"] - rows["cpu"]).max())
    ok = vs_ref <= case["atol"]
    return {"case": case["name"], "max_vs_reference": vs_ref, "max_vs_cpu": vs_cpu,
            "atol": case["atol"], "ok": ok}


def decode_seconds(artifact, ckpt, dsrun, start, steps, scratch):
    stats = os.path.join(scratch, "stats.json")
    ds_run([artifact, "--weights", ckpt, "--device", "cuda", "--prompt-tokens", "5",
            "--max-new-tokens", steps, "--start-position", start,
            "--max-context", start + steps + 8, "--stats-json", stats], dsrun)
    with open(stats) as f:
        s = json.load(f)
    return s["decode_seconds"] / max(s["decode_tokens"], 1)


def attention(case, work, scratch, dsrun, bw):
    ckpt = os.path.join(scratch, case["name"])
    checkpoint.write_checkpoint(ckpt, case["config"], dtype="bf16", seed=0)
    artifact = os.path.join(work, case["name"] + ".dsa")
    base = decode_seconds(artifact, ckpt, dsrun, 0, 64, scratch)
    width = case["config"]["kv_lora_rank"] + case["config"]["qk_rope_head_dim"]
    out = []
    for ctx in CONTEXTS:
        t = decode_seconds(artifact, ckpt, dsrun, ctx, 64, scratch)
        attn = max(t - base, 1e-9)
        bytes_read = ctx * width * 2  # bf16 cache rows, one layer
        out.append({"heads": case["heads"], "context": ctx, "step_ms": t * 1e3,
                    "attention_ms": attn * 1e3, "GB_per_s": bytes_read / attn / 1e9,
                    "of_copy_bw": bytes_read / attn / bw})
    return out


def active_params(cfg):
    """Parameters one decode token reads: attention + dense MLPs, the shared
    and top-k routed experts of MoE layers, the router, norms, lm_head (the
    embedding is one row)."""
    k = cfg["num_experts_per_tok"]
    total = 0
    for name, (shape, kind) in checkpoint.tensor_shapes(cfg).items():
        size = int(np.prod(shape))
        if "embed_tokens" in name:
            size = shape[-1]
        elif ".experts." in name and int(name.split(".experts.")[1].split(".")[0]) >= k:
            size = 0  # k routed experts per MoE layer (which ones does not matter)
        total += size
    return total


def write_random_bf16(cfg, out, seed=0):
    """A random bf16 checkpoint of `cfg`, drawn on the GPU with torch and
    written shard by shard (numpy would take minutes at this size)."""
    import torch
    from safetensors.torch import save_file
    if os.path.exists(os.path.join(out, "model.safetensors.index.json")):
        return
    os.makedirs(out, exist_ok=True)
    g = torch.Generator(device="cuda").manual_seed(seed)
    shard, shard_bytes, index, n = {}, 0, {}, 0

    def flush():
        nonlocal shard, shard_bytes, n
        if shard:
            name = f"model-{n:05d}.safetensors"
            save_file(shard, os.path.join(out, name), metadata={"format": "pt"})
            for t in shard:
                index[t] = name
            shard, shard_bytes, n = {}, 0, n + 1

    for name, (shape, kind) in checkpoint.tensor_shapes(cfg).items():
        w = torch.randn(shape, generator=g, device="cuda", dtype=torch.float32)
        if kind == "norm":
            w = 1.0 + 0.1 * w
        elif kind == "bias":
            w = 0.1 * w
        elif kind != "embed":
            w = w / float(np.sqrt(shape[-1]))
        dt = torch.float32 if kind == "bias" else torch.bfloat16
        shard[name] = w.to(dt).cpu().contiguous()
        shard_bytes += shard[name].numel() * shard[name].element_size()
        if shard_bytes > (2 << 30):
            flush()
    flush()
    cfg = dict(cfg, torch_dtype="bfloat16")
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": index}, f)


def hf_decode_tokens_per_second(ckpt, steps=64):
    import torch
    import transformers
    model = transformers.AutoModelForCausalLM.from_pretrained(
        ckpt, torch_dtype=torch.bfloat16, device_map="cuda")
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12]], device="cuda")
    model.generate(ids, max_new_tokens=4, do_sample=False)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(ids, max_new_tokens=steps, min_new_tokens=steps, do_sample=False)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return (out.shape[1] - ids.shape[1]) / dt, transformers.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "out"))
    ap.add_argument("--scratch", default="/tmp/ds-gpu-bench")
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.scratch, exist_ok=True)
    dsrun = os.path.join(args.scratch, "runtime", "bin", "ds-run")
    with open(os.path.join(args.work, "cases.json")) as f:
        cases = json.load(f)
    results = {"device": None, "copy_GBps": None, "parity": [], "attention": [], "e2e": None,
               "errors": []}

    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                          "--format=csv,noheader"], capture_output=True, text=True)
    results["device"] = smi.stdout.strip()
    log(f"device: {results['device']}")
    bw = copy_bandwidth()
    results["copy_GBps"] = bw / 1e9
    log(f"device-to-device copy: {bw / 1e9:.0f} GB/s (read + write)")

    for case in cases["parity"]:
        try:
            r = parity(case, args.work, args.scratch, dsrun)
            results["parity"].append(r)
            log(f"parity {r['case']}: max |gpu - ref| {r['max_vs_reference']:.2e} "
                f"(atol {r['atol']}), max |gpu - cpu| {r['max_vs_cpu']:.2e} "
                f"{'ok' if r['ok'] else 'FAIL'}")
        except Exception as e:  # one failing case must not hide the others
            results["errors"].append(f"parity {case['name']}: {e}")
            log(f"parity {case['name']}: ERROR {e}")

    for case in cases["attention"]:
        try:
            for r in attention(case, args.work, args.scratch, dsrun, bw):
                results["attention"].append(r)
                log(f"attention heads={r['heads']} ctx={r['context']}: step "
                    f"{r['step_ms']:.3f} ms, attention {r['attention_ms']:.3f} ms, "
                    f"{r['GB_per_s']:.0f} GB/s = {100 * r['of_copy_bw']:.0f}% of copy")
        except Exception as e:
            results["errors"].append(f"attention {case['name']}: {e}")
            log(f"attention {case['name']}: ERROR {e}")

    if not args.skip_e2e:
        try:
            cfg = cases["e2e"]["config"]
            ckpt = os.path.join(args.scratch, "v2lite-ckpt")
            t0 = time.time()
            write_random_bf16(cfg, ckpt)
            log(f"random V2-Lite-sized bf16 checkpoint: {time.time() - t0:.0f} s")
            t = decode_seconds(os.path.join(args.work, "v2lite.dsa"), ckpt, dsrun, 0, 64,
                               args.scratch)
            params = active_params(cfg)
            cache = cfg["num_hidden_layers"] * (cfg["kv_lora_rank"] + cfg["qk_rope_head_dim"]) * 2
            roof_bf16 = bw / (params * 2 + cache)
            roof_f32 = bw / (params * 4 + cache)
            e2e = {"tokens_per_s": 1 / t, "active_params": params,
                   "roofline_bf16_weights": roof_bf16, "roofline_f32_weights": roof_f32}
            log(f"v2lite decode: {1 / t:.1f} tok/s; roofline {roof_bf16:.0f} tok/s with bf16 "
                f"weights ({100 / t / roof_bf16:.0f}%), {roof_f32:.0f} tok/s with the f32 "
                f"weights ds binds today ({100 / t / roof_f32:.0f}%)")
            try:
                hf, ver = hf_decode_tokens_per_second(ckpt)
                e2e.update(hf_tokens_per_s=hf, transformers=ver)
                log(f"transformers {ver}: {hf:.1f} tok/s; ds / transformers = {1 / t / hf:.2f}")
            except Exception as e:
                e2e["hf_error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
                log(f"transformers: not run ({e2e['hf_error']})")
            results["e2e"] = e2e
        except Exception as e:
            results["errors"].append(f"e2e: {e}")
            log(f"e2e: ERROR {e}")

    with open(os.path.join(args.out, "gpu-results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "RESULTS-gpu.md"), "w") as f:
        f.write("# GPU results (bench/gpu/run.sh)\n\n```\n" + "\n".join(LOG) + "\n```\n")
    failed = [p for p in results["parity"] if not p["ok"]] or results["errors"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
