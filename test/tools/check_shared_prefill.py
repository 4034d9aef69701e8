#!/usr/bin/env python3
"""ds-serve's n > 1 samples of a long prompt share its prefill: the first
choice computes the prompt, the others start once it has and find its full
pages in the engine's prefix cache. Checks, on a tiny V3-style model with a
512-token context:
  - every choice of an n = 3 seeded request equals ds-run's tokens for its
    seed (seed + j for choice j), so sharing changes no result;
  - the prefix cache served the later choices' full prompt pages (the
    server's ds_prefix_cache_hits_total), and with --no-prefix-caching the
    same request still gives the same tokens.

  check_shared_prefill.py --bin build/bin --work DIR

Prints one line per check; exits 1 on the first failure.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import checkpoint  # noqa: E402

PAGE = 64  # DSRT_ENGINE_PAGE_TOKENS
PROMPT = [2 + (7 * i) % 60 for i in range(150)]  # two full pages and more
NEW, N, SEED = 8, 3, 5


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def post(base, body):
    req = urllib.request.Request(f"{base}/v1/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def prefix_hits(base):
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("ds_prefix_cache_hits_total "):
                return float(line.split()[1])
    sys.exit("FAIL: /metrics has no ds_prefix_cache_hits_total")


def serve(args, artifact, ckpt, extra):
    port_file = os.path.join(args.work, "port")
    if os.path.exists(port_file):
        os.unlink(port_file)
    proc = subprocess.Popen([os.path.join(args.bin, "ds-serve"), artifact, "--weights", ckpt,
                             "--port", "0", "--port-file", port_file] + extra,
                            stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        if os.path.exists(port_file):
            return proc, "http://127.0.0.1:" + open(port_file).read().strip()
        if proc.poll() is not None:
            sys.exit(f"FAIL: ds-serve exited {proc.returncode}: {proc.stderr.read()}")
        time.sleep(0.1)
    proc.kill()
    sys.exit("FAIL: ds-serve did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    ckpt = os.path.join(args.work, "ckpt")
    cfg = dict(checkpoint.tiny_v3(), max_position_embeddings=512)
    checkpoint.write_checkpoint(ckpt, cfg, seed=3)
    artifact = os.path.join(args.work, "m.dsa")
    run([os.path.join(args.bin, "ds-compile"), ckpt, "-o", artifact])
    want = [[int(t) for t in run([os.path.join(args.bin, "ds-run"), artifact, "--weights", ckpt,
                                  "--prompt-tokens", ",".join(map(str, PROMPT)),
                                  "--max-new-tokens", str(NEW), "--temperature", "1.0",
                                  "--seed", str(SEED + j)]).strip().split(",")]
            for j in range(N)]
    body = {"prompt": PROMPT, "n": N, "max_tokens": NEW, "temperature": 1.0, "seed": SEED,
            "return_token_ids": True}
    for extra, label in (([], "prefix caching"), (["--no-prefix-caching"], "no prefix caching")):
        proc, base = serve(args, artifact, ckpt, extra)
        try:
            before = prefix_hits(base)
            got = [c["token_ids"] for c in post(base, body)["choices"]]
            hits = prefix_hits(base) - before
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        if got != want:
            sys.exit(f"FAIL: {label}: n = {N} choices {got} != ds-run's {want}")
        print(f"ok: {label}: every choice equals ds-run's tokens for its seed")
        full = (len(PROMPT) - 1) // PAGE * PAGE  # the prompt's cacheable pages
        if extra:
            if hits != 0:
                sys.exit(f"FAIL: {label}: {hits} prefix-cache hits")
        elif hits < (N - 1) * full:
            sys.exit(f"FAIL: {label}: {hits} prompt tokens from the prefix cache, "
                     f"want >= {(N - 1) * full} (the later choices' full pages)")
        else:
            print(f"ok: {label}: the later choices read {int(hits)} prompt tokens from the cache")


if __name__ == "__main__":
    main()
