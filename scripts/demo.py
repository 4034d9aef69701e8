#!/usr/bin/env python3
"""`make demo`: write the built-in tiny checkpoint, compile it, run it.

The checkpoint carries DeepSeek V3's tokenizer (from the npm test package
that `make deps` installs), so the demo runs a text prompt and prints its
(random-weight) continuation as text, then the decode tokens/s and the
KV-cache bytes per token beside what a per-head K/V cache would need.
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

    tokenizer = os.path.join(ROOT, "third_party", "npm", "node_modules", "@lenml",
                             "tokenizer-deepseek_v3", "models")
    if not os.path.isfile(os.path.join(tokenizer, "tokenizer.json")):
        sys.exit(f"demo: {tokenizer}: no tokenizer.json; run `make deps` (scripts/install-npm.sh)")
    run([py, os.path.join(ROOT, "test", "tools", "make_checkpoint.py"),
         "--preset", "demo", "--out", ckpt, "--dtype", "bf16", "--tokenizer", tokenizer])
    run([os.path.join(bin_dir, "ds-compile"), ckpt, "-o", artifact, "-v",
         "--dump-ir-dir", os.path.join(work, "ir")])
    prompt = "The capital of France is"
    cmd = [os.path.join(bin_dir, "ds-run"), artifact, "--weights", ckpt,
           "--prompt", prompt, "--max-new-tokens", "16", "--stats-json", stats]
    print("$ " + " ".join(cmd[:5]) + f' "{prompt}" ' + " ".join(cmd[6:]))
    # ds-run streams the continuation as it is generated, right after the prompt.
    print("prompt, then its continuation by the random-weight model:")
    print(prompt, end="", flush=True)
    subprocess.run(cmd, check=True)

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
