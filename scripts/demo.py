#!/usr/bin/env python3
"""`make demo`: write the built-in tiny checkpoint, compile it, run it.

Prints the generated tokens, decode tokens/s and the KV-cache bytes per
token beside what a per-head K/V cache of the same model would need.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))


def run(cmd):
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args()
    bin_dir = os.path.join(os.path.abspath(args.build), "bin")
    work = args.out or tempfile.mkdtemp(prefix="ds-demo-")
    os.makedirs(work, exist_ok=True)
    ckpt = os.path.join(work, "checkpoint")
    artifact = os.path.join(work, "demo.dsa")
    stats = os.path.join(work, "stats.json")
    py = sys.executable

    run([py, os.path.join(ROOT, "test", "tools", "make_checkpoint.py"),
         "--preset", "demo", "--out", ckpt, "--dtype", "bf16"])
    run([os.path.join(bin_dir, "ds-compile"), ckpt, "-o", artifact, "-v",
         "--dump-ir-dir", os.path.join(work, "ir")])
    run([os.path.join(bin_dir, "ds-run"), artifact, "--weights", ckpt,
         "--prompt-tokens", "1,2,3,4,5,6,7,8", "--max-new-tokens", "16",
         "--stats-json", stats])

    with open(os.path.join(ckpt, "config.json")) as f:
        cfg = json.load(f)
    with open(stats) as f:
        st = json.load(f)
    layers = cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    # Multi-head attention caches a key and a value per head (head dim = v_head_dim).
    per_head = layers * 2 * heads * cfg["v_head_dim"] * 4
    latent = st["kv_cache_bytes_per_token"]
    print()
    print(f"decode: {st['decode_tokens']} tokens at {st['decode_tokens_per_second']:.1f} tokens/s "
          f"(prefill {st['prefill_tokens']} tokens in {st['prefill_seconds'] * 1e3:.1f} ms)")
    print(f"KV cache per token: {latent} bytes (latent {cfg['kv_lora_rank']} + rope "
          f"{cfg['qk_rope_head_dim']} values x {layers} layers); per-head K/V would need "
          f"{per_head} bytes ({per_head / latent:.1f}x)")
    print(f"IR after each stage: {os.path.join(work, 'ir')}")


if __name__ == "__main__":
    main()
