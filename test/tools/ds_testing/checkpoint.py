"""Random DeepSeek V2/V3 checkpoints in Hugging Face layout, and loading them.

Why random: the released weights are far too large for tests, and the
compiler only needs the architecture fields plus weights that exercise the
math. Weights are non-trivial on purpose (SEMANTICS.md, known traps):
linear std 1/sqrt(fan_in), norm weights 1 + 0.1 N(0,1), router bias std 0.1,
embeddings std 1. With tiny weights attention is uniform and routing tied,
and RoPE, softmax-scale and routing bugs go unnoticed.
"""
import json
import math
import os

import numpy as np

from . import safetensors as st

FP8_BLOCK = 128
FP8_QUANTIZATION_CONFIG = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                           "weight_block_size": [FP8_BLOCK, FP8_BLOCK]}


# ---------------------------------------------------------------- presets

def _base(**kw):
    """The tiny V3 config; the other presets are edits of it."""
    cfg = {
        "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
        "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48,
        "moe_intermediate_size": 12, "num_hidden_layers": 3, "num_attention_heads": 2,
        "n_shared_experts": 1, "n_routed_experts": 8, "num_experts_per_tok": 2,
        "routed_scaling_factor": 2.5, "q_lora_rank": 24, "kv_lora_rank": 16,
        "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
        "topk_method": "noaux_tc", "n_group": 4, "topk_group": 2,
        "moe_layer_freq": 1, "first_k_dense_replace": 1, "norm_topk_prob": True,
        "scoring_func": "sigmoid", "hidden_act": "silu", "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                         "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
        "attention_bias": False, "tie_word_embeddings": False,
        "bos_token_id": 0, "eos_token_id": 1, "torch_dtype": "float32",
    }
    cfg.update(kw)
    return cfg


def tiny_v3():
    """V3 style: sigmoid, noaux_tc with bias, 4 groups keep 2, q_lora, one
    dense layer then MoE, YaRN (factor 4 over 16 positions, mscale 1.0)."""
    return _base()


