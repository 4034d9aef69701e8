#!/bin/bash
# Decode tok/s of two builds on one artifact, interleaved (A, B, A, B, ...)
# under SCHED_FIFO, so that a machine shared with other jobs moves both
# alike; prints each pair and its ratio B / A.
# Usage: bench/decode_ab.sh A_BIN B_BIN ARTIFACT CKPT PROMPT STEPS PAIRS
# e.g.   bench/decode_ab.sh /work/main/build/bin build/bin model-f32.dsa ckpt-f32 256 32 6
set -eu
a=$1 b=$2 art=$3 ckpt=$4 prompt=$5 steps=$6 pairs=$7
rate() {
  timeout 300 chrt -f 10 "$1/ds-cpu-bench" model "$art" "$ckpt" "$prompt" "$steps" 1 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["decode_tokens_per_second"])'
}
for _ in $(seq "$pairs"); do
  ra=$(rate "$a")
  rb=$(rate "$b")
  echo "A $ra B $rb ratio $(/usr/bin/python3 -c "print(round($rb / $ra, 3))")"
done
