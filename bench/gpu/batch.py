"""Batched decode through the serving engine (dsrt_engine.h), reached with
ctypes from the packed libdsrt (the GPU machine has no build of our Python
module). Used by run.py; also runs alone:

    python3 bench/gpu/batch.py LIBDSRT ARTIFACT WEIGHTS --device cpu|cuda

What a batch is, per executor (DSRT_ENGINE_EXECUTOR, read when the engine
is created): "session" (fp8 caches and drafting on the GPU) runs one
dsrt_session per request and the requests of a step one after another, each
through its own decode call (every request reads the weights again), so
batch B is B decode calls per engine step; "step" (the GPU default
otherwise) runs each engine step as one @ragged_step call over the device
page pool (runtime/src/engine/GpuStepExecutor.h): one
batched MoE and attention over all B tokens. The roofline next to it is
what one batched step could reach.

mixed_batch() is the GPU step's correctness check: a mixed batch (chunked
prefills beside decodes, pages crossed) with teacher-forced tokens and
every logits row returned, to compare across devices and executors.
"""
import argparse
import ctypes
import os
import sys
import time

I64 = ctypes.c_int64


# These mirror runtime/include/dsrt/dsrt_engine.h field for field: the C side
# writes whole structs (dsrt_engine_options_default, dsrt_engine_stats_get),
# so a field missing here is a write past the ctypes buffer. (EngineStats
# lacked the header's last five fields: dsrt_engine_stats_get wrote 40 bytes
# past it, which crashed the process that had allocated much before, i.e.
# three H200 runs. test/python/test_gpu_bench_structs.py now compares.)
class EngineOptions(ctypes.Structure):
    _fields_ = [("kv_cache_bytes", I64), ("num_pages", I64), ("max_num_seqs", I64),
                ("max_num_batched_tokens", I64), ("max_model_len", I64),
                ("enable_prefix_caching", ctypes.c_int), ("speculative", ctypes.c_char_p),
                ("scheduling_policy", ctypes.c_int)]


class RequestParams(ctypes.Structure):
    _fields_ = [("max_tokens", I64), ("temperature", ctypes.c_float),
                ("top_p", ctypes.c_float), ("top_k", ctypes.c_int32),
                ("seed", ctypes.c_uint64), ("stop_token_ids", ctypes.POINTER(ctypes.c_int32)),
                ("num_stop_token_ids", I64), ("ignore_eos", ctypes.c_int),
                ("force_tokens", ctypes.POINTER(ctypes.c_int32)), ("num_force_tokens", I64),
                ("return_logits", ctypes.c_int), ("prompt_logits", ctypes.c_int),
                ("presence_penalty", ctypes.c_float), ("frequency_penalty", ctypes.c_float),
                ("repetition_penalty", ctypes.c_float), ("min_p", ctypes.c_float),
                ("min_tokens", I64), ("logit_bias_ids", ctypes.POINTER(ctypes.c_int32)),
                ("logit_bias_values", ctypes.POINTER(ctypes.c_float)), ("num_logit_bias", I64),
                ("allowed_tokens", ctypes.c_void_p), ("allowed_tokens_user", ctypes.c_void_p),
                ("priority", ctypes.c_int32)]


class EngineStats(ctypes.Structure):
    _fields_ = [(n, I64) for n in (
        "running", "waiting", "pages_total", "pages_used", "pages_free", "pages_cached",
        "preemptions", "prefix_query_tokens", "prefix_hit_tokens", "prefix_copied_tokens",
        "prefix_recomputed_tokens", "steps", "scheduled_tokens", "last_step_tokens",
        "finished_requests", "max_model_len", "page_tokens", "speculative_tokens",
        "spec_rounds", "spec_draft_tokens", "spec_accepted_tokens", "step_calls",
        "step_segments", "step_naive_segments", "step_tokens", "step_naive_tokens",
        "step_head_matmul_rows")]


