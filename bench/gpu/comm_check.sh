#!/bin/bash
# The NCCL communicator on real GPUs (it cannot run on the build machines,
# which have none). From the repository root, with a build tree carried
# along (build/bin/ds-comm-check, build/lib/libdsrt.so):
#   bash bench/gpu/comm_check.sh [BUILD_DIR]
# Needs the NVIDIA driver and NCCL (libnccl.so.2 on the loader's path, in
# $CUDA_HOME/lib64, or $DSRT_NCCL); multi-rank steps need mpiexec (MPICH:
# Debian's `mpich`, or any MPICH-ABI MPI whose libmpi.so.12 / libmpich.so.12
# loads) and two or more GPUs. Every step is bounded by `timeout`.
#
# Steps (each prints PASS/FAIL/SKIP with its reason; exit 1 if any failed):
#   1. one rank, NCCL bootstrapped without MPI: every collective on device
#      buffers, checked exactly (ds-comm-check --backend nccl);
#   2. N ranks = the GPUs here, one GPU each (CUDA_VISIBLE_DEVICES from
#      MPICH's MPI_LOCALRANKID): the same checks, unique id over MPI, the
#      all-to-all imbalanced towards rank 0;
#   3. N ranks, the last one hangs: the others end within DSRT_COMM_TIMEOUT
#      with the one-line message (NCCL aborted, then MPI_Abort).
# Output: stdout, and $OUT/comm-check.log when $OUT is set.
set -uo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
check="$build/bin/ds-comm-check"
log=${OUT:+$OUT/comm-check.log}
say() { echo "$@"; [ -n "$log" ] && echo "$@" >> "$log"; return 0; }
failed=0
run_step() { # name, expected exit (0 or nonzero), grep pattern, command...
  local name=$1 want=$2 pattern=$3; shift 3
  local out rc
  out=$("$@" 2>&1); rc=$?
  [ -n "$log" ] && { echo "--- $name: $*" >> "$log"; echo "$out" >> "$log"; }
  if { [ "$want" = 0 ] && [ $rc -eq 0 ]; } || { [ "$want" != 0 ] && [ $rc -ne 0 ] && [ $rc -ne 124 ]; }; then
    if echo "$out" | grep -qE "$pattern"; then say "PASS $name"; return; fi
  fi
  say "FAIL $name (exit $rc)"; echo "$out" | tail -20; failed=1
}

if [ ! -x "$check" ]; then
  say "FAIL: $check missing (build the tree first: ninja -C $build ds-comm-check)"; exit 1
fi
export LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
say "GPUs: ${gpus:-0}; $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
if [ "${gpus:-0}" -lt 1 ]; then say "FAIL: no GPU answers nvidia-smi"; exit 1; fi

run_step "nccl, 1 rank" 0 "rank 0 of 1 \(nccl\): all checks passed" \
  env -u PMI_RANK -u PMIX_RANK DSRT_COMM_TIMEOUT=60 timeout 300 "$check" --backend nccl

if ! command -v mpiexec >/dev/null; then
  say "SKIP multi-rank steps: no mpiexec on this machine (install mpich)"
elif [ "$gpus" -lt 2 ]; then
  say "SKIP multi-rank steps: $gpus GPU (NCCL needs one GPU per rank)"
else
  percard='export CUDA_VISIBLE_DEVICES=${MPI_LOCALRANKID:-${PMI_RANK:-0}}; exec "$0" "$@"'
  run_step "nccl, $gpus ranks" 0 "rank 0 of $gpus \(nccl\): all checks passed" \
    env DSRT_COMM_TIMEOUT=120 timeout 400 mpiexec -n "$gpus" bash -c "$percard" "$check" --backend nccl --heavy 200000
  run_step "nccl, $gpus ranks, last rank hangs" 1 "did not complete within 10 s" \
    env DSRT_COMM_TIMEOUT=10 timeout 200 mpiexec -n "$gpus" bash -c "$percard" "$check" --backend nccl --case hang
fi
[ $failed -eq 0 ] && say "comm_check: all steps passed" || say "comm_check: some steps FAILED"
exit $failed
