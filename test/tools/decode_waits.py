#!/usr/bin/env python3
"""Host waits per decode step of a CUDA artifact, measured through the
stand-in driver (test/tools/fake-cuda, FAKE_CUDA_COUNTS): runs the given
ds-run command twice, with --max-new-tokens A and B, and divides the
difference of the driver's counts by B - A, so the prompt's prefill and the
load cancel out. A host wait is a stream synchronisation (each
device-to-host copy the runtime or generated code makes is followed by one).
Prints one line:
    per decode step: 1 host waits (1 device-to-host copies), 312 launches,
    0 allocations, 1 graph launches
(launches are the calls the host code makes, captured or not).
Usage: decode_waits.py A B -- ds-run ARGS...   (the environment is passed on)
"""
import os
import subprocess
import sys
import tempfile


def counts(cmd, new_tokens):
    with tempfile.NamedTemporaryFile("r", suffix=".counts") as f:
        env = dict(os.environ, FAKE_CUDA_COUNTS=f.name)
        run = subprocess.run(cmd + ["--max-new-tokens", str(new_tokens)],
                             env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, timeout=600)
        if run.returncode != 0:
            sys.exit(f"decode_waits.py: {' '.join(cmd)} failed "
                     f"({run.returncode}): {run.stderr.strip()}")
        out = {}
        for line in open(f.name):
            kind, n = line.split()
            out[kind] = int(n)
        if not out:
            sys.exit("decode_waits.py: the stand-in driver wrote no counts "
                     "(is DSRT_CUDA_DRIVER the fake?)")
        return out


def main():
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.exit("usage: decode_waits.py A B -- ds-run ARGS...")
    a, b = int(sys.argv[1]), int(sys.argv[2])
    if b <= a:
        sys.exit("decode_waits.py: B must be larger than A")
    cmd = sys.argv[4:]
    lo, hi = counts(cmd, a), counts(cmd, b)
    per = {k: (hi[k] - lo[k]) / (b - a) for k in hi}
    print(f"per decode step: {per['sync']:g} host waits "
          f"({per['dtoh']:g} device-to-host copies), "
          f"{per['launch']:g} launches, {per['alloc']:g} allocations, "
          f"{per['graphlaunch']:g} graph launches")


if __name__ == "__main__":
    main()