class Event(ctypes.Structure):
    _fields_ = [("request_id", I64), ("token", ctypes.c_int32), ("index", I64),
                ("logits", ctypes.POINTER(ctypes.c_float)), ("num_logits_rows", I64),
                ("vocab_size", I64), ("finish_reason", ctypes.c_int),
                ("prefix_hit_tokens", I64)]


Callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(Event))


class Runtime:
    def __init__(self, libpath):
        lib = ctypes.CDLL(libpath)
        lib.dsrt_last_error.restype = ctypes.c_char_p
        lib.dsrt_model_load.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.POINTER(ctypes.c_void_p)]
        lib.dsrt_model_free.argtypes = [ctypes.c_void_p]
        lib.dsrt_engine_options_default.argtypes = [ctypes.POINTER(EngineOptions)]
        lib.dsrt_engine_create.argtypes = [ctypes.c_void_p, ctypes.POINTER(EngineOptions),
                                           ctypes.POINTER(ctypes.c_void_p)]
        lib.dsrt_engine_free.argtypes = [ctypes.c_void_p]
        lib.dsrt_request_params_default.argtypes = [ctypes.POINTER(RequestParams)]
        lib.dsrt_engine_add_request.argtypes = [
            ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), I64,
            ctypes.POINTER(RequestParams), Callback, ctypes.c_void_p,
            ctypes.POINTER(I64)]
        lib.dsrt_engine_step.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        lib.dsrt_engine_stats_get.argtypes = [ctypes.c_void_p, ctypes.POINTER(EngineStats)]
        self.lib = lib

    def check(self, status, what):
        if status != 0:
            raise RuntimeError(f"{what}: {self.lib.dsrt_last_error().decode()}")

    def load(self, artifact, weights, device):
        model = ctypes.c_void_p()
        self.check(self.lib.dsrt_model_load(artifact.encode(), weights.encode(),
                                            device.encode(), ctypes.byref(model)),
                   "dsrt_model_load")
        return model


def create_engine(rt, model, opts, executor):
    """dsrt_engine_create with DSRT_ENGINE_EXECUTOR=executor (None: the
    engine's default) for the call."""
    before = os.environ.get("DSRT_ENGINE_EXECUTOR")
    if executor:
        os.environ["DSRT_ENGINE_EXECUTOR"] = executor
    else:
        os.environ.pop("DSRT_ENGINE_EXECUTOR", None)
    try:
        engine = ctypes.c_void_p()
        rt.check(rt.lib.dsrt_engine_create(model, ctypes.byref(opts), ctypes.byref(engine)),
                 f"dsrt_engine_create (executor {executor or 'default'})")
        return engine
    finally:
        if before is None:
            os.environ.pop("DSRT_ENGINE_EXECUTOR", None)
        else:
            os.environ["DSRT_ENGINE_EXECUTOR"] = before


