#!/usr/bin/env python3
"""Speculative decoding with the MTP module: acceptance and decode tok/s.

One greedy request (ignore_eos) through dsmlir.Engine, plain and with
speculative="mtp:K", on:
  * the bench model (the `demo` preset plus one MTP module, random
    weights): the random drafter agrees with the random main model about
    as often as chance, so speculation only costs;
  * "informative" constructions (vocab 1024; deep and narrow, or wide): all
    norm weights 1, every layer's o_proj and down projections scaled by
    EPS so the main model is close to a bigram model, and an MTP module
    that computes that bigram too (eh_proj = [I, 0]: the next token's
    embedding only; its own layer scaled by EPS). EPS sets how often the
    drafter agrees, so the speedup is measured at several acceptance rates.

Beside each measured speedup: the issue's estimate (1 + a) / (1 + c) for
k = 1 (a: acceptance rate, c: a draft's time over a plain decode step's),
and the general L / (v_k + k c) (L: mean tokens per verify round, v_k: a
verify step of k + 1 tokens through @prefill_hidden over a decode step),
with c and v_k timed on a session of the same artifact. Times are this
thread's CPU time with the runtime on one thread, so other jobs on a shared
machine do not count.

    /usr/bin/python3 bench/speculative.py --build build
    /usr/bin/python3 bench/speculative.py --build build --acceptance-only --h-mix 0.5,1
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "tools"))
from ds_testing import checkpoint  # noqa: E402


def informative_config(wide):
    """Deep and narrow (12 layers, hidden 256: 16 MB of f32 weights, the
    step is compute-bound), or wide (4 dense layers, hidden 1024: 210 MB,
    the step reads more than the caches hold)."""
    if wide:
        return checkpoint._base(
            vocab_size=1024, hidden_size=1024, intermediate_size=2816,
            moe_intermediate_size=256, num_hidden_layers=4, first_k_dense_replace=4,
            num_attention_heads=8, q_lora_rank=384, kv_lora_rank=256, qk_nope_head_dim=64,
            qk_rope_head_dim=32, v_head_dim=64, n_routed_experts=8, num_experts_per_tok=2,
            n_group=4, topk_group=2, max_position_embeddings=512, num_nextn_predict_layers=1)
    return checkpoint._base(
        vocab_size=1024, hidden_size=256, intermediate_size=512, moe_intermediate_size=128,
        num_hidden_layers=12, num_attention_heads=4, q_lora_rank=96, kv_lora_rank=64,
        qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32, n_routed_experts=8,
        num_experts_per_tok=2, n_group=4, topk_group=2, max_position_embeddings=512,
        num_nextn_predict_layers=1)


def informative_weights(cfg, eps, seed=0, h_mix=0.0):
    """Random weights edited so the MTP module drafts what the main model
    decodes, up to the EPS-sized layer contributions. With h_mix > 0,
    eh_proj = [I, h_mix I]: the module also reads the hidden state it is
    fed, so which state feeds drafts 2..k matters (with [I, 0] it does
    not)."""
    w = checkpoint.random_weights(cfg, seed)
    d = cfg["hidden_size"]
    mtp = f"model.layers.{cfg['num_hidden_layers']}."
    for name in w:
        if name.endswith(("norm.weight", "layernorm.weight")):
            w[name] = np.ones_like(w[name])
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            w[name] = (w[name] * eps).astype(np.float32)
    eh = np.zeros((d, 2 * d), np.float32)
    eh[:, :d] = np.eye(d, dtype=np.float32)
    eh[:, d:] = h_mix * np.eye(d, dtype=np.float32)
    w[mtp + "eh_proj.weight"] = eh
    return w


def decode_run(engine_args, prompt, n, speculative):
    import dsmlir
    eng = dsmlir.Engine(*engine_args, num_pages=16, max_num_seqs=1, max_model_len=512,
                        speculative=speculative)
    # This thread's CPU time at each token: the engine steps in this thread
    # and the runtime runs one thread (DSRT_NUM_THREADS=1), so the time
    # waiting for a core on a shared machine is left out.
    times = [time.thread_time() for ev in eng.stream([prompt], n, ignore_eos=True)
             if ev["token"] is not None]
    s = eng.stats()
    tps = (len(times) - 1) / (times[-1] - times[0])
    return tps, s


def step_costs(art, ckpt, prompt, ks, reps=40):
    """Seconds of a decode step, a draft call and verify steps of k + 1
    tokens: the fastest of `reps` calls on one warm session each (the
    context grows by a few dozen tokens meanwhile); the fastest, as the
    least disturbed by other jobs on a shared machine."""
    import dsmlir
    m = dsmlir.Model(art, ckpt)

    def timed(fn):
        s = m.session(512)
        _, h = s.prefill_hidden(prompt)
        s.draft(h[:-1], prompt[1:])
        for _ in range(3):
            fn(s, h)
        out = []
        for _ in range(reps):
            t0 = time.thread_time()
            fn(s, h)
            out.append(time.thread_time() - t0)
        return min(out)

    dec = timed(lambda s, h: s.decode(prompt[0]))
    draft = timed(lambda s, h: s.draft(h[-1:], [prompt[0]]))
    verify = {k: timed(lambda s, h, k=k: s.prefill_hidden(prompt[:k + 1])) for k in ks}
    return dec, draft, verify


def compile_absorbed(build, ckpt, art):
    """ds-compile --mla-form absorbed: a verify step runs k + 1 tokens
    through @prefill_hidden and a draft one or two through @draft, where
    the absorbed form is the cheap one (as for @decode). Under the cost
    model's auto choice @draft is absorbed (its ds.tokens_per_call hint),
    but @prefill_hidden, which also runs prompt chunks, is costed as a
    512-token chunk and gets the naive form, whose per-call work grows with
    the context (it expands the cached latents per head)."""
    subprocess.run([os.path.join(build, "bin", "ds-compile"), ckpt, "--mla-form", "absorbed",
                    "-o", art], check=True)


def best_run(art, ckpt, prompt, n, speculative, repeats):
    """The fastest of `repeats` runs (same tokens and counts each time)."""
    runs = [decode_run((art, ckpt), prompt, n, speculative) for _ in range(repeats)]
    return max(runs, key=lambda r: r[0])


def acceptance(name, art, ckpt, prompt, n, ks, rows):
    """Acceptance only (no timing): one run per k."""
    for k in ks:
        _, s = decode_run((art, ckpt), prompt, n, f"mtp:{k}")
        a, L = s["spec_acceptance_rate"], s["spec_mean_accepted_length"]
        rows.append((name, k, a, L, s["spec_accepted_tokens"], s["spec_draft_tokens"]))
        print(f"{name:36s} k={k} acceptance {a:5.3f} ({s['spec_accepted_tokens']} of "
              f"{s['spec_draft_tokens']}) mean length {L:4.2f}", flush=True)


def bench(name, art, ckpt, prompt, n, ks, rows, repeats):
    plain, _ = best_run(art, ckpt, prompt, n, None, repeats)
    dec, draft, verify = step_costs(art, ckpt, prompt, ks)
    c = draft / dec
    for k in ks:
        tps, s = best_run(art, ckpt, prompt, n, f"mtp:{k}", repeats)
        a = s["spec_acceptance_rate"]
        L = s["spec_mean_accepted_length"]
        v = verify[k] / dec
        issue = (1 + a) / (1 + c) if k == 1 else float("nan")
        rows.append((name, k, a, L, plain, tps, tps / plain, issue, L / (v + k * c), c, v))
        print(f"{name:24s} k={k} acceptance {a:5.3f} mean length {L:4.2f}  plain {plain:7.1f} "
              f"tok/s  spec {tps:7.1f} tok/s  x{tps / plain:4.2f}  (1+a)/(1+c) "
              f"{issue:4.2f}  L/(v+kc) {L / (v + k * c):4.2f}  c {c:4.2f} v {v:4.2f}",
              flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--work", default=None, help="directory for checkpoints (default: temp)")
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--ks", default="1,2,3")
    ap.add_argument("--eps", default="0.02,0.1,0.3", help="informative constructions")
    ap.add_argument("--wide-eps", default="0.02", help="wide informative constructions")
    ap.add_argument("--repeats", type=int, default=3, help="runs per setting, fastest kept")
    ap.add_argument("--h-mix", default="", help="deep constructions at the first --eps with "
                    "eh_proj = [I, H I] (the drafter reads its hidden input), for each H")
    ap.add_argument("--acceptance-only", action="store_true",
                    help="acceptance and mean accepted length only (no timing, no demo model): "
                    "runs on builds whose Session.draft predates chained drafting too")
    args = ap.parse_args()
    os.environ["DSRT_NUM_THREADS"] = "1"  # see decode_run
    os.environ.setdefault("DS_BUILD_DIR", args.build)
    sys.path.insert(0, os.path.join(args.build, "python"))
    import dsmlir
    ks = [int(k) for k in args.ks.split(",")]
    work = args.work or tempfile.mkdtemp(prefix="ds-spec-")
    prompt = [int(t) for t in np.random.default_rng(0).integers(2, 1000, 16)]
    rows = []

    if args.acceptance_only:
        run = lambda name, art, d: acceptance(name, art, d, prompt, args.output_len, ks, rows)
    else:
        run = lambda name, art, d: bench(name, art, d, prompt, args.output_len, ks, rows,
                                         args.repeats)
        demo = checkpoint.demo()
        demo["num_nextn_predict_layers"] = 1
        d = os.path.join(work, "demo_mtp")
        checkpoint.write_checkpoint(d, demo)
        compile_absorbed(args.build, d, d + "/m.dsa")
        run("demo+MTP, random", d + "/m.dsa", d)

    first_eps = float(args.eps.split(",")[0])
    settings = [(False, float(e), 0.0) for e in args.eps.split(",") if e]
    settings += [(False, first_eps, float(h)) for h in args.h_mix.split(",") if h]
    settings += [(True, float(e), 0.0) for e in args.wide_eps.split(",") if e]
    compiled = set()
    for wide, eps, h_mix in settings:
        cfg = informative_config(wide)
        kind = "wide" if wide else "deep"
        art = os.path.join(work, f"informative_{kind}.dsa")
        d = os.path.join(work, f"informative_{kind}_{eps}_{h_mix}")
        checkpoint.write_checkpoint(d, cfg, weights=informative_weights(cfg, eps, h_mix=h_mix))
        if kind not in compiled:  # weights are bound at load: one artifact serves all
            compile_absorbed(args.build, d, art)
            compiled.add(kind)
        mix = f", eh_proj [I, {h_mix} I]" if h_mix else ""
        run(f"informative {kind}, eps {eps}{mix}", art, d)
        shutil.rmtree(d)  # the wide checkpoints are 210 MB each

    if args.acceptance_only:
        print("\n| model | k | acceptance | accepted / drafted | mean accepted length |")
        print("|---|---|---|---|---|")
        for name, k, a, L, acc, drafted in rows:
            print(f"| {name} | {k} | {a:.3f} | {acc} / {drafted} | {L:.2f} |")
        return
    print("\n| model | k | acceptance | mean accepted length | plain tok/s | speculative tok/s "
          "| speedup | (1+a)/(1+c) | L/(v_k+kc) | c | v_k |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        name, k, a, L, plain, tps, sp, issue, gen, c, v = r
        issue_s = f"{issue:.2f}" if k == 1 else ""
        print(f"| {name} | {k} | {a:.3f} | {L:.2f} | {plain:.1f} | {tps:.1f} | {sp:.2f} "
              f"| {issue_s} | {gen:.2f} | {c:.2f} | {v:.2f} |")


if __name__ == "__main__":
    main()
