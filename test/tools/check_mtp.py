#!/usr/bin/env python3
"""Parity of a compiled MTP module against the float64 reference.

  check_mtp.py --bin BUILD/bin --lib BUILD/lib/libdsrt.so [--weights-dtype f32|bf16|fp8]
               [--mtp-copies] [--mla-form auto|absorbed|naive] [--dtype f32|bf16]
               [--atol A] [--work DIR]

Writes a tiny_v3_mtp checkpoint, compiles it, and through the C API
(dsrt_mtp.h): runs @prefill_hidden over a prompt (logits and final hidden
states vs ReferenceModel.forward_hidden), then @draft at every position, the
first chunk in one call and the rest one position at a time, fed the
reference's tokens (teacher forcing) and the compiled hidden states; draft
logits vs ReferenceModel.mtp_forward within --atol (the f32 parity
tolerance). Also checks plain prefill equals prefill_hidden, that the
draft at position 0 ignores the next token (its embedding is zeroed), and
that bad tokens and an artifact without an MTP module are refused with
one line.
Prints one 'ok:' or 'FAIL:' line per check; exits 1 on any failure.
"""
import argparse
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ds_testing import checkpoint  # noqa: E402
from ds_testing.reference import ReferenceModel  # noqa: E402


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"check_mtp.py: {' '.join(cmd)} failed:\n{r.stderr}")


class Lib:
    def __init__(self, path):
        self.c = ctypes.CDLL(path)
        self.c.dsrt_last_error.restype = ctypes.c_char_p
        self.c.dsrt_model_mtp_hidden_size.restype = ctypes.c_int64
        self.c.dsrt_session_draft_position.restype = ctypes.c_int64
        self.c.dsrt_model_mtp_hidden_size.argtypes = [ctypes.c_void_p]
        self.c.dsrt_session_draft_position.argtypes = [ctypes.c_void_p]

    def check(self, status, what):
        if status != 0:
            sys.exit(f"check_mtp.py: {what}: {self.c.dsrt_last_error().decode()}")

    def load(self, artifact, weights):
        m = ctypes.c_void_p()
        self.check(self.c.dsrt_model_load(artifact.encode(), weights.encode(), b"cpu",
                                          ctypes.byref(m)), "load")
        s = ctypes.c_void_p()
        self.check(self.c.dsrt_session_create(m, ctypes.c_int64(64), ctypes.byref(s)), "session")
        return m, s


def ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def report(name, err, atol):
    status = "ok" if err <= atol else "FAIL"
    print(f"{status}: {name} (max abs err {err:.2e}, atol {atol})")
    return status == "ok"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--weights-dtype", default="f32", choices=["f32", "bf16", "fp8"])
    ap.add_argument("--mtp-copies", action="store_true")
    ap.add_argument("--mla-form", default="auto", choices=["auto", "absorbed", "naive"])
    ap.add_argument("--dtype", default="f32", choices=["f32", "bf16", "fp8"],
                    help="compile dtype (latent cache element type, both caches); fp8: "
                         "kv_lora_rank 256 (two scale groups), rope 8, and the "
                         "reference stores both caches as the FP8 cache does")
    ap.add_argument("--prompt", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=12, help="draft positions in the first call")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()

    work = args.work or tempfile.mkdtemp(prefix="ds-mtp-")
    ckpt = os.path.join(work, "ckpt")
    cfg = checkpoint.tiny_v3_mtp()
    if args.dtype == "fp8":
        cfg.update(kv_lora_rank=256, qk_rope_head_dim=8)
    cfg, _ = checkpoint.write_checkpoint(ckpt, cfg, dtype=args.weights_dtype,
                                         mtp_copies=args.mtp_copies)
    artifact = os.path.join(work, "model.dsa")
    run([os.path.join(args.bin, "ds-compile"), ckpt, "-o", artifact, "--mla-form", args.mla_form,
         "--kv-dtype", args.dtype])

    lib = Lib(args.lib)
    model, sess = lib.load(artifact, ckpt)
    V, D, n = cfg["vocab_size"], cfg["hidden_size"], args.prompt
    if lib.c.dsrt_model_mtp_hidden_size(model) != D:
        sys.exit("check_mtp.py: the artifact reports no MTP module")
    seq = np.random.default_rng(1).integers(2, V, size=n).astype(np.int32)

    ref = ReferenceModel.load(ckpt)
    # The reference stores an fp8 cache as the compiled model does (f32
    # otherwise: the bf16 run's tolerance covers its rounding).
    cache_dtype = "fp8" if args.dtype == "fp8" else "f32"
    want_h = ref.forward_hidden(seq, 0, ref.new_cache(cache_dtype))
    want_logits = want_h @ ref.w["lm_head.weight"].T

    logits = np.zeros((n, V), np.float32)
    hidden = np.zeros((n, D), np.float32)
    lib.check(lib.c.dsrt_session_prefill_hidden(sess, ptr(seq), ctypes.c_int64(n), ptr(logits),
                                                ptr(hidden)), "prefill_hidden")
    ok = report("prefill_hidden logits vs reference", np.abs(logits - want_logits).max(), args.atol)
    ok &= report("prefill_hidden final hidden states vs reference",
                 np.abs(hidden - want_h).max(), args.atol)

    # The plain entry point computes the same logits.
    _, plain = lib.load(artifact, ckpt)
    plain_logits = np.zeros((n, V), np.float32)
    lib.check(lib.c.dsrt_session_prefill(plain, ptr(seq), ctypes.c_int64(n), ptr(plain_logits)),
              "prefill")
    # With an fp8 cache the plain prefill runs @ragged_step over fp8 pages
    # (rows decoded once per read, the per-sequence MLA form) and
    # @prefill_hidden the contiguous kernels: the same values summed in
    # another order, measured 2.1e-5 apart; f32 caches agree to 1e-5.
    same_tol = 1e-4 if args.dtype == "fp8" else 1e-5
    ok &= report("prefill equals prefill_hidden", np.abs(plain_logits - logits).max(), same_tol)

    # Draft at positions 0..n-2: h_i (compiled) and t_{i+1} (reference tokens).
    want, want_out = ref.mtp_forward(hidden.astype(np.float64)[:-1], seq[1:], 0,
                                     ref.new_mtp_cache(cache_dtype), return_hidden=True)
    draft = np.zeros((n - 1, V), np.float32)
    out_h = np.zeros((n - 1, D), np.float32)
    k = max(1, min(args.chunk, n - 1))
    nxt = np.ascontiguousarray(seq[1:])
    lib.check(lib.c.dsrt_session_draft(sess, ptr(hidden[:k].copy()), ptr(nxt[:k].copy()),
                                       ctypes.c_int64(k), ptr(draft[:k]), ptr(out_h[:k])),
              "draft chunk")
    for i in range(k, n - 1):
        row = np.zeros((1, V), np.float32)
        lib.check(lib.c.dsrt_session_draft(sess, ptr(hidden[i:i + 1].copy()),
                                           ptr(nxt[i:i + 1].copy()), ctypes.c_int64(1), ptr(row),
                                           None),
                  f"draft step {i}")
        draft[i] = row[0]
    pos = lib.c.dsrt_session_draft_position(sess)
    print(f"{'ok' if pos == n - 1 else 'FAIL'}: draft position {pos} after {n - 1} positions")
    ok &= pos == n - 1
    ok &= report(f"draft logits at every position ({k} in one call, then one at a time) "
                 "vs reference", np.abs(draft - want).max(), args.atol)
    ok &= report(f"draft output hidden states ({k} in one call) vs reference",
                 np.abs(out_h[:k] - want_out[:k]).max(), args.atol)
    # Position 0's embedding is zeroed: the compiled row 0 must not depend
    # on t_1 (a fresh session, another next token, the same logits).
    rows0 = []
    for tok in (seq[1], (seq[1] + 1) % V):
        _, fresh = lib.load(artifact, ckpt)
        row0 = np.zeros((1, V), np.float32)
        lib.check(lib.c.dsrt_session_draft(fresh, ptr(hidden[:1].copy()),
                                           ptr(np.array([tok], np.int32)), ctypes.c_int64(1),
                                           ptr(row0), None), "draft at position 0")
        rows0.append(row0[0])
    ok &= report("draft row 0 ignores the next token's embedding (zeroed at position 0)",
                 np.abs(rows0[0] - rows0[1]).max(), 0.0)

    # Bad input: a token id out of range is refused with one line.
    bad = np.array([V], np.int32)
    st = lib.c.dsrt_session_draft(sess, ptr(hidden[:1].copy()), ptr(bad), ctypes.c_int64(1),
                                  ptr(draft[:1]), None)
    msg = lib.c.dsrt_last_error().decode()
    print(f"{'ok' if st != 0 and 'next token id' in msg and chr(10) not in msg else 'FAIL'}: "
          f"bad next token refused: {msg}")
    ok &= st != 0
    # An artifact without an MTP module refuses draft calls with one line.
    plain_ckpt = os.path.join(work, "plain")
    checkpoint.write_checkpoint(plain_ckpt, checkpoint.tiny_v3())
    plain_art = os.path.join(work, "plain.dsa")
    run([os.path.join(args.bin, "ds-compile"), plain_ckpt, "-o", plain_art])
    _, psess = lib.load(plain_art, plain_ckpt)
    st = lib.c.dsrt_session_draft(psess, ptr(hidden[:1].copy()), ptr(nxt[:1].copy()),
                                  ctypes.c_int64(1), ptr(draft[:1]), None)
    msg = lib.c.dsrt_last_error().decode()
    good = st != 0 and "has no MTP module" in msg and "\n" not in msg
    print(f"{'ok' if good else 'FAIL'}: draft without an MTP module refused: {msg}")
    ok &= good
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
