"""The per-sequence MLA form of @ragged_step: in one engine step, sequences
with at least the artifact's threshold of new tokens (a long prefill chunk)
take the naive form over their pages and the others (decodes, short chunks)
the absorbed one. Every request's logits must equal those of the same run
with the threshold forced to never (absorbed only) within 1e-5 and the
float64 reference's within test_engine.py's 1e-5; the engine's
step_naive_segments says which form ran (counted by the naive kernel itself,
so a step that silently stayed absorbed fails here), and step_head_matmul_rows
that the absorbed form's head products computed exactly the absorbed
sequences' rows (counted by the runtime call)."""
import os
import subprocess

import numpy as np
import pytest

import dsmlir
from conftest import BIN_DIR
from ds_testing import checkpoint
from ds_testing.reference import reference_logits

MAX_POS = 256
NEVER = str(2 ** 31)
# tiny_v3 (2 heads, kv_lora_rank 16, nope 8, rope 4, v 8): a context row
# costs 2*16*(8+8) = 512 FLOPs to expand, a (token, row) pair 72 absorbed
# vs 40 naive: naive from 17 new tokens (ds-compile --explain).
THRESHOLD = 17


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("naive_ckpt")
    cfg = checkpoint.PRESETS["tiny_v3"]()
    cfg["max_position_embeddings"] = MAX_POS
    checkpoint.write_checkpoint(str(d), cfg)
    return str(d)


def _compile(ckpt, out, *args):
    r = subprocess.run([os.path.join(BIN_DIR, "ds-compile"), ckpt, "-o", out, *args],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return r.stderr


@pytest.fixture(scope="module")
def artifacts(ckpt, tmp_path_factory):
    d = tmp_path_factory.mktemp("naive_art")
    arts = {}
    for name, args in {
        "auto": ["--explain"],
        "never": ["--mla-naive-min-tokens=" + NEVER],
        # Every sequence naive, the context in one-page chunks: several
        # chunks merged by log-sum-exp.
        "always": ["--mla-naive-min-tokens=0", "--attention-chunk=1"],
    }.items():
        path = str(d / (name + ".dsa"))
        arts[name] = (path, _compile(ckpt, path, *args))
    return arts


def test_explain_prints_the_threshold(artifacts):
    err = artifacts["auto"][1]
    assert ("@ragged_step (a ragged batch over the paged cache) chooses the form per "
            f"sequence at run time: naive for sequences with >= {THRESHOLD} new tokens") in err
    assert "naive wins when new tokens * 32 > 512" in err


def _requests():
    rng = np.random.default_rng(11)
    prompts = [[int(t) for t in rng.integers(2, 64, n)] for n in (5, 100, 6)]
    forced = [[int(t) for t in rng.integers(2, 64, n)] for n in (30, 8, 30)]
    return prompts, forced


def _run(artifact, ckpt):
    prompts, forced = _requests()
    # A 48-token budget: the 100-token prompt goes in chunks of ~38 and 46
    # tokens (naive, the second over a context of its own pages, crossing a
    # page) and a short rest (absorbed), each beside the others' decodes.
    eng = dsmlir.Engine(artifact, ckpt, num_pages=8, max_num_seqs=4,
                        max_num_batched_tokens=48)
    outs = eng.generate(prompts, force_tokens=forced, token_logits=True)
    return prompts, forced, outs, eng.stats()


def test_mixed_step_naive_and_absorbed(ckpt, artifacts):
    prompts, forced, auto, s_auto = _run(artifacts["auto"][0], ckpt)
    _, _, never, s_never = _run(artifacts["never"][0], ckpt)
    # Both forms ran in the auto run (naive: the long chunks; absorbed: the
    # decodes beside them), none naive in the forced-absorbed one.
    assert s_auto["step_naive_segments"] >= 2, s_auto
    assert s_auto["step_naive_segments"] < s_auto["step_segments"], s_auto
    assert s_never["step_naive_segments"] == 0, s_never
    assert s_never["step_segments"] == s_auto["step_segments"]
    # The absorbed form's two head products per layer (q_nope through W_UK,
    # the attention's output through W_UV) compute the rows of the absorbed
    # sequences only: a naive sequence's rows are skipped (counted by the
    # runtime call itself), an absorbed one's never are.
    layers = checkpoint.PRESETS["tiny_v3"]()["num_hidden_layers"]
    assert s_auto["step_tokens"] == s_never["step_tokens"] > 0
    assert s_auto["step_naive_tokens"] >= 2 * THRESHOLD, s_auto
    assert s_never["step_naive_tokens"] == 0, s_never
    assert s_auto["step_head_matmul_rows"] == 2 * layers * (
        s_auto["step_tokens"] - s_auto["step_naive_tokens"]), s_auto
    assert s_never["step_head_matmul_rows"] == 2 * layers * s_never["step_tokens"], s_never
    for i, p in enumerate(prompts):
        assert auto[i]["tokens"] == forced[i]
        err = np.abs(auto[i]["token_logits"] - never[i]["token_logits"]).max()
        assert err < 1e-5, f"request {i}: naive vs absorbed {err}"
        ref = reference_logits(ckpt, p + forced[i])[len(p) - 1:-1]
        err = np.abs(auto[i]["token_logits"] - ref).max()
        assert err < 1e-5, f"request {i} vs reference: {err}"


def test_every_sequence_naive_in_page_chunks(ckpt, artifacts):
    prompts, forced, outs, s = _run(artifacts["always"][0], ckpt)
    assert s["step_naive_segments"] == s["step_segments"] > 0, s
    assert s["step_naive_tokens"] == s["step_tokens"] > 0, s
    assert s["step_head_matmul_rows"] == 0, s
    for i, p in enumerate(prompts):
        ref = reference_logits(ckpt, p + forced[i])[len(p) - 1:-1]
        err = np.abs(outs[i]["token_logits"] - ref).max()
        assert err < 1e-5, f"request {i} vs reference: {err}"


def test_debug_line_names_the_naive_sequences(ckpt, artifacts, tmp_path):
    # ds-run goes through @ragged_step as a batch of one: a 40-token prompt
    # is one naive segment, each decode an absorbed one.
    prompt = ",".join(str(t) for t in range(2, 42))
    env = dict(os.environ, DSRT_DEBUG="1")
    r = subprocess.run([os.path.join(BIN_DIR, "ds-run"), artifacts["auto"][0], "--weights", ckpt,
                        "--prompt-tokens", prompt, "--max-new-tokens", "2"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if "naive MLA form" in l]
    assert lines == ["dsrt: ragged step: a sequence of 40 new tokens takes the naive MLA form"], r.stderr
