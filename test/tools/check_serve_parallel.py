#!/usr/bin/env python3
"""ds-serve on a model partitioned over ranks: `mpiexec -n 2 ds-serve
par.dsa` (rank 0 binds the port and runs the engine, rank 1 follows its
steps). Concurrent greedy completions of token-id prompts equal ds-run's
single-rank tokens; SIGTERM to mpiexec drains rank 0, whose engine then
releases rank 1, and the job exits 0.

  check_serve_parallel.py --tp 2 --bin build/bin --mpiexec "timeout 120 mpiexec" --work DIR

Prints one line per check; exits 1 on the first failure.
"""
import argparse
import concurrent.futures
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import checkpoint  # noqa: E402

PROMPTS = [[5, 6, 7], [9, 3], [2, 8, 4, 4, 10, 11, 12], [40], [13, 14, 15, 16]]
NEW = 10


def run(cmd, timeout=300):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        sys.exit(f"FAIL: {' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def complete(base, prompt):
    body = json.dumps({"model": "ckpt", "prompt": prompt, "max_tokens": NEW,
                       "temperature": 0, "ignore_eos": True,
                       "return_token_ids": True}).encode()
    req = urllib.request.Request(f"{base}/v1/completions", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["choices"][0]["token_ids"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--tp", type=int, default=1)
    ap.add_argument("--ep", type=int, default=1)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    ranks = max(args.tp, args.ep)
    os.makedirs(args.work, exist_ok=True)
    ckpt = os.path.join(args.work, "ckpt")
    cfg = checkpoint.tiny_v3()
    checkpoint.write_checkpoint(ckpt, cfg, weights=checkpoint.random_weights(cfg, 0))
    par = os.path.join(args.work, "par.dsa")
    run([os.path.join(args.bin, "ds-compile"), ckpt, "-o", par, "--tp", str(args.tp),
         "--ep", str(args.ep)])
    # The single-rank reference: ds-run of the same checkpoint, unpartitioned.
    one = os.path.join(args.work, "one.dsa")
    run([os.path.join(args.bin, "ds-compile"), ckpt, "-o", one])
    expected = [[int(t) for t in run([os.path.join(args.bin, "ds-run"), one, "--weights", ckpt,
                                      "--prompt-tokens", ",".join(map(str, p)),
                                      "--max-new-tokens", str(NEW)]).strip().split(",")]
                for p in PROMPTS]

    port_file = os.path.join(args.work, "port")
    if os.path.exists(port_file):
        os.remove(port_file)
    log = open(os.path.join(args.work, "serve.log"), "w+")
    # mpiexec forwards SIGTERM to the ranks; its own process group lets the
    # test signal the launcher alone.
    job = subprocess.Popen(shlex.split(args.mpiexec) + ["-n", str(ranks),
                           os.path.join(args.bin, "ds-serve"), par, "--weights", ckpt,
                           "--max-num-seqs", "3", "--host", "127.0.0.1", "--port", "0",
                           "--port-file", port_file],
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    layout = f"tp={args.tp} ep={args.ep} on {ranks} ranks"
    try:
        end = time.monotonic() + 60
        while not os.path.exists(port_file):
            if job.poll() is not None or time.monotonic() > end:
                log.seek(0)
                sys.exit(f"FAIL: ds-serve {layout} did not start: {log.read()}")
            time.sleep(0.05)
        base = f"http://127.0.0.1:{int(open(port_file).read())}"
        with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
            got = list(pool.map(lambda p: complete(base, p), PROMPTS))
        same = got == expected
        print(f"{'ok' if same else 'FAIL'}: ds-serve {layout}: concurrent greedy "
              f"completions equal one rank's ds-run")
        if not same:
            sys.exit(f"  got {got}\n  expected {expected}")
        os.kill(job.pid, signal.SIGTERM)
        rc = job.wait(timeout=60)
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
    log.seek(0)
    text = log.read()
    print(f"{'ok' if rc == 0 else 'FAIL'}: ds-serve {layout}: SIGTERM ends every rank "
          f"(exit {rc})")
    sys.stdout.write(text)
    if rc != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
