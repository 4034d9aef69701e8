"""Random DeepSeek V2/V3 checkpoints in Hugging Face layout, and loading.

Weights are non-trivial on purpose (SEMANTICS.md, known traps): linear
std 1/sqrt(fan_in), norms near 1, router bias std 0.1, so tests notice
RoPE, scale and routing mistakes.
"""
import json
import math
import os

import numpy as np

from . import safetensors as st


def _base(**kw):
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


PRESETS = {
    # V3 style: sigmoid, noaux_tc with bias, groups, q_lora, a dense first layer, YaRN 1.0.
    "tiny_v3": lambda: _base(),
    # V2-Lite style: softmax, greedy, q_proj, 2 shared experts, no norm, scale != 1,
    # v_head_dim != qk_nope_head_dim, YaRN with mscale_all_dim 0.707.
    "tiny_v2_lite": lambda: _base(
        architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2", q_lora_rank=None,
        scoring_func="softmax", topk_method="greedy", n_group=1, topk_group=1,
        norm_topk_prob=False, routed_scaling_factor=1.5, n_shared_experts=2,
        n_routed_experts=6, num_hidden_layers=2, v_head_dim=6,
        rope_scaling={"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                      "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707}),
    # DeepSeek-V2 style grouped routing: group_limited_greedy, normalised, top 3.
    "tiny_v2_grouped": lambda: _base(
        architectures=["DeepseekV2ForCausalLM"], model_type="deepseek_v2",
        scoring_func="softmax", topk_method="group_limited_greedy", n_group=4, topk_group=2,
        num_experts_per_tok=3, norm_topk_prob=True, routed_scaling_factor=16.0),
    # No rope scaling at all; a MoE layer every other layer.
    "tiny_noyarn": lambda: _base(rope_scaling=None, num_hidden_layers=4, moe_layer_freq=2,
                                 first_k_dense_replace=0),
    # The built-in demo model of `make demo`.
    "demo": lambda: _base(vocab_size=256, hidden_size=64, intermediate_size=128,
                          moe_intermediate_size=32, num_hidden_layers=4, num_attention_heads=4,
                          q_lora_rank=48, kv_lora_rank=32, qk_nope_head_dim=16,
                          qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=16,
                          num_experts_per_tok=4, n_group=4, topk_group=2,
                          max_position_embeddings=512),
}


def is_moe_layer(cfg, layer):
    return (cfg["n_routed_experts"] > 0 and layer >= cfg.get("first_k_dense_replace", 0)
            and layer % cfg.get("moe_layer_freq", 1) == 0)


def tensor_shapes(cfg):
    """{name: (shape, kind)} in HF layout; kind: linear | norm | embed | bias | router."""
    D, H = cfg["hidden_size"], cfg["num_attention_heads"]
    dn, dr, dv = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    dc, dq = cfg["kv_lora_rank"], cfg.get("q_lora_rank")
    E, Fm, Fd = cfg["n_routed_experts"], cfg["moe_intermediate_size"], cfg["intermediate_size"]
    Ns = cfg.get("n_shared_experts", 0) or 0
    out = {"model.embed_tokens.weight": ((cfg["vocab_size"], D), "embed"),
           "model.norm.weight": ((D,), "norm"),
           "lm_head.weight": ((cfg["vocab_size"], D), "linear")}
    for L in range(cfg["num_hidden_layers"]):
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
            continue
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
    return out


def random_weights(cfg, seed=0):
    rng = np.random.default_rng(seed)
    weights = {}
    for name, (shape, kind) in tensor_shapes(cfg).items():
        if kind == "norm":
            w = 1.0 + 0.1 * rng.standard_normal(shape)
        elif kind == "bias":
            w = 0.1 * rng.standard_normal(shape)
        elif kind == "embed":
            w = rng.standard_normal(shape)
        else:
            w = rng.standard_normal(shape) / math.sqrt(shape[-1])
        weights[name] = w.astype(np.float32)
    return weights


def write_checkpoint(out_dir, cfg, weights=None, dtype="f32", shards=1, seed=0):
    """Writes config.json + safetensors; returns the weights as stored (f32 views
    of what the file holds, so references see exactly the rounded values)."""
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(cfg)
    weights = dict(weights if weights is not None else random_weights(cfg, seed))
    kinds = {n: k for n, (_, k) in tensor_shapes(cfg).items()}
    tensors, stored = {}, {}
    for name, w in weights.items():
        kind = kinds.get(name, "linear")
        if dtype == "fp8" and kind == "linear" and name != "lm_head.weight":
            rows, cols = w.shape
            br, bc = -(-rows // 128), -(-cols // 128)
            scale = np.zeros((br, bc), np.float32)
            q = np.zeros_like(w)
            for i in range(br):
                for j in range(bc):
                    blk = w[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128]
                    s = np.float32(max(np.abs(blk).max(), 1e-12) / 448.0)
                    scale[i, j] = s
                    q[i * 128:(i + 1) * 128, j * 128:(j + 1) * 128] = blk / s
            bits = st.f32_to_e4m3_bits(q)
            tensors[name] = ("F8_E4M3", w.shape, bits.tobytes())
            tensors[name + "_scale_inv"] = ("F32", scale.shape, scale.tobytes())
            deq = st.e4m3_bits_to_f32(bits)
            stored[name] = (deq.reshape(rows // 1, cols) *
                            np.repeat(np.repeat(scale, 128, 0), 128, 1)[:rows, :cols])
        elif dtype in ("bf16", "fp8") and kind != "bias":
            bits = st.f32_to_bf16_bits(w)
            tensors[name] = ("BF16", w.shape, bits.tobytes())
            stored[name] = st.bf16_bits_to_f32(bits)
        else:
            tensors[name] = ("F32", w.shape, np.ascontiguousarray(w, np.float32).tobytes())
            stored[name] = w.astype(np.float32)
    if dtype == "fp8":
        cfg["quantization_config"] = {"quant_method": "fp8", "fmt": "e4m3",
                                      "activation_scheme": "dynamic",
                                      "weight_block_size": [128, 128]}
    cfg["torch_dtype"] = {"f32": "float32", "bf16": "bfloat16", "fp8": "bfloat16"}[dtype]
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    names = sorted(tensors)
    if shards <= 1:
        header, data = st.build(tensors)
        with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
            f.write(st.serialize(header, data))
    else:
        weight_map = {}
        for s in range(shards):
            part = {n: tensors[n] for n in names[s::shards]}
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            header, data = st.build(part)
            with open(os.path.join(out_dir, fname), "wb") as f:
                f.write(st.serialize(header, data))
            weight_map.update({n: fname for n in part})
        with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)
    return cfg, stored


def load_checkpoint(ckpt_dir):
    """-> (config dict, {name: float64 array}) with bf16/fp8 decoded."""
    with open(os.path.join(ckpt_dir, "config.json")) as f:
        cfg = json.load(f)
    raw = {}
    for fname in sorted(os.listdir(ckpt_dir)):
        if fname.endswith(".safetensors"):
            raw.update(st.read(os.path.join(ckpt_dir, fname)))
    weights = {}
    for name, (dtype, arr) in raw.items():
        if name.endswith("_scale_inv"):
            continue
        a = arr.astype(np.float64)
        if dtype == "F8_E4M3":
            s = raw[name + "_scale_inv"][1].astype(np.float64)
            rows, cols = a.shape
            a = a * np.repeat(np.repeat(s, 128, 0), 128, 1)[:rows, :cols]
        weights[name] = a
    return cfg, weights