def tiny_v2_lite():
    """V2-Lite style: softmax, greedy, q_proj (no q_lora), 2 shared experts,
    norm_topk_prob false with scale 1.5 (so the scale matters),
    v_head_dim 6 != qk_nope_head_dim 8, YaRN with mscale_all_dim 0.707."""
    return _base(
        architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2", q_lora_rank=None,
        scoring_func="softmax", topk_method="greedy", n_group=1, topk_group=1,
        norm_topk_prob=False, routed_scaling_factor=1.5, n_shared_experts=2,
        n_routed_experts=6, num_hidden_layers=2, v_head_dim=6,
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                      "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707})


def tiny_v2_grouped():
    """DeepSeek-V2 style grouped routing: softmax, group_limited_greedy
    (group score = max), 8 experts in 4 groups keep 2, top 3, normalised."""
    return _base(
        architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2",
        scoring_func="softmax", topk_method="group_limited_greedy", n_group=4, topk_group=2,
        num_experts_per_tok=3, norm_topk_prob=True, routed_scaling_factor=16.0)


def tiny_noyarn():
    """V3-like without rope_scaling (plain RoPE, scale (dn+dr)^-0.5), and a MoE
    layer every other layer (moe_layer_freq 2, no leading dense layers)."""
    return _base(rope_scaling=None, num_hidden_layers=4, moe_layer_freq=2,
                 first_k_dense_replace=0)


# DeepSeek V3's tokenizer has ids 0..128814 (the released model pads its
# embedding to 129280; ids past the tokenizer would have no text).
V3_TOKENIZER_VOCAB = 128815


def demo():
    """A slightly larger V3-style model for the demo and benchmarks, with a
    vocabulary for DeepSeek V3's tokenizer (make_checkpoint.py --tokenizer)."""
    return _base(vocab_size=V3_TOKENIZER_VOCAB, hidden_size=64, intermediate_size=128,
                 moe_intermediate_size=32, num_hidden_layers=4, num_attention_heads=4,
                 q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16,
                 qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=16,
                 num_experts_per_tok=4, n_group=4, topk_group=2,
                 max_position_embeddings=512)


def ragged_v3():
    """V3 style with matrices past one 128x128 FP8 block and not multiples
    of it (hidden 200, intermediate 300, experts 136 wide, ranks 144/132),
    so quantised weights have ragged edge blocks in both directions and the
    CPU GEMMs see K past their 256-wide chunks."""
    return _base(vocab_size=300, hidden_size=200, intermediate_size=300,
                 moe_intermediate_size=136, num_hidden_layers=2, q_lora_rank=144,
                 kv_lora_rank=132)


def tiny_v3_mtp():
    """tiny_v3 with one multi-token-prediction module (layer 3: enorm, hnorm,
    eh_proj, shared_head.norm and an MLA + MoE decoder layer), like V3/R1."""
    return _base(num_nextn_predict_layers=1)


def tiny_v3_truncated():
    """V3's config cut to fewer layers than first_k_dense_replace, as debug
    copies of DeepSeek-V3 are: every layer dense (Hugging Face's rule), the
    MoE fields present but unused."""
    return _base(num_hidden_layers=2, first_k_dense_replace=3)


def fp8kv_v3():
    """tiny_v3 with a latent of two 128-wide groups (kv_lora_rank 256) and
    rope 8: the smallest shape the FP8 latent cache takes (one f32 scale per
    128 latent values), with more than one group so a wrong grouping shows."""
    return _base(kv_lora_rank=256, qk_rope_head_dim=8)


def fp8kv_v3_heads6():
    """fp8kv_v3 with 6 heads: the CPU's absorbed attention runs them in two
    groups of 3 sharing each cache row (attention-head-group), where the
    other presets' 2 heads run one per iteration."""
    return _base(kv_lora_rank=256, qk_rope_head_dim=8, num_attention_heads=6)


PRESETS = {"fp8kv_v3": fp8kv_v3, "fp8kv_v3_heads6": fp8kv_v3_heads6, "tiny_v3": tiny_v3, "tiny_v3_mtp": tiny_v3_mtp, "ragged_v3": ragged_v3,
           "tiny_v2_lite": tiny_v2_lite, "tiny_v2_grouped": tiny_v2_grouped,
           "tiny_noyarn": tiny_noyarn, "tiny_v3_truncated": tiny_v3_truncated, "demo": demo}


# ---------------------------------------------------------------- tensor table

def is_moe_layer(cfg, layer):
    """SEMANTICS.md: L >= first_k_dense_replace and L % moe_layer_freq == 0
    (and there are routed experts at all)."""
    return bool(cfg.get("n_routed_experts") and layer >= (cfg.get("first_k_dense_replace") or 0)
                and layer % (cfg.get("moe_layer_freq") or 1) == 0)


def mtp_layers(cfg):
    """Checkpoint indices of the MTP modules: num_hidden_layers + j."""
    n = cfg["num_hidden_layers"]
    return list(range(n, n + (cfg.get("num_nextn_predict_layers") or 0)))


def _decoder_layer(cfg, L, out):
    """Adds the tensors of decoder layer L (MLA + dense MLP or MoE) to out."""
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    dc, dq = cfg["kv_lora_rank"], cfg.get("q_lora_rank")
    E, Fm, Fd = cfg.get("n_routed_experts") or 0, cfg["moe_intermediate_size"], cfg["intermediate_size"]
    Ns = cfg.get("n_shared_experts") or 0
    p = f"model.layers.{L}."
    out[p + "input_layernorm.weight"] = ((D,), "norm")
    out[p + "post_attention_layernorm.weight"] = ((D,), "norm")
    a = p + "self_attn."
    if dq:
        out[a + "q_a_proj.weight"] = ((dq, D), "linear")
        out[a + "q_a_layernorm.weight"] = ((dq,), "norm")
        out[a + "q_b_proj.weight"] = ((H * (dn + dr), dq), "linear")
    else:
        out[a + "q_proj.weight"] = ((H * (dn + dr), D), "linear")
    out[a + "kv_a_proj_with_mqa.weight"] = ((dc + dr, D), "linear")
    out[a + "kv_a_layernorm.weight"] = ((dc,), "norm")
    out[a + "kv_b_proj.weight"] = ((H * (dn + dv), dc), "linear")
    out[a + "o_proj.weight"] = ((D, H * dv), "linear")
    m = p + "mlp."
    if not is_moe_layer(cfg, L):
        out[m + "gate_proj.weight"] = ((Fd, D), "linear")
        out[m + "up_proj.weight"] = ((Fd, D), "linear")
        out[m + "down_proj.weight"] = ((D, Fd), "linear")
        return
    out[m + "gate.weight"] = ((E, D), "router")
    if cfg.get("topk_method") == "noaux_tc":
        out[m + "gate.e_score_correction_bias"] = ((E,), "bias")
    for e in range(E):
        out[m + f"experts.{e}.gate_proj.weight"] = ((Fm, D), "linear")
        out[m + f"experts.{e}.up_proj.weight"] = ((Fm, D), "linear")
        out[m + f"experts.{e}.down_proj.weight"] = ((D, Fm), "linear")
    if Ns:
        out[m + "shared_experts.gate_proj.weight"] = ((Ns * Fm, D), "linear")
        out[m + "shared_experts.up_proj.weight"] = ((Ns * Fm, D), "linear")
        out[m + "shared_experts.down_proj.weight"] = ((D, Ns * Fm), "linear")


def tensor_shapes(cfg):
    """{name: (shape, kind)} of the main model and its MTP modules in HF layout.

    kind: linear (2-D [out, in] matmul weight) | norm | embed | bias | router
    | head; the kind decides the random init and the stored dtype."""
    D, V = cfg["hidden_size"], cfg["vocab_size"]
    out = {"model.embed_tokens.weight": ((V, D), "embed"),
           "model.norm.weight": ((D,), "norm"),
           "lm_head.weight": ((V, D), "head")}
    for L in range(cfg["num_hidden_layers"]):
        _decoder_layer(cfg, L, out)
    # MTP modules after the main ones: their draws come last, so the main
    # model's weights are the same with or without them.
    for L in mtp_layers(cfg):
        p = f"model.layers.{L}."
        out[p + "enorm.weight"] = ((D,), "norm")
        out[p + "hnorm.weight"] = ((D,), "norm")
        out[p + "eh_proj.weight"] = ((D, 2 * D), "linear")
        out[p + "shared_head.norm.weight"] = ((D,), "norm")
        _decoder_layer(cfg, L, out)
    return out


def random_weights(cfg, seed=0):
    """Deterministic float32 weights for every tensor of tensor_shapes(cfg).

    One generator draws the tensors in tensor_shapes order; this order and
    these draws are what the parity tests were validated with, so keep them."""
    rng = np.random.default_rng(seed)
    return {name: random_tensor(rng, shape, kind)
            for name, (shape, kind) in tensor_shapes(cfg).items()}


def random_tensor(rng, shape, kind):
    """random_weights' next tensor from `rng` (a caller drawing tensor by
    tensor in tensor_shapes order gets random_weights' values)."""
    if kind == "norm":
        w = 1.0 + 0.1 * rng.standard_normal(shape)
    elif kind == "bias":
        w = 0.1 * rng.standard_normal(shape)
    elif kind == "embed":
        w = rng.standard_normal(shape)
    else:
        w = rng.standard_normal(shape) / math.sqrt(shape[-1])
    return w.astype(np.float32)


# ---------------------------------------------------------------- fp8 blocks

def _expand_blocks(scale, rows, cols, block=FP8_BLOCK):
    return np.repeat(np.repeat(scale, block, 0), block, 1)[:rows, :cols]


def quantize_fp8_blocks(w, block=FP8_BLOCK):
    """[out, in] weight -> (e4m3 codes, scale_inv [ceil(out/b), ceil(in/b)] f32)
    with dequantised = value(code) * scale_inv of the element's block; each
    block's largest magnitude maps to 448 as in DeepSeek's FP8 checkpoints."""
    w = np.asarray(w, np.float32)
    rows, cols = w.shape
    br, bc = -(-rows // block), -(-cols // block)
    pad = np.zeros((br * block, bc * block), np.float32)
    pad[:rows, :cols] = w
    amax = np.abs(pad.reshape(br, block, bc, block)).max(axis=(1, 3))
    scale = (np.maximum(amax, 1e-12) / st.E4M3_MAX).astype(np.float32)
    q = w / _expand_blocks(scale, rows, cols, block)
    return st.f32_to_e4m3_bits(q), scale


def dequantize_fp8_blocks(values, scale_inv, block=FP8_BLOCK):
    """Decoded e4m3 values [out, in] x their block's scale_inv -> float64."""
    values = np.asarray(values, np.float64)
    rows, cols = values.shape
    want = (-(-rows // block), -(-cols // block))
    if tuple(scale_inv.shape) != want:
        raise ValueError(f"weight_scale_inv shape {list(scale_inv.shape)}, expected {list(want)} "
                         f"for weight [{rows}, {cols}]")
    return values * _expand_blocks(np.asarray(scale_inv, np.float64), rows, cols, block)


def stored_dtype(kind, dtype):
    """The safetensors dtype a tensor of `kind` gets in a `dtype` checkpoint:
    like V3's release, fp8 covers the 2-D linears only (not embeddings,
    lm_head, norms, router); the router bias stays F32 in every mode."""
    if kind == "bias" or dtype == "f32":
        return "F32"
    if dtype == "fp8" and kind == "linear":
        return "F8_E4M3"
    return "BF16"


# ---------------------------------------------------------------- writing / loading

def write_checkpoint(out_dir, cfg, weights=None, dtype="f32", shards=1, seed=0,
                     mtp_copies=False):
    """Writes config.json + safetensors (one file, or `shards` files and an
    index) into out_dir. With mtp_copies, each MTP module also stores copies
    of the shared tensors (`model.layers.L.embed_tokens.weight`,
    `model.layers.L.shared_head.head.weight`), as V3's release does.

    Returns (config as written, {name: float32 array}) where the arrays are
    what the files hold after rounding (bf16, fp8 dequantised), so a caller
    can feed a reference exactly the stored values."""
    if dtype not in ("f32", "bf16", "fp8"):
        raise ValueError(f"dtype must be f32, bf16 or fp8, not {dtype!r}")
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(cfg)
    weights = dict(weights if weights is not None else random_weights(cfg, seed))
    kinds = {n: k for n, (_, k) in tensor_shapes(cfg).items()}
    if mtp_copies:
        for L in mtp_layers(cfg):
            for copy, src, kind in ((f"model.layers.{L}.embed_tokens.weight",
                                     "model.embed_tokens.weight", "embed"),
                                    (f"model.layers.{L}.shared_head.head.weight",
                                     "lm_head.weight", "head")):
                weights[copy] = weights[src]
                kinds[copy] = kind
    tensors, stored = {}, {}
    for name, w in weights.items():
        w = np.asarray(w, np.float32)
        sdt = stored_dtype(kinds.get(name, "linear" if w.ndim == 2 else "norm"), dtype)
        if sdt == "F8_E4M3":
            bits, scale = quantize_fp8_blocks(w)
            tensors[name] = (sdt, w.shape, bits.tobytes())
            tensors[name + "_scale_inv"] = ("F32", scale.shape, scale.tobytes())
            stored[name] = dequantize_fp8_blocks(st.e4m3_bits_to_f32(bits), scale).astype(np.float32)
        else:
            tensors[name] = (sdt, w.shape, st.encode(w, sdt))
            stored[name] = st.decode(tensors[name][2], sdt, w.shape).astype(np.float32)
    if dtype == "fp8":
        cfg["quantization_config"] = dict(FP8_QUANTIZATION_CONFIG)
    else:
        cfg.pop("quantization_config", None)
    cfg["torch_dtype"] = "float32" if dtype == "f32" else "bfloat16"
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    file_meta = {"format": "pt"}
    if shards <= 1:
        st.write_tensors(os.path.join(out_dir, "model.safetensors"), tensors, file_meta)
    else:
        st.write_sharded(out_dir, tensors, shards, file_metadata=file_meta)
    return cfg, stored


def load_config(ckpt_dir):
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        return json.load(f)


def load_dtypes(ckpt_dir):
    """{tensor name: safetensors dtype} from the checkpoint's headers."""
    files, _ = st.checkpoint_files(ckpt_dir)
    out = {}
    for fname in files:
        header, _ = st.read_header(os.path.join(ckpt_dir, fname))
        out.update({n: e["dtype"] for n, e in header.items() if n != "__metadata__"})
    return out


def load_checkpoint(ckpt_dir, check=True):
    """-> (config dict, {name: float64 array}); bf16 decoded, fp8 multiplied
    by its weight_scale_inv blocks. With check, every tensor the config needs
    must be present with its shape (extra tensors, e.g. an MTP layer, are
    kept but unused)."""
    cfg = load_config(ckpt_dir)
    raw = st.read_dir(ckpt_dir)
    weights = {}
    for name, (dtype, arr) in raw.items():
        if name.endswith("_scale_inv"):
            continue
        if dtype == "F8_E4M3":
            if name + "_scale_inv" not in raw:
                raise ValueError(f"tensor '{name}' is F8_E4M3 without '{name}_scale_inv'")
            weights[name] = dequantize_fp8_blocks(arr, raw[name + "_scale_inv"][1])
        else:
            weights[name] = np.asarray(arr, np.float64)
    if check:
        for name, (shape, _) in tensor_shapes(cfg).items():
            if name not in weights:
                raise ValueError(f"tensor '{name}' {list(shape)} is missing from {ckpt_dir}")
            if tuple(weights[name].shape) != tuple(shape):
                raise ValueError(f"tensor '{name}': shape {list(weights[name].shape)}, "
                                 f"expected {list(shape)}")
    return cfg, weights
