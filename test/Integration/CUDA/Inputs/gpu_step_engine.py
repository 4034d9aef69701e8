"""Runs three requests through dsmlir.Engine on device cuda (the stand-in
driver in lit) and prints how many finished, the engine steps and the
@ragged_step calls; on an error, "error: <message>" and exit status 1.
Usage: gpu_step_engine.py <ds_bin> <artifact> <weights>"""
import os
import sys

sys.path.insert(0, os.path.join(sys.argv[1], os.pardir, "python"))
import dsmlir  # noqa: E402

try:
    engine = dsmlir.Engine(sys.argv[2], sys.argv[3], device="cuda",
                           num_pages=8, max_num_seqs=4,
                           max_num_batched_tokens=16)
    # 20 prompt tokens over a 16-token budget: a chunked prefill beside
    # decodes in the same steps.
    outs = engine.generate([list(range(1, 21)), [5, 6, 7], [9]],
                           max_new_tokens=3)
    stats = engine.stats()
    print("finished", len(outs), "steps", stats["steps"], "step_calls",
          stats["step_calls"])
except dsmlir.Error as e:
    print("error:", e)
    sys.exit(1)
