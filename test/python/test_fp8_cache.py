"""The FP8 latent cache (ds-compile --kv-dtype fp8) through dsmlir.Model and
dsmlir.Engine: bytes per token as the layout says, the engine's pages at a
fixed kv_cache_bytes, and a mixed engine batch through the paged step
(chunked prefills, a prefix-cache hit on shared fp8 pages, decodes) giving the
logits of each request run alone and of the float64 reference that stores
its cache rows as the FP8 cache does."""
import numpy as np
import pytest

import dsmlir
from ds_testing import checkpoint
from ds_testing.reference import ReferenceModel

MAX_POS = 256


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("fp8kv_ckpt")
    cfg = checkpoint.PRESETS["fp8kv_v3"]()  # kv_lora_rank 256, rope 8, 3 layers
    cfg["max_position_embeddings"] = MAX_POS
    checkpoint.write_checkpoint(str(d), cfg)
    return str(d)


@pytest.fixture(scope="module")
def artifacts(ckpt, tmp_path_factory):
    d = tmp_path_factory.mktemp("fp8kv_art")
    out = {}
    for dtype in ("f32", "bf16", "fp8"):
        out[dtype] = str(d / f"{dtype}.dsa")
        dsmlir.compile(ckpt, out[dtype], dtype=dtype)
    return out


def test_bytes_per_token_and_engine_pages(ckpt, artifacts):
    per_token = {k: dsmlir.Model(a, ckpt).info["kv_cache_bytes_per_token"]
                 for k, a in artifacts.items()}
    # 3 layers x (256 + 8) values; fp8: 256 e4m3 + 2 f32 scales + 8 bf16.
    assert per_token == {"f32": 3 * 264 * 4, "bf16": 3 * 264 * 2,
                         "fp8": 3 * (256 + 2 * 4 + 8 * 2)}
    budget = 16 * 64 * per_token["fp8"]
    pages = {k: dsmlir.Engine(a, ckpt, kv_cache_bytes=budget).stats()["pages_total"]
             for k, a in artifacts.items() if k != "bf16"}
    assert pages == {"fp8": 16, "f32": budget // (64 * per_token["f32"])}


def test_engine_batch_matches_solo_runs_and_the_fp8_reference(ckpt, artifacts):
    art = artifacts["fp8"]
    rng = np.random.default_rng(7)
    shared = [int(t) for t in rng.integers(2, 64, 140)]
    prompts = [shared + [5, 6], [int(t) for t in rng.integers(2, 64, 90)],
               shared + [9], [int(t) for t in rng.integers(2, 64, 9)]]
    forced = [[int(t) for t in rng.integers(2, 64, n)] for n in (6, 20, 8, 30)]
    model = dsmlir.Model(art, ckpt)
    solo = [model.generate(p, force_tokens=f, capacity=MAX_POS)["logits"]
            for p, f in zip(prompts, forced)]
    eng = dsmlir.Engine(art, ckpt, num_pages=8, max_num_seqs=4, max_num_batched_tokens=48)
    first = eng.generate([prompts[0]], force_tokens=[forced[0]], token_logits=True)
    rest = eng.generate(prompts[1:], force_tokens=forced[1:], token_logits=True)
    outs = first + rest
    assert outs[2]["prefix_hit_tokens"] == 128
    # fp8 pages through @ragged_step (StepExecutor), not a session each.
    assert eng.stats()["step_calls"] > 0
    ref = ReferenceModel.load(ckpt)
    for i, (p, f, o) in enumerate(zip(prompts, forced, outs)):
        want = solo[i][len(p) - 1:len(p) - 1 + len(f)]
        # Batched and solo steps multiply different row counts, which the
        # AVX-512 kernels sum in different orders (ulps apart; equal with
        # DSRT_CPU_ISA=scalar); a latent that close to an e4m3 rounding
        # boundary is then stored one e4m3 step apart: measured 1.7e-4 on
        # request 3. f32 caches hold 1e-5 here (test_engine.py).
        assert np.abs(o["token_logits"] - want).max() < 1e-3, f"request {i}"
        r = ref.forward(p + f, 0, ref.new_cache("fp8"))[len(p) - 1:-1]
        err = np.abs(o["token_logits"] - r).max()
        # A latent value within f32 rounding of an e4m3 rounding boundary
        # may round the other way than in float64: one e4m3 step of one
        # value, measured 5.5e-4 on request 0 (148 tokens); a wrong group
        # or scale is 0.1 or more away (test/Integration/CPU/fp8-cache.test).
        assert err < 1e-3, f"request {i} vs the fp8 reference: {err}"