def mixed_batch(rt, model, requests, max_batched_tokens, executor=None):
    """Runs `requests` ((prompt, forced tokens) pairs) together with
    return_logits; returns (per request a [len(prompt) + len(forced), vocab]
    numpy array, the engine's stats as a dict)."""
    import numpy as np
    opts = EngineOptions()
    rt.lib.dsrt_engine_options_default(ctypes.byref(opts))
    longest = max(len(p) + len(f) for p, f in requests)
    opts.num_pages = sum((len(p) + len(f) + 63) // 64 for p, f in requests) + 1
    opts.max_num_seqs = len(requests)
    opts.max_num_batched_tokens = max_batched_tokens
    opts.max_model_len = longest + 1
    opts.enable_prefix_caching = 0
    engine = create_engine(rt, model, opts, executor)
    out = {}

    def on_event(_, ev):
        e = ev.contents
        if e.finish_reason and e.logits:
            n = e.num_logits_rows * e.vocab_size
            out[e.request_id] = np.ctypeslib.as_array(e.logits, shape=(n,)).reshape(
                e.num_logits_rows, e.vocab_size).copy()

    callback = Callback(on_event)
    try:
        ids = []
        for prompt, forced in requests:
            params = RequestParams()
            rt.lib.dsrt_request_params_default(ctypes.byref(params))
            forced_c = (ctypes.c_int32 * len(forced))(*forced)
            params.max_tokens = len(forced)
            params.force_tokens = forced_c
            params.num_force_tokens = len(forced)
            params.return_logits = 1
            rid = I64()
            rt.check(rt.lib.dsrt_engine_add_request(
                engine, (ctypes.c_int32 * len(prompt))(*prompt), len(prompt),
                ctypes.byref(params), callback, None, ctypes.byref(rid)), "add_request")
            ids.append(rid.value)
        has_work = ctypes.c_int(1)
        while has_work.value:
            rt.check(rt.lib.dsrt_engine_step(engine, ctypes.byref(has_work)), "step")
        stats = EngineStats()
        rt.check(rt.lib.dsrt_engine_stats_get(engine, ctypes.byref(stats)), "stats")
        return [out[i] for i in ids], {n: getattr(stats, n) for n, _ in EngineStats._fields_}
    finally:
        rt.lib.dsrt_engine_free(engine)


def batched_decode(rt, model, batch, steps, prompt_len=8, vocab=64, executor=None):
    """Engine steps for `batch` greedy requests of `prompt_len` tokens and
    `steps` fed tokens each. The first step prefills every prompt (within
    the token budget); the rest are decode steps of `batch` tokens each,
    timed. Returns (decode tokens per second, decode steps timed)."""
    opts = EngineOptions()
    rt.lib.dsrt_engine_options_default(ctypes.byref(opts))
    pages_per_seq = (prompt_len + steps + 63) // 64 + 1
    opts.num_pages = batch * pages_per_seq + 1
    opts.max_num_seqs = batch
    opts.max_num_batched_tokens = max(2048, batch * prompt_len)
    opts.max_model_len = prompt_len + steps + 1
    opts.enable_prefix_caching = 0
    engine = create_engine(rt, model, opts, executor)
    try:
        params = RequestParams()
        rt.lib.dsrt_request_params_default(ctypes.byref(params))
        params.max_tokens = steps
        params.ignore_eos = 1
        for r in range(batch):
            prompt = (ctypes.c_int32 * prompt_len)(
                *[2 + (r * 7 + i * 3) % (vocab - 2) for i in range(prompt_len)])
            rid = I64()
            rt.check(rt.lib.dsrt_engine_add_request(engine, prompt, prompt_len,
                                                    ctypes.byref(params), Callback(), None,
                                                    ctypes.byref(rid)), "add_request")
        has_work = ctypes.c_int(1)
        stats = EngineStats()
        rt.check(rt.lib.dsrt_engine_step(engine, ctypes.byref(has_work)), "step")  # prefill
        tokens, timed = 0, 0
        t0 = time.perf_counter()
        while has_work.value:
            rt.check(rt.lib.dsrt_engine_step(engine, ctypes.byref(has_work)), "step")
            rt.check(rt.lib.dsrt_engine_stats_get(engine, ctypes.byref(stats)), "stats")
            tokens += stats.last_step_tokens
            timed += 1
        dt = time.perf_counter() - t0
        return (tokens / dt if dt > 0 else 0.0), timed
    finally:
        rt.lib.dsrt_engine_free(engine)


def expected_experts(experts, top_k, batch):
    """Distinct experts `batch` tokens touch in one MoE layer when each picks
    `top_k` of `experts` uniformly (random weights route near-uniformly)."""
    return experts * (1 - (1 - top_k / experts) ** batch)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("libdsrt")
    ap.add_argument("artifact")
    ap.add_argument("weights")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="1,2,4")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--executor", choices=["step", "session"], default=None)
    args = ap.parse_args()
    rt = Runtime(args.libdsrt)
    model = rt.load(args.artifact, args.weights, args.device)
    try:
        for b in (int(x) for x in args.batches.split(",")):
            tps, n = batched_decode(rt, model, b, args.steps, vocab=args.vocab,
                                    executor=args.executor)
            print(f"batch {b}: {tps:.1f} decode tokens/s over {n} engine steps")
    finally:
        rt.lib.dsrt_model_free(model)


if __name__ == "__main__":
    sys.exit(main())
