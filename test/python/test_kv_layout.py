"""ds-compile --kv-layout=per-head: @ragged_step's pages hold every head's K
and V (what a multi-head attention deployment caches) instead of the latent.
Same model, so the per-head artifact's logits are the latent artifact's
(within f32 rounding) and the float64 reference's, through the engine (a
mixed batch: chunked prefills, pages crossed, a preemption, a prefix-cache
hit) and through ds-run; and the engine's pool at a byte budget holds
fewer pages by exactly the ratio of the bytes per token."""
import os
import subprocess

import numpy as np
import pytest

import dsmlir
from conftest import BIN_DIR
from ds_testing import checkpoint
from ds_testing.reference import reference_logits

MAX_POS = 256


@pytest.fixture(scope="module")
def cfg():
    # V2-Lite style: q_proj, v_head_dim 6 != qk_nope_head_dim 8, so keys and
    # values of a per-head row have different widths.
    c = checkpoint.PRESETS["tiny_v2_lite"]()
    c["max_position_embeddings"] = MAX_POS
    return c


@pytest.fixture(scope="module")
def ckpt(cfg, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("kvl_ckpt"))
    checkpoint.write_checkpoint(d, cfg)
    return d


@pytest.fixture(scope="module")
def artifacts(ckpt, tmp_path_factory):
    d = tmp_path_factory.mktemp("kvl_art")
    return {layout: dsmlir.compile(ckpt, str(d / f"{layout}.dsa"), kv_layout=layout)
            for layout in ("latent", "per-head")}


def _bytes_per_token(cfg, layout):
    L, H = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    width = cfg["kv_lora_rank"] + dr if layout == "latent" else H * (dn + dr + dv)
    return L * width * 4  # f32


