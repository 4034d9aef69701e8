"""A float64 numpy reference of DeepSeek V2/V3, written from SEMANTICS.md.

Independent of the compiler: it reads the checkpoint itself and implements
both MLA forms (naive for prefill, absorbed through the latent cache), RoPE
on interleaved pairs with YaRN, and the routing rules of V2 and V3.
"""
import math

import numpy as np

from .checkpoint import is_moe_layer, load_checkpoint


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1.0 + np.exp(-x))


def rope_frequencies(cfg):
    dr = cfg["qk_rope_head_dim"]
    theta = float(cfg.get("rope_theta", 10000.0))
    f = theta ** (-2.0 * np.arange(dr // 2) / dr)
    rs = cfg.get("rope_scaling")
    if not rs:
        return f
    s = float(rs["factor"])
    l0 = float(rs["original_max_position_embeddings"])

    def corr(r):
        return dr * math.log(l0 / (2 * math.pi * r)) / (2 * math.log(theta))

    low = max(math.floor(corr(rs.get("beta_fast", 32))), 0)
    high = min(math.ceil(corr(rs.get("beta_slow", 1))), dr - 1)
    if high == low:
        high += 0.001
    ramp = np.clip((np.arange(dr // 2) - low) / (high - low), 0, 1)
    return f / s * ramp + f * (1 - ramp)


def softmax_scale(cfg):
    m = 1.0
    rs = cfg.get("rope_scaling")
    if rs and rs.get("mscale_all_dim") and float(rs["factor"]) > 1:
        m = 0.1 * float(rs["mscale_all_dim"]) * math.log(float(rs["factor"])) + 1.0
    return (cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]) ** -0.5 * m * m


def apply_rope(x, positions, freqs):
    """x [..., T, (H,) dr]: rotate pairs (x[2i], x[2i+1]) by pos * f_i."""
    ang = positions[:, None] * freqs[None, :]  # [T, dr/2]
    if x.ndim == 3:
        ang = ang[:, None, :]
    c, s = np.cos(ang), np.sin(ang)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def route(cfg, x, w_gate, bias):
    """-> (expert ids [T, k], weights [T, k]) per SEMANTICS.md."""
    logits = x @ w_gate.T
    if cfg.get("scoring_func", "softmax") == "softmax":
        e = np.exp(logits - logits.max(-1, keepdims=True))
        s = e / e.sum(-1, keepdims=True)
    else:
        s = 1.0 / (1.0 + np.exp(-logits))
    sel = s + bias if bias is not None else s.copy()
    k, E = cfg["num_experts_per_tok"], cfg["n_routed_experts"]
    method = cfg.get("topk_method", "greedy")
    if method in ("group_limited_greedy", "noaux_tc"):
        G, Gk = cfg["n_group"], cfg["topk_group"]
        grouped = sel.reshape(len(x), G, E // G)
        if method == "group_limited_greedy":
            gscore = grouped.max(-1)
        else:
            gscore = np.sort(grouped, -1)[..., -2:].sum(-1)
        keep = np.argsort(-gscore, -1, kind="stable")[:, :Gk]
        mask = np.zeros((len(x), G), bool)
        np.put_along_axis(mask, keep, True, -1)
        sel = np.where(np.repeat(mask, E // G, -1), sel, -np.inf)
    ids = np.argsort(-sel, -1, kind="stable")[:, :k]
    w = np.take_along_axis(s, ids, -1)
    norm = k > 1 and cfg.get("norm_topk_prob", False)
    scale = cfg.get("routed_scaling_factor", 1.0)
    if cfg["model_type"] == "deepseek_v3":
        if norm:
            w = w / (w.sum(-1, keepdims=True) + 1e-20)
        w = w * scale
    else:
        if norm:
            w = w / (w.sum(-1, keepdims=True) + 1e-20)
        else:
            w = w * scale
    return ids, w


class ReferenceModel:
    def __init__(self, cfg, weights):
        self.cfg, self.w = cfg, weights
        self.freqs = rope_frequencies(cfg)
        self.scale = softmax_scale(cfg)
        self.last_routing = {}

    @classmethod
    def load(cls, ckpt_dir):
        return cls(*load_checkpoint(ckpt_dir))

    def new_cache(self):
        """Per layer: latent c [t, dc] and roped k_pe [t, dr], as lists."""
        return [{"c": np.zeros((0, self.cfg["kv_lora_rank"])),
                 "kpe": np.zeros((0, self.cfg["qk_rope_head_dim"]))}
                for _ in range(self.cfg["num_hidden_layers"])]

    def mla(self, L, x, pos, cache, absorbed):
        c, w = self.cfg, self.w
        p = f"model.layers.{L}.self_attn."
        H, dn, dr, dv, dc = (c["num_attention_heads"], c["qk_nope_head_dim"],
                             c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"])
        if c.get("q_lora_rank"):
            cq = rms_norm(x @ w[p + "q_a_proj.weight"].T, w[p + "q_a_layernorm.weight"], 1e-6)
            q = cq @ w[p + "q_b_proj.weight"].T
        else:
            q = x @ w[p + "q_proj.weight"].T
        q = q.reshape(len(x), H, dn + dr)
        q_nope, q_pe = q[..., :dn], apply_rope(q[..., dn:], pos, self.freqs)
        kv = x @ w[p + "kv_a_proj_with_mqa.weight"].T
        lat = rms_norm(kv[:, :dc], w[p + "kv_a_layernorm.weight"], 1e-6)
        kpe = apply_rope(kv[:, dc:], pos, self.freqs)
        cache[L]["c"] = np.concatenate([cache[L]["c"], lat])
        cache[L]["kpe"] = np.concatenate([cache[L]["kpe"], kpe])
        C, K = cache[L]["c"], cache[L]["kpe"]
        kvb = w[p + "kv_b_proj.weight"].reshape(H, dn + dv, dc)
        w_uk, w_uv = kvb[:, :dn], kvb[:, dn:]
        causal = np.arange(len(C))[None, :] <= pos[:, None]  # [T, S]
        if absorbed:
            q_lat = np.einsum("thn,hnc->thc", q_nope, w_uk)
            score = np.einsum("thc,sc->ths", q_lat, C) + np.einsum("thr,sr->ths", q_pe, K)
        else:
            k_nope = np.einsum("sc,hnc->shn", C, w_uk)
            score = np.einsum("thn,shn->ths", q_nope, k_nope) + np.einsum("thr,sr->ths", q_pe, K)
        score = np.where(causal[:, None, :], score * self.scale, -np.inf)
        prob = np.exp(score - score.max(-1, keepdims=True))
        prob /= prob.sum(-1, keepdims=True)
        if absorbed:
            u = np.einsum("ths,sc->thc", prob, C)
            o = np.einsum("thc,hvc->thv", u, w_uv)
        else:
            v = np.einsum("sc,hvc->shv", C, w_uv)
            o = np.einsum("ths,shv->thv", prob, v)
        return o.reshape(len(x), H * dv) @ w[p + "o_proj.weight"].T

    def mlp(self, x, p):
        w = self.w
        return (silu(x @ w[p + "gate_proj.weight"].T) * (x @ w[p + "up_proj.weight"].T)) \
            @ w[p + "down_proj.weight"].T

    def ffn(self, L, x):
        p = f"model.layers.{L}.mlp."
        if not is_moe_layer(self.cfg, L):
            return self.mlp(x, p)
        bias = self.w.get(p + "gate.e_score_correction_bias")
        if self.cfg.get("topk_method") != "noaux_tc":
            bias = None
        ids, wts = route(self.cfg, x, self.w[p + "gate.weight"], bias)
        self.last_routing[L] = ids
        y = np.zeros_like(x)
        for t in range(len(x)):
            for j in range(ids.shape[1]):
                y[t] += wts[t, j] * self.mlp(x[t:t + 1], p + f"experts.{ids[t, j]}.")[0]
        if self.cfg.get("n_shared_experts"):
            y += self.mlp(x, p + "shared_experts.")
        return y

    def forward(self, tokens, start_pos, cache, absorbed=True):
        """Logits [n, vocab] for tokens at positions start_pos..; fills cache."""
        c, w = self.cfg, self.w
        tokens = np.asarray(tokens)
        pos = np.arange(start_pos, start_pos + len(tokens), dtype=np.float64)
        x = w["model.embed_tokens.weight"][tokens]
        eps = c.get("rms_norm_eps", 1e-6)
        self.last_routing = {}
        for L in range(c["num_hidden_layers"]):
            p = f"model.layers.{L}."
            h = x + self.mla(L, rms_norm(x, w[p + "input_layernorm.weight"], eps), pos, cache,
                             absorbed)
            x = h + self.ffn(L, rms_norm(h, w[p + "post_attention_layernorm.weight"], eps))
        return rms_norm(x, w["model.norm.weight"], eps) @ w["lm_head.weight"].T


def reference_logits(ckpt_dir, tokens, absorbed=True):
    """One-shot prefill of `tokens`: logits for every position."""
    m = ReferenceModel.load(ckpt_dir)
    return m.forward(tokens, 0, m.new_cache(), absorbed)
