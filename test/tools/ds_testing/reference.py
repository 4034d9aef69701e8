"""A float64 numpy reference of DeepSeek V2/V3, written from SEMANTICS.md.

Why: parity tests need an oracle that shares no code with the compiler.
It reads the checkpoint itself, implements both MLA forms (naive: per-head
keys and values expanded from the latent; absorbed: attention in the latent
space), RoPE on interleaved pairs with YaRN, and the routing rules of V2 and
V3. Everything is float64 so its own rounding (~1e-15) is far below any
tolerance a compiled model is held to.

    m = ReferenceModel.load(ckpt_dir)
    cache = m.new_cache()
    logits = m.forward(tokens, 0, cache)          # prefill, [n, vocab]
    logits = m.forward([tok], n, cache)           # one decode step
    m.last_routing                                # {moe layer: int [n, top_k]}

    # Multi-token prediction (SEMANTICS.md), checkpoints with an MTP module:
    h = m.forward_hidden(tokens, 0, cache)        # post-final-norm states [n, D]
    mtp = m.new_mtp_cache()
    draft = m.mtp_forward(h, next_tokens, 0, mtp) # [n, vocab], row i predicts t_{i+2}
"""
import math
import re

import numpy as np

from .checkpoint import is_moe_layer, load_checkpoint, load_dtypes

QK_NORM_EPS = 1e-6  # q_a_layernorm / kv_a_layernorm: fixed in DeepSeek's code
TOPK_METHODS = ("greedy", "group_limited_greedy", "noaux_tc")


# ---------------------------------------------------------------- config checks

