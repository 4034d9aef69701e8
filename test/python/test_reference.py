"""The numpy reference agrees with itself across forms and cache use, with a
loop-by-loop transcription of SEMANTICS.md, and with hand-computed routing
cases, so parity failures point at the compiler, not at it."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from ds_testing import checkpoint
from ds_testing.reference import (ReferenceModel, apply_rope, check_config, reference_logits,
                                  rope_frequencies, route, softmax_scale, yarn_mscale)

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
PRESETS = ["tiny_v3", "tiny_v2_lite", "tiny_v2_grouped", "tiny_noyarn", "demo"]
TOKENS = [3, 9, 4, 22, 17, 5, 8, 30, 31, 2, 7, 6, 12, 14, 19, 25, 40, 41, 42, 11]


def model(preset, seed=0, **overrides):
    cfg = dict(checkpoint.PRESETS[preset](), **overrides)
    return ReferenceModel(cfg, checkpoint.random_weights(cfg, seed))


def rel(a, b):
    return np.abs(a - b).max() / max(1.0, np.abs(b).max())


# ---------------------------------------------------------------- self-consistency

@pytest.mark.parametrize("preset", PRESETS)
def test_naive_equals_absorbed(preset):
    m = model(preset)
    a = m.forward(TOKENS, 0, m.new_cache(), absorbed=False)
    routing = {L: ids.copy() for L, ids in m.last_routing.items()}
    b = m.forward(TOKENS, 0, m.new_cache(), absorbed=True)
    assert a.shape == (len(TOKENS), m.cfg["vocab_size"])
    assert rel(a, b) < 1e-9
    assert all(np.array_equal(routing[L], m.last_routing[L]) for L in routing)


@pytest.mark.parametrize("preset", PRESETS)
def test_decode_through_cache_equals_prefill(preset):
    m = model(preset)
    full = m.forward(TOKENS, 0, m.new_cache())
    for absorbed in (False, True):
        cache = m.new_cache()
        rows = [m.forward(TOKENS[:5], 0, cache, absorbed), m.forward(TOKENS[5:8], 5, cache, absorbed)]
        for i in range(8, len(TOKENS)):
            rows.append(m.forward([TOKENS[i]], i, cache, absorbed))
        assert len(cache) == len(TOKENS)
        assert rel(np.concatenate(rows), full) < 1e-9


def test_cache_holds_only_latent_and_rope_key():
    m = model("tiny_v3")
    cache = m.new_cache()
    m.forward(TOKENS[:6], 0, cache)
    assert cache.elements_per_token() == 3 * (16 + 4)
    assert [c.shape for c in cache.c] == [(6, 16)] * 3 and [k.shape for k in cache.k_pe] == [(6, 4)] * 3
    with pytest.raises(ValueError, match="start_pos 3 but the cache holds 6"):
        m.forward([1], 3, cache)
    with pytest.raises(ValueError, match="out of range"):
        m.forward([64], 6, cache)


def test_logits_depend_on_position():
    m = model("tiny_v3")
    c1, c2 = m.new_cache(), m.new_cache()
    m.forward([7] * 10, 0, c1)
    m.forward([7] * 3, 0, c2)
    # Same token after a run of the same token: only RoPE can tell positions apart.
    assert np.abs(m.forward([5], 10, c1) - m.forward([5], 3, c2)).max() > 1e-3
    # Both orders of the same two tokens, at the same positions: differ.
    a = m.forward([5, 9], 0, m.new_cache())[1]
    b = m.forward([9, 5], 0, m.new_cache())[1]
    assert np.abs(a - b).max() > 1e-3


# ---------------------------------------------------------------- a loop transcription

def loop_mla(cfg, w, L, xs):
    """SEMANTICS.md's naive MLA for one layer, written with explicit loops and
    row slices (no reshapes), for tokens xs at positions 0..n-1."""
    H, dn, dr, dv, dc = (cfg["num_attention_heads"], cfg["qk_nope_head_dim"],
                         cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"])
    p = f"model.layers.{L}.self_attn."
    freqs = rope_frequencies(cfg)

    def norm(v, g):
        return v / math.sqrt(sum(t * t for t in v) / len(v) + 1e-6) * g

    def rope(v, pos):
        out = v.copy()
        for i in range(dr // 2):
            a = pos * freqs[i]
            out[2 * i] = v[2 * i] * math.cos(a) - v[2 * i + 1] * math.sin(a)
            out[2 * i + 1] = v[2 * i] * math.sin(a) + v[2 * i + 1] * math.cos(a)
        return out

    scale = (dn + dr) ** -0.5 * yarn_mscale(cfg) ** 2
    lat, kpe, qs = [], [], []
    for t, x in enumerate(xs):
        if cfg.get("q_lora_rank"):
            q = w[p + "q_b_proj.weight"] @ norm(w[p + "q_a_proj.weight"] @ x,
                                                 w[p + "q_a_layernorm.weight"])
        else:
            q = w[p + "q_proj.weight"] @ x
        heads = []
        for h in range(H):
            row = q[h * (dn + dr):(h + 1) * (dn + dr)]
            heads.append((row[:dn], rope(row[dn:], t)))
        qs.append(heads)
        kv = w[p + "kv_a_proj_with_mqa.weight"] @ x
        lat.append(norm(kv[:dc], w[p + "kv_a_layernorm.weight"]))
        kpe.append(rope(kv[dc:], t))
    kvb = w[p + "kv_b_proj.weight"]
    out = []
    for t in range(len(xs)):
        o = []
        for h in range(H):
            base = h * (dn + dv)
            w_uk, w_uv = kvb[base:base + dn], kvb[base + dn:base + dn + dv]
            q_nope, q_pe = qs[t][h]
            scores = [scale * (q_nope @ (w_uk @ lat[s]) + q_pe @ kpe[s]) for s in range(t + 1)]
            mx = max(scores)
            e = [math.exp(sc - mx) for sc in scores]
            o.append(sum(e[s] / sum(e) * (w_uv @ lat[s]) for s in range(t + 1)))
        out.append(w[p + "o_proj.weight"] @ np.concatenate(o))
    return np.array(out)


@pytest.mark.parametrize("preset", ["tiny_v3", "tiny_v2_lite"])
def test_mla_matches_loop_transcription(preset):
    # rms_norm_eps far from 1e-6: q_a/kv_a norms must still use 1e-6.
    m = model(preset, seed=1, rms_norm_eps=0.5)
    xs = np.random.default_rng(0).standard_normal((6, m.cfg["hidden_size"]))
    want = loop_mla(m.cfg, m.w, 1, xs)
    for absorbed in (False, True):
        got = m._mla(1, xs, np.arange(6.0), m.new_cache(), absorbed)
        assert rel(got, want) < 1e-12


def loop_forward(m, tokens):
    """SEMANTICS.md's block, token by token: embedding, pre-norm residual
    blocks (MLA, then dense MLP or routed experts + shared MLP), final norm,
    lm_head. Routing itself comes from route(), tested by hand below."""
    cfg, w = m.cfg, m.w
    eps = cfg["rms_norm_eps"]

    def norm(v, g):
        return v / math.sqrt(float(v @ v) / len(v) + eps) * g

    def mlp(v, p):
        g, u = w[p + "gate_proj.weight"] @ v, w[p + "up_proj.weight"] @ v
        return w[p + "down_proj.weight"] @ (g / (1 + np.exp(-g)) * u)

    xs = [w["model.embed_tokens.weight"][t] for t in tokens]
    for L in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{L}."
        att = loop_mla(cfg, w, L, [norm(x, w[p + "input_layernorm.weight"]) for x in xs])
        hs = [x + a for x, a in zip(xs, att)]
        xs = []
        for h in hs:
            v = norm(h, w[p + "post_attention_layernorm.weight"])
            if not checkpoint.is_moe_layer(cfg, L):
                y = mlp(v, p + "mlp.")
            else:
                ids, wts = route(cfg, v[None], w[p + "mlp.gate.weight"],
                                 w.get(p + "mlp.gate.e_score_correction_bias"))
                y = sum(wt * mlp(v, p + f"mlp.experts.{e}.") for e, wt in zip(ids[0], wts[0]))
                if cfg.get("n_shared_experts"):
                    y = y + mlp(v, p + "mlp.shared_experts.")
            xs.append(h + y)
    return np.array([w["lm_head.weight"] @ norm(x, w["model.norm.weight"]) for x in xs])


@pytest.mark.parametrize("preset", ["tiny_v3", "tiny_v2_lite", "tiny_noyarn"])
def test_forward_matches_loop_transcription(preset):
    m = model(preset, seed=2)
    toks = TOKENS[:6]
    assert rel(m.forward(toks, 0, m.new_cache()), loop_forward(m, toks)) < 1e-10


def test_layer_norms_use_rms_norm_eps():
    a = model("tiny_noyarn", rms_norm_eps=1e-6)
    b = model("tiny_noyarn", rms_norm_eps=0.5)
    assert rel(a.forward(TOKENS[:4], 0, a.new_cache()), b.forward(TOKENS[:4], 0, b.new_cache())) > 1e-3


# ---------------------------------------------------------------- RoPE and YaRN

def test_rope_rotates_interleaved_pairs():
    f = np.array([0.3, 0.05])
    x = np.eye(4)[None]  # [T=1, 4 basis vectors, dr=4]
    got = apply_rope(x, np.array([2.0]), f)[0]
    c0, s0, c1, s1 = math.cos(0.6), math.sin(0.6), math.cos(0.1), math.sin(0.1)
    assert np.allclose(got, [[c0, s0, 0, 0], [-s0, c0, 0, 0], [0, 0, c1, s1], [0, 0, -s1, c1]])
    # relative: <R(p) q, R(t) k> depends on p - t only
    rng = np.random.default_rng(0)
    q, k = rng.standard_normal((1, 4)), rng.standard_normal((1, 4))
    d1 = apply_rope(q, np.array([7.0]), f) @ apply_rope(k, np.array([3.0]), f).T
    d2 = apply_rope(q, np.array([104.0]), f) @ apply_rope(k, np.array([100.0]), f).T
    assert np.isclose(d1, d2)


def test_yarn_frequencies_and_scale_for_v3_dims():
    cfg = dict(checkpoint.tiny_v3(), qk_rope_head_dim=64, qk_nope_head_dim=128,
               rope_scaling={"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                             "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0})
    # corr(32) = 64 ln(4096 / 64pi) / (2 ln 1e4) = 10.47 -> low 10; corr(1) = 22.5 -> high 23
    f = 10000.0 ** (-2.0 * np.arange(32) / 64)
    got = rope_frequencies(cfg)
    assert np.allclose(got[:11], f[:11]) and np.allclose(got[23:], f[23:] / 40)
    r = (16 - 10) / 13
    assert np.isclose(got[16], f[16] / 40 * r + f[16] * (1 - r))
    m = 0.1 * math.log(40) + 1
    assert np.isclose(softmax_scale(cfg), 192 ** -0.5 * m * m)


def test_yarn_tiny_presets():
    cfg = checkpoint.tiny_v3()
    plain = dict(cfg, rope_scaling=None)
    f_yarn, f = rope_frequencies(cfg), rope_frequencies(plain)
    # dr 4, L0 16: low 0, high 1 -> f_0 kept, f_1 divided by the factor
    assert f_yarn[0] == f[0] and np.isclose(f_yarn[1], f[1] / 4.0)
    assert np.isclose(softmax_scale(cfg), 12 ** -0.5 * (0.1 * math.log(4) + 1) ** 2)
    assert np.isclose(softmax_scale(plain), 12 ** -0.5)
    lite = checkpoint.tiny_v2_lite()
    assert np.isclose(yarn_mscale(lite), 0.1 * 0.707 * math.log(4) + 1)
    assert yarn_mscale(dict(lite, rope_scaling=dict(lite["rope_scaling"], factor=1.0))) == 1.0


def test_yarn_past_original_length_runs_and_differs():
    toks = (TOKENS * 3)[:48]  # positions 0..47, past original_max_position_embeddings 16
    yarn = model("tiny_v3")
    got = yarn.forward(toks, 0, yarn.new_cache())
    assert np.isfinite(got).all()
    plain = model("tiny_v3", rope_scaling=None)
    assert rel(got, plain.forward(toks, 0, plain.new_cache())) > 1e-3
    # frequencies alone (m = 1, same softmax scale) still change the result
    freq_only = model("tiny_v3", rope_scaling=dict(checkpoint.tiny_v3()["rope_scaling"],
                                                   mscale=0, mscale_all_dim=0))
    assert softmax_scale(freq_only.cfg) == softmax_scale(plain.cfg)
    assert rel(freq_only.forward(toks, 0, freq_only.new_cache()),
               plain.forward(toks, 0, plain.new_cache())) > 1e-3


def test_config_refusals():
    v3 = checkpoint.tiny_v3()
    with pytest.raises(ValueError, match="mscale .* != mscale_all_dim"):
        check_config(dict(v3, rope_scaling=dict(v3["rope_scaling"], mscale=0.9)))
    with pytest.raises(ValueError, match="only type 'yarn'"):
        check_config(dict(v3, rope_scaling={"type": "linear", "factor": 2.0}))
    with pytest.raises(ValueError, match="topk_method"):
        check_config(dict(v3, topk_method="bogus"))
    with pytest.raises(ValueError, match="n_group"):
        check_config(dict(v3, n_group=3))
    with pytest.raises(ValueError, match="model_type"):
        check_config(dict(v3, model_type="llama"))
    check_config(checkpoint.tiny_v2_lite())


# ---------------------------------------------------------------- routing by hand

def _cfg(**kw):
    base = dict(model_type="deepseek_v3", n_routed_experts=8, num_experts_per_tok=2, n_group=4,
                topk_group=1, scoring_func="sigmoid", topk_method="noaux_tc",
                norm_topk_prob=True, routed_scaling_factor=2.5)
    base.update(kw)
    return base


def sig(v):
    return 1 / (1 + np.exp(-np.asarray(v, np.float64)))


ID = np.eye(8)  # router weight: logits = x


def test_greedy_ignores_groups():
    x = np.array([[3.0, 0, 2.9, 0, 0, 0, 0, 0]])
    ids, _ = route(_cfg(topk_method="greedy", scoring_func="softmax", model_type="deepseek_v2"),
                   x, ID)
    assert sorted(ids[0]) == [0, 2]  # across groups 0 and 1 although topk_group is 1
    ids, _ = route(_cfg(topk_method="group_limited_greedy", scoring_func="softmax",
                        model_type="deepseek_v2"), x, ID)
    assert sorted(ids[0]) == [0, 1]  # grouped: only group 0 survives


def test_group_max_vs_top2_sum():
    # groups (0,1) (2,3) (4,5) (6,7); group 0 has the single best expert,
    # group 1 the best pair.
    x = np.array([[4.0, -4.0, 3.0, 2.5, -4, -4, -4, -4]])
    ids, _ = route(_cfg(topk_method="group_limited_greedy", scoring_func="softmax",
                        model_type="deepseek_v2"), x, ID)
    assert sorted(ids[0]) == [0, 1]  # max: 4 > 3
    assert sig(4) + sig(-4) < sig(3) + sig(2.5)  # 1.0 < 1.877
    ids, w = route(_cfg(), x, ID, np.zeros(8))
    assert sorted(ids[0]) == [2, 3]  # sum of top-2: group 1
    s = sig([3.0, 2.5])
    assert np.allclose(sorted(w[0]), sorted(s / s.sum() * 2.5))


def test_noaux_tc_bias_selects_but_does_not_weigh():
    x = np.array([[0.2, 0.0, 0.0, 0.1, -0.3, 0.0, 0.0, 0.05]])
    bias = np.array([0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.25, 0.1])
    s = sig(x[0])
    sel = s + bias
    # group scores (top-2 sums of sel): g0 s0+s1, g1 s2+.3+s3, g2 s4+s5, g3 s6+.25+s7+.1
    g = [sel[0] + sel[1], sel[2] + sel[3], sel[4] + sel[5], sel[6] + sel[7]]
    assert np.argsort(g)[-2:].tolist() == [1, 3]
    cfg = _cfg(topk_group=2)
    ids, w = route(cfg, x, ID, bias)
    # within groups 1 and 3 the best sel are expert 2 (s2 + .3) and 6 (s6 + .25)
    assert ids[0].tolist() == [2, 6]
    want = s[[2, 6]] / s[[2, 6]].sum() * 2.5  # from s, not sel
    assert np.allclose(w[0], want)
    assert not np.allclose(w[0], sel[[2, 6]] / sel[[2, 6]].sum() * 2.5)
    ids0, _ = route(cfg, x, ID, np.zeros(8))
    assert sorted(ids0[0]) == [0, 3]  # without bias: groups 0 and 1, experts 0 and 3
    # a bias given with another method is ignored
    ids_g, _ = route(_cfg(topk_method="greedy"), x, ID, bias)
    assert sorted(ids_g[0]) == [0, 3]


def test_normalisation_and_scaling_rules():
    x = np.array([[2.0, 1.0, 0.0, -1.0, 0.0, 0.0]])
    w6 = np.eye(6)
    sm = np.exp(x[0]) / np.exp(x[0]).sum()
    sg = sig(x[0])
    v2 = dict(model_type="deepseek_v2", n_routed_experts=6, topk_method="greedy",
              scoring_func="softmax", routed_scaling_factor=3.0)

    def w_of(**kw):
        return route(dict(v2, **kw), x, w6)[1][0]

    assert np.allclose(w_of(num_experts_per_tok=2, norm_topk_prob=False), sm[:2] * 3)
    assert np.allclose(w_of(num_experts_per_tok=2, norm_topk_prob=True), sm[:2] / sm[:2].sum())
    assert np.allclose(w_of(num_experts_per_tok=1, norm_topk_prob=True), sm[:1] * 3)
    v3 = dict(v2, model_type="deepseek_v3", scoring_func="sigmoid")
    assert np.allclose(w_of(**v3, num_experts_per_tok=2, norm_topk_prob=True),
                       sg[:2] / sg[:2].sum() * 3)
    assert np.allclose(w_of(**v3, num_experts_per_tok=1, norm_topk_prob=True), sg[:1] * 3)
    assert np.allclose(w_of(**v3, num_experts_per_tok=2, norm_topk_prob=False), sg[:2] * 3)


def test_routing_record_of_a_forward_call():
    m = model("tiny_noyarn")
    m.forward(TOKENS[:7], 0, m.new_cache())
    assert sorted(m.last_routing) == [0, 2]
    for L, ids in m.last_routing.items():
        assert ids.shape == (7, 2) and ids.dtype.kind == "i"
        assert ((0 <= ids) & (ids < 8)).all()
        assert all(len(set(r)) == 2 for r in ids.tolist())
        assert m.last_routing_weights[L].shape == (7, 2)


def test_routing_selects_many_experts_on_random_weights():
    """Guards the 'non-trivial weights' rule: routing is not nearly tied."""
    m = model("demo")
    m.forward(list(range(2, 60)), 0, m.new_cache())
    for ids in m.last_routing.values():
        assert len(np.unique(ids)) >= 12


# ---------------------------------------------------------------- checkpoints and the CLI

def test_fp8_checkpoint_reference_close_to_f32(tmp_path):
    cfg = checkpoint.tiny_noyarn()
    src = checkpoint.random_weights(cfg, 3)
    _, stored = checkpoint.write_checkpoint(str(tmp_path / "fp8"), cfg, src, dtype="fp8")
    m8 = ReferenceModel.load(str(tmp_path / "fp8"))
    for name, w in stored.items():
        assert np.allclose(m8.w[name], w, rtol=1e-6, atol=1e-12)
    name = "model.layers.0.self_attn.q_b_proj.weight"
    assert np.abs(m8.w[name] - src[name]).max() < 0.07 * np.abs(src[name]).max()
    m32 = ReferenceModel(cfg, src)
    a = m8.forward(TOKENS[:3], 0, m8.new_cache())
    b = m32.forward(TOKENS[:3], 0, m32.new_cache())
    assert rel(a, b) < 0.3 and np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98


def test_reference_cli(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    checkpoint.write_checkpoint(ckpt, checkpoint.tiny_v3(), dtype="bf16", shards=2)
    out, routing = str(tmp_path / "l.npy"), str(tmp_path / "r.json")
    toks = TOKENS[:9]
    subprocess.run([sys.executable, os.path.join(TOOLS, "reference.py"), "--checkpoint", ckpt,
                    "--tokens", ",".join(map(str, toks)), "--out", out, "--routing-out", routing,
                    "--prefill", "4", "--absorbed"], check=True, capture_output=True)
    got = np.load(out)
    want = reference_logits(ckpt, toks)
    assert got.dtype == np.float64 and got.shape == (9, 64) and rel(got, want) < 1e-9
    recs = json.load(open(routing))
    assert [r["layer"] for r in recs] == [1, 2]
    m = ReferenceModel.load(ckpt)
    m.forward(toks, 0, m.new_cache())
    for r in recs:
        assert [sorted(e) for e in r["experts"]] == [sorted(e) for e in m.last_routing[r["layer"]].tolist()]
        assert np.array(r["weights"]).shape == (9, 2)
    bad = subprocess.run([sys.executable, os.path.join(TOOLS, "reference.py"), "--checkpoint",
                          ckpt, "--tokens", "1,99", "--out", out], capture_output=True, text=True)
    assert bad.returncode == 1 and "out of range" in bad.stderr
