"""What bench/gpu/run.py's stages share: the run's log, ds-run as a
subprocess, the time budget, and the paths (test/tools for ds_testing,
this folder for batch.py)."""
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
sys.path.insert(0, HERE)

LOG = []


def log(msg):
    print(msg, flush=True)
    LOG.append(msg)


def ds_run(args, dsrun, timeout=300, env=None):
    cmd = [dsrun] + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=None if env is None else dict(os.environ, **env))
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r.stdout


class Budget:
    def __init__(self, seconds):
        self.end = time.time() + seconds

    def left(self):
        return self.end - time.time()

    def allows(self, what, needs):
        if self.left() >= needs:
            return True
        log(f"{what}: skipped, {self.left():.0f} s of the budget left (needs ~{needs} s)")
        return False