def test_bytes_per_token_and_capacity_at_a_budget(cfg, ckpt, artifacts):
    per = {}
    for layout, art in artifacts.items():
        per[layout] = dsmlir.Model(art, ckpt).info["kv_cache_bytes_per_token"]
        assert per[layout] == _bytes_per_token(cfg, layout)
    # Per layer 16 + 4 = 20 latent values per token against 2 x (8 + 4 + 6) = 36.
    assert (per["latent"], per["per-head"]) == (2 * 20 * 4, 2 * 36 * 4)
    budget = 36 * 64 * per["per-head"]
    pages = {layout: dsmlir.Engine(art, ckpt, kv_cache_bytes=budget,
                                   max_model_len=MAX_POS).stats()["pages_total"]
             for layout, art in artifacts.items()}
    assert pages["per-head"] == 36
    assert pages["latent"] == budget // (64 * per["latent"]) == 64  # 36 x 1.8 = 64.8
    # A budget for one maximal request of the latent layout holds none of
    # the per-head layout's.
    one = (MAX_POS // 64) * 64 * per["latent"]
    dsmlir.Engine(artifacts["latent"], ckpt, kv_cache_bytes=one, max_model_len=MAX_POS)
    with pytest.raises(dsmlir.Error, match="cannot hold one request of max_model_len 256"):
        dsmlir.Engine(artifacts["per-head"], ckpt, kv_cache_bytes=one, max_model_len=MAX_POS)


def _prompts():
    rng = np.random.default_rng(5)
    shared = [int(t) for t in rng.integers(2, 64, 140)]
    return [
        [int(t) for t in rng.integers(2, 64, 130)],   # chunked, crosses pages
        [int(t) for t in rng.integers(2, 64, 7)],
        [int(t) for t in rng.integers(2, 64, 70)],
        shared + [5, 6, 7],                           # computes the shared pages
        [int(t) for t in rng.integers(2, 64, 33)],
        shared + [9, 8],                              # a prefix-cache hit
    ]


def _engine_run(art, ckpt, prompts, forced):
    # 4 pages for requests needing far more: chunked prompts (budget 48
    # tokens), preemptions, and request 5 admitted while 3's pages are cached.
    eng = dsmlir.Engine(art, ckpt, num_pages=4, max_num_seqs=4, max_num_batched_tokens=48)
    first = eng.generate([prompts[3]], force_tokens=[forced[3]], token_logits=True)
    rest = [5, 0, 1, 2, 4]
    outs = eng.generate([prompts[i] for i in rest], force_tokens=[forced[i] for i in rest],
                        token_logits=True)
    got = dict(zip(rest, outs))
    got[3] = first[0]
    return got, eng.stats()


def test_engine_mixed_batch_per_head_equals_latent_and_reference(ckpt, artifacts):
    prompts = _prompts()
    rng = np.random.default_rng(6)
    forced = [[int(t) for t in rng.integers(2, 64, n)] for n in (12, 70, 20, 5, 40, 9)]
    lat, lat_stats = _engine_run(artifacts["latent"], ckpt, prompts, forced)
    ph, ph_stats = _engine_run(artifacts["per-head"], ckpt, prompts, forced)
    for stats in (lat_stats, ph_stats):
        assert stats["step_calls"] > 0 and stats["preemptions"] > 0
        assert stats["prefix_hit_tokens"] >= 128
    assert ph[5]["prefix_hit_tokens"] == 128
    for i, p in enumerate(prompts):
        assert ph[i]["tokens"] == forced[i]
        err = np.abs(ph[i]["token_logits"] - lat[i]["token_logits"]).max()
        assert err < 1e-5, f"request {i}: per-head vs latent {err}"  # measured ~2e-6
        ref = reference_logits(ckpt, p + forced[i])[len(p) - 1:-1]
        err = np.abs(ph[i]["token_logits"] - ref).max()
        assert err < 1e-5, f"request {i}: per-head vs reference {err}"


def _ds_run(art, ckpt, prompt, forced, out):
    subprocess.run([os.path.join(BIN_DIR, "ds-run"), art, "--weights", ckpt,
                    "--prompt-tokens", ",".join(map(str, prompt)),
                    "--force-tokens", ",".join(map(str, forced)),
                    "--dump-logits", out], check=True, capture_output=True, timeout=300)
    return np.load(out)


def test_ds_run_per_head_equals_latent_and_reference(ckpt, artifacts, tmp_path):
    rng = np.random.default_rng(7)
    prompt = [int(t) for t in rng.integers(2, 64, 70)]   # a prefill crossing a page
    forced = [int(t) for t in rng.integers(2, 64, 66)]   # decodes crossing another
    lat = _ds_run(artifacts["latent"], ckpt, prompt, forced, str(tmp_path / "l.npy"))
    ph = _ds_run(artifacts["per-head"], ckpt, prompt, forced, str(tmp_path / "p.npy"))
    assert ph.shape == lat.shape == (len(prompt) + len(forced), 64)
    assert np.abs(ph - lat).max() < 1e-5
    assert np.abs(ph - reference_logits(ckpt, prompt + forced)).max() < 1e-5


def test_bf16_per_head_cache(ckpt, tmp_path):
    """bf16 pages round K and V (not the latent): still the model, within
    bf16's rounding of the cached values."""
    art = dsmlir.compile(ckpt, str(tmp_path / "bf16.dsa"), dtype="bf16", kv_layout="per-head")
    model = dsmlir.Model(art, ckpt)
    assert model.info["kv_cache_bytes_per_token"] == 2 * 36 * 2
    prompt, forced = list(range(2, 60)), list(range(10, 30))
    out = model.generate(prompt, force_tokens=forced, capacity=MAX_POS)
    err = np.abs(out["logits"] - reference_logits(ckpt, prompt + forced)).max()
    # Measured 1.6e-2 (logits up to 3.5); the bf16 latent cache's sessions
    # measure 1.2e-2 on the same model and tokens.
    assert 0 < err < 2.5e-2, err
    eng = dsmlir.Engine(art, ckpt, num_pages=4)
    got = eng.generate([prompt], force_tokens=[forced], return_logits=True)[0]["logits"]
    assert np.abs(got - out["logits"]).max() < 1e-5
    assert eng.stats()["step_calls"] > 0


def test_errors(ckpt, artifacts, tmp_path, monkeypatch):
    compile_ = os.path.join(BIN_DIR, "ds-compile")
    for args, message in (
            (["--kv-layout=per-head", "--kv-dtype", "fp8"],
             "--kv-layout=per-head: fp8 caches are not supported"),
            (["--kv-layout=mha"], "--kv-layout: expected latent or per-head, got 'mha'"),
            (["--kv-layout=per-head", "--target", "cuda", "--emit=ds"],
             "--kv-layout=per-head: the cpu target only")):
        r = subprocess.run([compile_, ckpt, "-o", str(tmp_path / "x.dsa")] + args,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 1 and message in r.stderr, r.stderr
    monkeypatch.setenv("DSRT_ENGINE_EXECUTOR", "session")
    with pytest.raises(dsmlir.Error, match="per-head K/V pages .* step executor only"):
        dsmlir.Engine(artifacts["per-head"], ckpt, num_pages=8)


def test_mtp_is_refused_over_per_head_pages(tmp_path):
    d = str(tmp_path / "mtp")
    checkpoint.write_checkpoint(d, checkpoint.tiny_v3_mtp())
    art = dsmlir.compile(d, str(tmp_path / "m.dsa"), kv_layout="per-head")
    s = dsmlir.Model(art, d).session()
    with pytest.raises(dsmlir.Error, match="multi-token prediction is not built for "
                                           "per-head K/V pages"):
        s.prefill_hidden([5, 9, 14])
    # Plain calls through @ragged_step still serve.
    logits = dsmlir.Model(art, d).generate([5, 9, 14], force_tokens=[3])["logits"]
    assert np.abs(logits - reference_logits(d, [5, 9, 14, 3])).max() < 1e-5
