"""bf16 latent caches through the paged step (@ragged_step, StepExecutor):
sessions and the engine take it, and every request of a mixed engine batch
(chunked prefills, pages crossed, a preempted and recomputed request, a
prefix-cache hit) matches the float64 reference that stores its cache as
bf16, within 1e-4 once the rounding ties f32 decides the other way are
stored as their other neighbour (ds_testing/rounding_ties.py)."""
import numpy as np
import pytest

import dsmlir
from ds_testing import checkpoint
from ds_testing.rounding_ties import TieBook, resolve_ties
from ds_testing.reference import ReferenceModel

MAX_POS = 256


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("kvdtype_ckpt")
    cfg = checkpoint.PRESETS["tiny_v3"]()
    cfg["max_position_embeddings"] = MAX_POS
    checkpoint.write_checkpoint(str(d), cfg)
    return str(d)


def _artifact(ckpt, tmp_path_factory, dtype):
    path = str(tmp_path_factory.mktemp(f"kvdtype_{dtype}") / "m.dsa")
    dsmlir.compile(ckpt, path, dtype=dtype)
    return path


@pytest.fixture(scope="module")
def bf16_artifact(ckpt, tmp_path_factory):
    return _artifact(ckpt, tmp_path_factory, "bf16")


def _against_reference(ref, dtype, tokens, first_row, got):
    """Max |got - reference| over rows first_row.. of `tokens`, ties resolved."""
    def run(flips):
        cache = ref.new_cache(dtype)
        cache.tie_window, cache.book = 1e-5, TieBook(flips)
        return cache.book, ref.forward(tokens, 0, cache)

    compiled = np.full((len(tokens), got.shape[1]), np.nan)
    compiled[first_row:first_row + len(got)] = got
    logits, _, flips = resolve_ties(run, compiled, 1e-4)
    return np.nanmax(np.abs(logits - compiled)), len(flips)


def test_bf16_engine_batch_through_the_step(ckpt, bf16_artifact, monkeypatch):
    monkeypatch.delenv("DSRT_ENGINE_EXECUTOR", raising=False)
    rng = np.random.default_rng(5)
    shared = [int(t) for t in rng.integers(2, 64, 140)]
    prompts = [[int(t) for t in rng.integers(2, 64, 130)], shared + [5, 6, 7],
               [int(t) for t in rng.integers(2, 64, 33)], shared + [9, 8]]
    forced = [[int(t) for t in rng.integers(2, 64, n)] for n in (12, 5, 40, 9)]
    eng = dsmlir.Engine(bf16_artifact, ckpt, num_pages=4, max_num_seqs=3,
                        max_num_batched_tokens=48)
    first = eng.generate([prompts[1]], force_tokens=[forced[1]], token_logits=True)
    rest = eng.generate([prompts[i] for i in (3, 0, 2)],
                        force_tokens=[forced[i] for i in (3, 0, 2)], token_logits=True)
    got = {1: first[0], 3: rest[0], 0: rest[1], 2: rest[2]}
    stats = eng.stats()
    assert stats["step_calls"] > 0, "the bf16 engine runs the session executor"
    assert stats["preemptions"] > 0 and got[3]["prefix_hit_tokens"] == 128
    ref = ReferenceModel.load(ckpt)
    model = dsmlir.Model(bf16_artifact, ckpt)
    for i, p in enumerate(prompts):
        o = got[i]["token_logits"]
        assert o.shape == (len(forced[i]), 64)
        err, flips = _against_reference(ref, "bf16", p + forced[i], len(p) - 1, o)
        assert err < 1e-4, f"request {i} vs the bf16 reference: {err} ({flips} ties)"
        solo = model.generate(p, force_tokens=forced[i], capacity=MAX_POS)["logits"]
        err, flips = _against_reference(ref, "bf16", p + forced[i], 0, solo)
        assert err < 1e-4, f"request {i} alone vs the bf16 reference: {err} ({flips} ties)"


def test_bf16_reference_tells_truncation_apart(ckpt, bf16_artifact):
    """The tie search cannot hide a cache write that truncates: a reference
    that truncates stays far away."""
    rng = np.random.default_rng(3)
    p, f = [int(t) for t in rng.integers(2, 64, 20)], [int(t) for t in rng.integers(2, 64, 8)]
    got = dsmlir.Model(bf16_artifact, ckpt).generate(p, force_tokens=f, capacity=64)["logits"]
    ref = ReferenceModel.load(ckpt)

    def run(flips):
        cache = ref.new_cache("bf16", "truncate")
        cache.tie_window, cache.book = 1e-5, TieBook(flips)
        return cache.book, ref.forward(p + f, 0, cache)
    logits, _, _ = resolve_ties(run, got, 1e-4)
    assert np.abs(logits - got).max() > 1e-3