def check_config(cfg):
    """Refuses configs whose meaning SEMANTICS.md does not pin down, with the
    field named, rather than computing something plausible."""
    def fail(field, msg):
        raise ValueError(f"config field '{field}': {msg}")

    if cfg.get("model_type") not in ("deepseek_v2", "deepseek_v3"):
        fail("model_type", f"expected deepseek_v2 or deepseek_v3, got {cfg.get('model_type')!r}")
    if cfg.get("hidden_act", "silu") != "silu":
        fail("hidden_act", f"only silu is supported, got {cfg.get('hidden_act')!r}")
    if cfg["qk_rope_head_dim"] % 2:
        fail("qk_rope_head_dim", "must be even (RoPE rotates pairs)")
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("type", rs.get("rope_type"))
        if kind != "yarn":
            fail("rope_scaling", f"only type 'yarn' is supported, got {kind!r}")
        m, mall = rs.get("mscale", 1.0), rs.get("mscale_all_dim", 0.0)
        if float(m or 0.0) != float(mall or 0.0):
            fail("rope_scaling", f"mscale ({m}) != mscale_all_dim ({mall}) is not supported: "
                 "the cos/sin factor mscale/mscale_all_dim would not be 1")
    if cfg.get("n_routed_experts"):
        method = cfg.get("topk_method", "greedy")
        if method not in TOPK_METHODS:
            fail("topk_method", f"unknown topk_method {method!r}")
        if cfg.get("scoring_func", "softmax") not in ("softmax", "sigmoid"):
            fail("scoring_func", f"unknown scoring function {cfg.get('scoring_func')!r}")
        E, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
        if not 1 <= k <= E:
            fail("num_experts_per_tok", f"{k} must be in [1, {E}]")
        if method != "greedy":
            G, Gk = cfg["n_group"], cfg["topk_group"]
            if G < 1 or E % G:
                fail("n_group", f"{G} must divide n_routed_experts ({E})")
            if not 1 <= Gk <= G:
                fail("topk_group", f"{Gk} must be in [1, n_group={G}]")
            if k > Gk * (E // G):
                fail("num_experts_per_tok", f"{k} exceeds the experts of the kept groups")
            if method == "noaux_tc" and E // G < 2:
                fail("n_group", "noaux_tc scores a group by its top-2 experts: need >= 2 per group")


# ---------------------------------------------------------------- pieces

def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def silu(x):
    return x * sigmoid(x)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def rope_frequencies(cfg):
    """f_i = theta^(-2i/dr), i < dr/2; with YaRN (rope_scaling present), the
    low frequencies are divided by the factor along a linear ramp."""
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

    low = max(math.floor(corr(float(rs.get("beta_fast", 32)))), 0)
    high = min(math.ceil(corr(float(rs.get("beta_slow", 1)))), dr - 1)
    if high == low:
        high += 0.001
    ramp = np.clip((np.arange(dr // 2) - low) / (high - low), 0.0, 1.0)
    return f / s * ramp + f * (1 - ramp)


def yarn_mscale(cfg):
    """m = 0.1 * mscale_all_dim * ln(s) + 1; 1 without yarn, without
    mscale_all_dim, or with s <= 1."""
    rs = cfg.get("rope_scaling")
    if not rs or not rs.get("mscale_all_dim") or float(rs["factor"]) <= 1:
        return 1.0
    return 0.1 * float(rs["mscale_all_dim"]) * math.log(float(rs["factor"])) + 1.0


def softmax_scale(cfg):
    """(dn+dr)^-0.5 * m^2 (DeepSeek's code; transformers' V2 port omits m^2)."""
    return (cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]) ** -0.5 * yarn_mscale(cfg) ** 2


def apply_rope(x, positions, freqs):
    """x [T, ..., dr]: rotate pairs (x[2i], x[2i+1]) by positions[t] * f_i."""
    ang = np.asarray(positions, np.float64)[:, None] * freqs[None, :]  # [T, dr/2]
    ang = ang.reshape(ang.shape[:1] + (1,) * (x.ndim - 2) + ang.shape[1:])
    c, s = np.cos(ang), np.sin(ang)
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def route(cfg, x, w_gate, bias=None):
    """MoE routing of tokens x [T, D] -> (expert ids [T, k], weights [T, k]).

    Selection uses s + bias (bias: noaux_tc only); weights come from s. Ties
    resolve to the lower expert id / group id (any order is valid; tests
    compare sets)."""
    x = np.atleast_2d(x)
    logits = x @ np.asarray(w_gate, np.float64).T
    s = softmax(logits) if cfg.get("scoring_func", "softmax") == "softmax" else sigmoid(logits)
    method = cfg.get("topk_method", "greedy")
    sel = s + bias if (bias is not None and method == "noaux_tc") else s.copy()
    T, E = s.shape
    k = cfg["num_experts_per_tok"]
    if method in ("group_limited_greedy", "noaux_tc"):
        G, Gk = cfg["n_group"], cfg["topk_group"]
        grouped = sel.reshape(T, G, E // G)
        if method == "group_limited_greedy":
            gscore = grouped.max(-1)
        else:
            gscore = np.sort(grouped, -1)[..., -2:].sum(-1)
        keep = np.argsort(-gscore, -1, kind="stable")[:, :Gk]
        mask = np.zeros((T, G), bool)
        np.put_along_axis(mask, keep, True, -1)
        sel = np.where(np.repeat(mask, E // G, -1), sel, -np.inf)
    elif method != "greedy":
        raise ValueError(f"unknown topk_method {method!r}")
    ids = np.argsort(-sel, -1, kind="stable")[:, :k]
    w = np.take_along_axis(s, ids, -1)
    norm = k > 1 and bool(cfg.get("norm_topk_prob", False))
    scale = float(cfg.get("routed_scaling_factor", 1.0))
    if norm:
        w = w / (w.sum(-1, keepdims=True) + 1e-20)
    if cfg["model_type"] == "deepseek_v3" or not norm:
        w = w * scale  # V3 always scales; V2 only when it did not normalise
    return ids, w


# ---------------------------------------------------------------- the model

def round_to_bf16(x, mode="nearest"):
    """x (float64) stored as bf16 and read back: the float32 value's top 16
    bits, rounded to nearest even (what arith.truncf and cvt.rn.bf16.f32
    do) or truncated ("truncate", to show a check tells the two apart)."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    if mode == "nearest":
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
    elif mode != "truncate":
        raise ValueError(f"rounding mode {mode!r}: nearest or truncate")
    top = ((bits >> 16) << 16).astype(np.uint32)
    return top.view(np.float32).astype(np.float64)


def _e4m3_values():
    """The non-negative finite e4m3 (fn) values, by code 0..126 (0x7f is NaN)."""
    codes = np.arange(127)
    e, m = codes >> 3, codes & 7
    return np.where(e == 0, m * 2.0 ** -9, (1 + m / 8.0) * 2.0 ** (e - 7.0))


E4M3_VALUES = _e4m3_values()
E4M3_MAX = 448.0


def round_to_e4m3(x):
    """x (float64) as the nearest e4m3 value, ties to the even code, magnitudes
    past 448 saturated to 448. Written from the format's value table, not from
    the bit manipulation the compiled cache write uses."""
    a = np.minimum(np.abs(x), E4M3_MAX)
    hi = np.clip(np.searchsorted(E4M3_VALUES, a), 1, len(E4M3_VALUES) - 1)
    lo = hi - 1
    dlo, dhi = a - E4M3_VALUES[lo], E4M3_VALUES[hi] - a
    pick = np.where(dlo < dhi, lo, np.where(dhi < dlo, hi, np.where(lo % 2 == 0, lo, hi)))
    return np.sign(x) * E4M3_VALUES[pick]


def quantize_fp8_rows(c, group=128, e4m3_max=E4M3_MAX):
    """Rows c [t, dc] stored in the FP8 latent cache and read back: per group of
    `group` values an f32 scale amax / 448, the values as e4m3(x / scale) in
    f32 arithmetic (as the cache write computes), read back as e4m3 * scale
    in f32. `group` and `e4m3_max` exist to show that a wrong grouping or
    scale fails the parity check."""
    c32 = np.asarray(c, np.float32)
    t, dc = c32.shape
    if dc % group:
        raise ValueError(f"kv_lora_rank {dc} is not a multiple of the fp8 group {group}")
    g = c32.reshape(t, dc // group, group)
    scale = (np.abs(g).max(axis=2, keepdims=True) / np.float32(e4m3_max)).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(scale > 0, g / scale, np.float32(0)).astype(np.float32)
    deq = (round_to_e4m3(q.astype(np.float64)).astype(np.float32) * scale).astype(np.float32)
    return deq.reshape(t, dc).astype(np.float64)


class LatentCache:
    """Per layer: the normalised latent c [t, dc] and the roped shared key
    k_pe [t, dr], row t = position t. Nothing per head is cached.

    dtype "bf16" stores rows as a bf16 cache does (rounded as `rounding`
    says), so every read of the cache, the current token's own row
    included, sees the stored value: the compiled model's bf16-cache
    error is then arithmetic only, and tolerances can be tight.
    dtype "fp8" stores rows as the FP8 cache does (FlashMLA's layout): the
    latent quantised per group of `fp8_group` values (quantize_fp8_rows,
    scale = amax / `fp8_max`), the rope key as bf16."""

    def __init__(self, num_layers, dc, dr, dtype="f32", rounding="nearest",
                 fp8_group=128, fp8_max=E4M3_MAX):
        if dtype not in ("f32", "bf16", "fp8"):
            raise ValueError(f"cache dtype {dtype!r}: f32, bf16 or fp8")
        self.fp8_group, self.fp8_max = fp8_group, fp8_max
        self.c = [np.zeros((0, dc)) for _ in range(num_layers)]
        self.k_pe = [np.zeros((0, dr)) for _ in range(num_layers)]
        self.dtype, self.rounding = dtype, rounding
        # Rounding ties (rounding_ties.py): stored values whose rounding f32
        # arithmetic can decide either way (within tie_window), and which of
        # them to store as their other neighbour (the book's flips).
        self.tie_window, self.book = 0.0, None

    def __len__(self):
        return len(self.c[0]) if self.c else 0

    def _store(self, layer, kind, x):
        """x as this cache stores it (kind "c": the latent, "k": the rope key)."""
        if self.dtype == "f32":
            return x
        fp8 = kind == "c" and self.dtype == "fp8"
        if fp8:
            out = quantize_fp8_rows(x, self.fp8_group, self.fp8_max)
        else:
            store = lambda v: round_to_bf16(v, self.rounding)  # noqa: E731
            out = store(x)
        if self.book is not None and self.tie_window > 0:
            from .rounding_ties import fp8_fixed_scale
            if fp8:
                store = fp8_fixed_scale(x, self.fp8_group, self.fp8_max, round_to_e4m3)
            start = len(self.c[layer])
            out = self.book.round(x, out, store, self.tie_window,
                                  lambda t, j: (layer, start + t, kind, j))
        return out

    def append(self, layer, c, k_pe):
        if self.dtype != "f32":
            c, k_pe = self._store(layer, "c", c), self._store(layer, "k", k_pe)
        self.c[layer] = np.concatenate([self.c[layer], c])
        self.k_pe[layer] = np.concatenate([self.k_pe[layer], k_pe])
        return self.c[layer], self.k_pe[layer]

    def elements_per_token(self):
        return sum(c.shape[1] + k.shape[1] for c, k in zip(self.c, self.k_pe))


def bf16_gemm_inputs(dtypes, rounded=("BF16",)):
    """Names of the weights whose GEMM input the CPU runtime rounds to bf16
    on its AVX512-BF16 path (vdpbf16ps: activations rounded to nearest
    even, products exact, sums in f32): every 2-D tensor stored in one of
    the `rounded` dtypes (BF16; F8_E4M3 too where the runtime looks FP8
    weights up as bf16, its avx512vbmi path) that the runtime's GEMMs read
    in place, i.e. all but the embedding (a gather) and kv_b_proj (read in
    place too, but its per-head products and the naive form's expansion
    keep f32 activations, so both MLA forms agree). The router is a GEMM
    like the others. dtypes: {name: safetensors dtype}
    (checkpoint.load_dtypes)."""
    return frozenset(n for n, dt in dtypes.items()
                     if dt in rounded and "embed_tokens" not in n and "kv_b_proj" not in n
                     and not n.endswith("norm.weight") and not n.endswith("_bias"))


# A GEMM input's tie window is relative to the value or to this share of
# its row's RMS, the larger: a layer-1 shared expert's down_proj input 0.05
# of its row's RMS lay 4.3e-5 of itself (2.2e-6 of the RMS) from a bf16
# midpoint and f32 rounded it the other way (ragged_v3, bf16 weights and
# cache, seed 17).
INPUT_TIE_FLOOR = 0.25


def input_site(name, num_layers):
    """(layer, site) of the activation weight `name`'s GEMM reads, for
    rounding ties (rounding_ties.py). Weights that read one activation share
    its site, as the runtime rounds that one f32 value once for all of them:
    q_a / q and kv_a read the layer's normed input ("attn_in"); the router,
    the experts' and shared experts' (or a dense MLP's) gate and up
    projections the normed FFN input ("mlp_in"). Every other weight's input
    is its own (lm_head: after the last layer)."""
    m = re.match(r"model\.layers\.(\d+)\.(.*)\.weight$", name)
    if not m:
        return num_layers, name.removesuffix(".weight")
    layer, rest = int(m.group(1)), m.group(2)
    proj = rest.rpartition(".")[2]
    if proj in ("q_a_proj", "q_proj", "kv_a_proj_with_mqa"):
        return layer, "attn_in"
    if proj in ("gate_proj", "up_proj") or rest == "mlp.gate":
        return layer, "mlp_in"
    return layer, rest


class ReferenceModel:
    def __init__(self, cfg, weights, bf16_inputs=frozenset()):
        """bf16_inputs: weight names whose GEMM input is rounded to bf16
        first (bf16_gemm_inputs), to check the runtime's bf16-activation
        path at f32 accumulation's tolerance; empty for exact activations."""
        check_config(cfg)
        self.cfg = cfg
        self.bf16_inputs = frozenset(bf16_inputs)
        self.w = {k: np.asarray(v, np.float64) for k, v in weights.items()}
        self.freqs = rope_frequencies(cfg)
        self.scale = softmax_scale(cfg)
        self.eps = float(cfg.get("rms_norm_eps", 1e-6))
        self.moe_layers = [L for L in range(cfg["num_hidden_layers"]) if is_moe_layer(cfg, L)]
        self.last_routing = {}          # {moe layer: int [n, k]} of the last forward call
        self.last_routing_weights = {}  # {moe layer: float [n, k]}
        # Rounding ties of the bf16-rounded GEMM inputs (rounding_ties.py):
        # values within input_tie_window of a bf16 midpoint are listed in
        # `book` (when set), which says which to round the other way.
        self.input_tie_window, self.book = 0.0, None

    @classmethod
    def load(cls, ckpt_dir, activations="f32", rounded_dtypes=("BF16",)):
        """activations "bf16": emulate the runtime's bf16 rounding of GEMM
        inputs for the checkpoint's weights stored as rounded_dtypes
        (bf16_gemm_inputs)."""
        if activations not in ("f32", "bf16"):
            raise ValueError(f"activations {activations!r}: f32 or bf16")
        cfg, weights = load_checkpoint(ckpt_dir)
        rounded = (bf16_gemm_inputs(load_dtypes(ckpt_dir), tuple(rounded_dtypes))
                   if activations == "bf16" else ())
        return cls(cfg, weights, rounded)

    def lin(self, x, name, pos=None):
        """x @ w[name].T, x rounded to bf16 first where the runtime does.
        pos: the positions of x's rows (for rounding ties' keys)."""
        if name in self.bf16_inputs:
            x = self.round_input(x, name, pos)
        return x @ self.w[name].T

    def round_input(self, x, name, pos):
        """x rounded to bf16 as the runtime rounds weight `name`'s GEMM
        input; with a book, the window and x's rows' positions, its ties
        listed and the book's flips rounded the other way."""
        r = round_to_bf16(x)
        if self.book is None or pos is None or self.input_tie_window <= 0:
            return r
        layers = self.cfg["num_hidden_layers"]
        layer, site = input_site(name, layers)
        # Past the last layer's cache write nothing of a row reaches
        # another: its other inputs (and lm_head's) move their row only.
        # (The MTP module's layer, numbered `layers`, writes its own cache.)
        local = layer >= layers - 1 and site != "attn_in" and not (
            layer == layers and self.cfg.get("num_nextn_predict_layers"))
        return self.book.round(x, r, round_to_bf16, self.input_tie_window,
                               lambda t, j: (layer, int(pos[t]), site, j),
                               floor=INPUT_TIE_FLOOR, local=local)

    def new_cache(self, dtype="f32", rounding="nearest", fp8_group=128, fp8_max=E4M3_MAX):
        c = self.cfg
        return LatentCache(c["num_hidden_layers"], c["kv_lora_rank"], c["qk_rope_head_dim"],
                           dtype, rounding, fp8_group, fp8_max)

    # -- attention

    def _mla_inputs(self, L, x, pos):
        """Queries and the new cache rows for tokens x at positions pos."""
        c, w = self.cfg, self.w
        p = f"model.layers.{L}.self_attn."
        H, dn, dr, dc = (c["num_attention_heads"], c["qk_nope_head_dim"],
                         c["qk_rope_head_dim"], c["kv_lora_rank"])
        if c.get("q_lora_rank"):
            cq = rms_norm(self.lin(x, p + "q_a_proj.weight", pos), w[p + "q_a_layernorm.weight"],
                          QK_NORM_EPS)
            q = self.lin(cq, p + "q_b_proj.weight", pos)
        else:
            q = self.lin(x, p + "q_proj.weight", pos)
        q = q.reshape(len(x), H, dn + dr)  # rows per head: [nope | rope]
        q_nope, q_pe = q[..., :dn], apply_rope(q[..., dn:], pos, self.freqs)
        kv = self.lin(x, p + "kv_a_proj_with_mqa.weight", pos)  # [latent | shared rope key]
        lat = rms_norm(kv[:, :dc], w[p + "kv_a_layernorm.weight"], QK_NORM_EPS)
        k_pe = apply_rope(kv[:, dc:], pos, self.freqs)
        return q_nope, q_pe, lat, k_pe

    def _mla(self, L, x, pos, cache, absorbed, cache_layer=None):
        c, w = self.cfg, self.w
        p = f"model.layers.{L}.self_attn."
        H, dn, dv, dc = (c["num_attention_heads"], c["qk_nope_head_dim"], c["v_head_dim"],
                         c["kv_lora_rank"])
        q_nope, q_pe, lat, k_pe = self._mla_inputs(L, x, pos)
        C, K = cache.append(L if cache_layer is None else cache_layer, lat, k_pe)  # [S, dc], [S, dr]
        kvb = w[p + "kv_b_proj.weight"].reshape(H, dn + dv, dc)  # rows per head: [W_UK | W_UV]
        w_uk, w_uv = kvb[:, :dn], kvb[:, dn:]
        rope_part = np.einsum("thr,sr->ths", q_pe, K)
        if absorbed:
            q_lat = np.einsum("thn,hnc->thc", q_nope, w_uk)
            score = np.einsum("thc,sc->ths", q_lat, C) + rope_part
        else:
            k_nope = np.einsum("sc,hnc->shn", C, w_uk)
            score = np.einsum("thn,shn->ths", q_nope, k_nope) + rope_part
        causal = np.arange(len(C))[None, :] <= pos[:, None]  # [T, S]
        prob = softmax(np.where(causal[:, None, :], score * self.scale, -np.inf))
        if absorbed:
            u = np.einsum("ths,sc->thc", prob, C)
            o = np.einsum("thc,hvc->thv", u, w_uv)
        else:
            v = np.einsum("sc,hvc->shv", C, w_uv)
            o = np.einsum("ths,shv->thv", prob, v)
        return self.lin(o.reshape(len(x), H * dv), p + "o_proj.weight", pos)

    # -- feed-forward

    def _mlp(self, x, p, pos=None):
        h = silu(self.lin(x, p + "gate_proj.weight", pos)) * self.lin(x, p + "up_proj.weight", pos)
        return self.lin(h, p + "down_proj.weight", pos)

    def _ffn(self, L, x, pos=None):
        p = f"model.layers.{L}.mlp."
        if not is_moe_layer(self.cfg, L):
            return self._mlp(x, p, pos)
        gate = p + "gate.weight"
        gate_in = self.round_input(x, gate, pos) if gate in self.bf16_inputs else x
        ids, wts = route(self.cfg, gate_in, self.w[p + "gate.weight"],
                         self.w.get(p + "gate.e_score_correction_bias"))
        self.last_routing[L], self.last_routing_weights[L] = ids, wts
        y = np.zeros_like(x)
        for e in np.unique(ids):
            rows, slot = np.nonzero(ids == e)
            y[rows] += wts[rows, slot][:, None] * self._mlp(
                x[rows], p + f"experts.{e}.", None if pos is None else pos[rows])
        if self.cfg.get("n_shared_experts"):
            y += self._mlp(x, p + "shared_experts.", pos)
        return y

    # -- whole model

    def _decoder_layer(self, L, x, pos, cache, absorbed, cache_layer=None):
        p, w = f"model.layers.{L}.", self.w
        h = x + self._mla(L, rms_norm(x, w[p + "input_layernorm.weight"], self.eps), pos,
                          cache, absorbed, cache_layer)
        return h + self._ffn(L, rms_norm(h, w[p + "post_attention_layernorm.weight"], self.eps),
                             pos)

    def forward(self, tokens, start_pos, cache, absorbed=False):
        """Logits [n, vocab] for tokens at positions start_pos.. ; appends their
        latents to the cache, which must hold exactly start_pos tokens."""
        h = self.forward_hidden(tokens, start_pos, cache, absorbed)
        return self.lin(h, "lm_head.weight", np.arange(start_pos, start_pos + len(h)))

    def forward_hidden(self, tokens, start_pos, cache, absorbed=False):
        """Like forward, but the hidden states after the final norm [n, D]
        (what the MTP module reads)."""
        c, w = self.cfg, self.w
        tokens = np.asarray(tokens, np.int64).reshape(-1)
        if len(cache) != start_pos:
            raise ValueError(f"start_pos {start_pos} but the cache holds {len(cache)} tokens")
        if len(tokens) == 0:
            raise ValueError("no tokens")
        if tokens.min() < 0 or tokens.max() >= c["vocab_size"]:
            raise ValueError(f"token id out of range [0, {c['vocab_size']})")
        pos = np.arange(start_pos, start_pos + len(tokens), dtype=np.float64)
        x = w["model.embed_tokens.weight"][tokens]
        self.last_routing, self.last_routing_weights = {}, {}
        for L in range(c["num_hidden_layers"]):
            x = self._decoder_layer(L, x, pos, cache, absorbed)
        return rms_norm(x, w["model.norm.weight"], self.eps)

    # -- multi-token prediction

    def new_mtp_cache(self, dtype="f32"):
        c = self.cfg
        return LatentCache(1, c["kv_lora_rank"], c["qk_rope_head_dim"], dtype)

    def mtp_forward(self, hidden, next_tokens, start_pos, cache, absorbed=False,
                    return_hidden=False):
        """Draft logits [n, vocab] of the first MTP module (layer L =
        num_hidden_layers) for positions start_pos..: row i from h_i (the main
        model's post-final-norm state at position start_pos + i) and
        t_{i+1} = next_tokens[i]; it predicts t_{i+2}. The module's own
        latent cache must hold exactly start_pos tokens. The embedding and
        lm_head are the main model's (SEMANTICS.md, multi-token prediction).
        With return_hidden, also the module's output states [n, hidden]: its
        decoder layer's output before shared_head.norm, what vLLM's and
        SGLang's MTP proposers feed the next chained draft."""
        c, w = self.cfg, self.w
        if not c.get("num_nextn_predict_layers"):
            raise ValueError("config field 'num_nextn_predict_layers': the model has no MTP module")
        hidden = np.asarray(hidden, np.float64)
        tokens = np.asarray(next_tokens, np.int64).reshape(-1)
        if hidden.shape != (len(tokens), c["hidden_size"]):
            raise ValueError(f"hidden states {list(hidden.shape)} for {len(tokens)} tokens")
        if len(cache) != start_pos:
            raise ValueError(f"start_pos {start_pos} but the MTP cache holds {len(cache)} tokens")
        L = c["num_hidden_layers"]
        p = f"model.layers.{L}."
        pos = np.arange(start_pos, start_pos + len(tokens), dtype=np.float64)
        e = w["model.embed_tokens.weight"][tokens]
        e[pos == 0] = 0.0
        # Embedding FIRST in the concatenation, as the released weights expect.
        eh = np.concatenate([rms_norm(e, w[p + "enorm.weight"], self.eps),
                             rms_norm(hidden, w[p + "hnorm.weight"], self.eps)], axis=1)
        x = self.lin(eh, p + "eh_proj.weight", pos)
        self.last_routing, self.last_routing_weights = {}, {}
        x = self._decoder_layer(L, x, pos, cache, absorbed, cache_layer=0)
        logits = self.lin(rms_norm(x, w[p + "shared_head.norm.weight"], self.eps), "lm_head.weight",
                          pos)
        return (logits, x) if return_hidden else logits

    def mtp_chain(self, hidden, next_token, start_pos, cache, k, drafted=None,
                  absorbed=False):
        """k chained drafts from one verified pair: draft 1 from (h, t) at
        start_pos (h the main model's state there, t the token after it),
        draft j + 1 from the module's own output state at draft j and the
        token drafted there, one position further. `drafted` (k - 1 tokens)
        fixes the tokens fed to drafts 2..k (teacher forcing, so a compiled
        chain can be compared row by row); by default each draft's argmax.
        Returns the k draft logit rows [k, vocab] and the tokens fed."""
        h = np.asarray(hidden, np.float64).reshape(1, -1)
        tok, rows, fed = int(next_token), [], []
        for j in range(k):
            logits, h = self.mtp_forward(h, [tok], start_pos + j, cache, absorbed,
                                         return_hidden=True)
            rows.append(logits[0])
            if j + 1 < k:
                tok = int(drafted[j]) if drafted is not None else int(np.argmax(logits[0]))
                fed.append(tok)
        return np.array(rows), fed


def reference_logits(ckpt_dir, tokens, absorbed=False):
    """One-shot prefill of `tokens` from position 0: logits for every position."""
    m = ReferenceModel.load(ckpt_dir)
    return m.forward(tokens, 0, m.new_cache(), absorbed)
