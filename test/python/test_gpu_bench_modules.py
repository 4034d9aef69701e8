"""bench/gpu/run.py runs only on the device machine, from the working tree:
its modules (common.py, perf.py, batch.py and test/tools' ds_testing) must
import, and every stage it dispatches to must exist, before any device time
is spent. `run.py --help` imports them all; a name one of them lost in a
move between the modules fails here instead of on the GPU."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "bench", "gpu", "run.py")


def test_run_py_imports_its_stages():
    r = subprocess.run([sys.executable, RUN, "--help"], capture_output=True, text=True,
                       cwd="/", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage: run.py" in r.stdout
    sys.path.insert(0, os.path.dirname(RUN))
    try:
        import run  # noqa: E402
    finally:
        sys.path.pop(0)
    for stage in ("preflight", "smoke", "parity", "step_parity", "attention", "e2e",
                  "batched", "dry", "child_main", "run_child", "main"):
        assert callable(getattr(run, stage, None)), stage
    assert run.LOG is run.log.__globals__["LOG"], "one log for every module"
