#!/bin/bash
# On the GPU machine, from the repository root, after bench/gpu/prepare.py
# ran on a build machine (its work folder carried along):
#   bash bench/gpu/run.sh [--skip-e2e] [--dry]   (PYTHON=... picks the interpreter)
# Results: $OUT/RESULTS-gpu.md and gpu-results.json (else bench/gpu/out).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=bench/gpu/work
scratch=/tmp/ds-gpu-bench
if [ ! -f "$work/cases.json" ]; then
  echo "bench/gpu/run.sh: $work/cases.json missing: run bench/gpu/prepare.py first" >&2
  exit 1
fi
mkdir -p "$scratch/runtime"
tar -xJf "$work/runtime.tar.xz" -C "$scratch/runtime"
export LD_LIBRARY_PATH="$scratch/runtime/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1
"${PYTHON:-python3}" bench/gpu/run.py --work "$work" --scratch "$scratch" "$@"
