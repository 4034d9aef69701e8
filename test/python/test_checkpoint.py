"""The random checkpoint generator: HF tensor table, non-trivial deterministic
weights, bf16/fp8 storage, shards, and the command-line tools."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from ds_testing import checkpoint, safetensors as st

TOOLS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
PY = sys.executable


def names(cfg):
    return set(checkpoint.tensor_shapes(cfg))


def test_presets_are_what_the_brief_says():
    v3 = checkpoint.tiny_v3()
    assert (v3["model_type"], v3["vocab_size"], v3["hidden_size"], v3["num_hidden_layers"],
            v3["q_lora_rank"], v3["kv_lora_rank"], v3["n_routed_experts"],
            v3["num_experts_per_tok"], v3["topk_method"], v3["scoring_func"]) == \
        ("deepseek_v3", 64, 32, 3, 24, 16, 8, 2, "noaux_tc", "sigmoid")
    lite = checkpoint.tiny_v2_lite()
    assert lite["q_lora_rank"] is None and lite["v_head_dim"] != lite["qk_nope_head_dim"]
    assert lite["rope_scaling"]["mscale"] == lite["rope_scaling"]["mscale_all_dim"] == 0.707
    assert checkpoint.tiny_v2_grouped()["topk_method"] == "group_limited_greedy"
    assert checkpoint.tiny_noyarn()["rope_scaling"] is None
    assert checkpoint.demo()["vocab_size"] == 128815  # DeepSeek V3's tokenizer
    ragged = checkpoint.ragged_v3()
    assert ragged["hidden_size"] % 128 and ragged["hidden_size"] > 128  # FP8 edge blocks
    assert set(checkpoint.PRESETS) == {"fp8kv_v3", "fp8kv_v3_heads6", "tiny_v3", "tiny_v3_mtp", "ragged_v3", "tiny_v2_lite",
                                       "tiny_v2_grouped", "tiny_noyarn", "tiny_v3_truncated", "demo"}
    # Fewer layers than first_k_dense_replace: every layer dense.
    trunc = checkpoint.tiny_v3_truncated()
    assert trunc["first_k_dense_replace"] > trunc["num_hidden_layers"]
    assert checkpoint.fp8kv_v3_heads6()["num_attention_heads"] == 6  # head groups of 3
    # The MTP preset adds layer 3's module after the main tensors, whose
    # random draws stay those of tiny_v3.
    mtp = checkpoint.tiny_v3_mtp()
    assert mtp["num_nextn_predict_layers"] == 1
    shapes = checkpoint.tensor_shapes(mtp)
    assert shapes["model.layers.3.eh_proj.weight"] == ((32, 64), "linear")
    assert "model.layers.3.mlp.experts.7.down_proj.weight" in shapes
    base = checkpoint.random_weights(v3)
    extended = checkpoint.random_weights(mtp)
    assert all((base[k] == extended[k]).all() for k in base)
    assert checkpoint.tiny_v3() is not checkpoint.tiny_v3()  # fresh dicts, safe to edit
    fp8kv = checkpoint.fp8kv_v3()  # the FP8 cache's two scale groups of 128
    assert (fp8kv["kv_lora_rank"], fp8kv["qk_rope_head_dim"]) == (256, 8)


def test_tensor_table_v3():
    cfg = checkpoint.tiny_v3()
    n = names(cfg)
    shapes = checkpoint.tensor_shapes(cfg)
    # layer 0 dense (first_k_dense_replace 1), layers 1, 2 MoE
    assert "model.layers.0.mlp.gate_proj.weight" in n and "model.layers.0.mlp.gate.weight" not in n
    for L in (1, 2):
        p = f"model.layers.{L}.mlp."
        assert p + "gate_proj.weight" not in n
        assert shapes[p + "gate.weight"][0] == (8, 32)
        assert shapes[p + "gate.e_score_correction_bias"][0] == (8,)
        assert shapes[p + "experts.7.down_proj.weight"][0] == (32, 12)
        assert shapes[p + "shared_experts.up_proj.weight"][0] == (12, 32)
    a = "model.layers.0.self_attn."
    assert shapes[a + "q_a_proj.weight"][0] == (24, 32)
    assert shapes[a + "q_b_proj.weight"][0] == (2 * 12, 24)
    assert shapes[a + "kv_a_proj_with_mqa.weight"][0] == (20, 32)
    assert shapes[a + "kv_b_proj.weight"][0] == (2 * 16, 16)
    assert shapes[a + "o_proj.weight"][0] == (32, 16)
    assert a + "q_proj.weight" not in n
    assert shapes["lm_head.weight"][0] == shapes["model.embed_tokens.weight"][0] == (64, 32)
    assert not any(k.startswith("model.layers.3.") for k in n)


def test_tensor_table_v2_lite_and_variants():
    lite = checkpoint.tiny_v2_lite()
    shapes = checkpoint.tensor_shapes(lite)
    a = "model.layers.1.self_attn."
    assert shapes[a + "q_proj.weight"][0] == (2 * 12, 32)
    assert a + "q_a_proj.weight" not in shapes and a + "q_a_layernorm.weight" not in shapes
    assert shapes[a + "kv_b_proj.weight"][0] == (2 * (8 + 6), 16)
    assert shapes[a + "o_proj.weight"][0] == (32, 12)
    assert shapes["model.layers.1.mlp.shared_experts.gate_proj.weight"][0] == (24, 32)  # Ns*Fm
    assert not any("e_score_correction_bias" in k for k in shapes)  # greedy: no bias
    grouped = names(checkpoint.tiny_v2_grouped())
    assert not any("e_score_correction_bias" in k for k in grouped)
    # moe_layer_freq 2, first_k_dense_replace 0: layers 0, 2 MoE; 1, 3 dense
    noyarn = names(checkpoint.tiny_noyarn())
    assert [checkpoint.is_moe_layer(checkpoint.tiny_noyarn(), L) for L in range(4)] == \
        [True, False, True, False]
    assert "model.layers.1.mlp.up_proj.weight" in noyarn
    assert "model.layers.2.mlp.experts.0.up_proj.weight" in noyarn
    no_shared = names(dict(checkpoint.tiny_v3(), n_shared_experts=0))
    assert not any("shared_experts" in k for k in no_shared)


def test_weights_are_non_trivial_and_deterministic():
    cfg = checkpoint.demo()
    w = checkpoint.random_weights(cfg, seed=5)
    assert set(w) == names(cfg)
    again = checkpoint.random_weights(cfg, seed=5)
    assert all(np.array_equal(w[k], again[k]) for k in w)
    other = checkpoint.random_weights(cfg, seed=6)
    assert not np.array_equal(w["lm_head.weight"], other["lm_head.weight"])
    up = np.concatenate([w[f"model.layers.1.mlp.experts.{e}.up_proj.weight"].ravel()
                         for e in range(16)])
    assert abs(up.std() - 1 / math.sqrt(64)) < 0.01
    down = w["model.layers.0.mlp.down_proj.weight"]
    assert abs(down.std() - 1 / math.sqrt(128)) < 0.01
    norms = np.concatenate([v for k, v in w.items() if k.endswith("layernorm.weight")])
    assert abs(norms.mean() - 1) < 0.02 and abs(norms.std() - 0.1) < 0.02
    bias = np.concatenate([v for k, v in w.items() if k.endswith("e_score_correction_bias")])
    assert 0.05 < bias.std() < 0.15
    assert abs(w["model.embed_tokens.weight"].std() - 1) < 0.05
    assert all(v.dtype == np.float32 for v in w.values())


def test_f32_and_bf16_checkpoints_load_as_stored(tmp_path):
    cfg = checkpoint.tiny_v3()
    src = checkpoint.random_weights(cfg, 1)
    for dtype in ("f32", "bf16"):
        d = str(tmp_path / dtype)
        written, stored = checkpoint.write_checkpoint(d, cfg, src, dtype=dtype)
        on_disk = json.load(open(os.path.join(d, "config.json")))
        assert on_disk == written and "quantization_config" not in on_disk
        assert on_disk["torch_dtype"] == ("float32" if dtype == "f32" else "bfloat16")
        _, loaded = checkpoint.load_checkpoint(d)
        assert set(loaded) == set(src)
        assert all(np.array_equal(loaded[k], stored[k]) for k in src)
        raw = st.read(os.path.join(d, "model.safetensors"))
        bias = "model.layers.1.mlp.gate.e_score_correction_bias"
        assert raw[bias][0] == "F32"  # fp32 in every mode
        assert raw["model.norm.weight"][0] == ("F32" if dtype == "f32" else "BF16")
        if dtype == "f32":
            assert all(np.array_equal(loaded[k], src[k]) for k in src)
        else:
            k = "model.layers.0.self_attn.q_b_proj.weight"
            assert np.abs(loaded[k] - src[k]).max() <= 2 ** -8 * np.abs(src[k]).max()


def _wide_config():
    """Dims past 128 so FP8 scale grids have more than one block per axis."""
    return dict(checkpoint.tiny_v3(), hidden_size=136, intermediate_size=260, q_lora_rank=24,
                num_hidden_layers=2, first_k_dense_replace=1, n_routed_experts=4, n_group=2,
                topk_group=1, moe_intermediate_size=8, vocab_size=16)


def test_fp8_checkpoint_layout_and_accuracy(tmp_path):
    cfg = _wide_config()
    src = checkpoint.random_weights(cfg, 2)
    written, stored = checkpoint.write_checkpoint(str(tmp_path), cfg, src, dtype="fp8")
    assert written["quantization_config"] == {"quant_method": "fp8", "fmt": "e4m3",
                                              "activation_scheme": "dynamic",
                                              "weight_block_size": [128, 128]}
    raw = st.read(str(tmp_path / "model.safetensors"))
    kinds = {n: k for n, (_, k) in checkpoint.tensor_shapes(cfg).items()}
    for name, kind in kinds.items():
        dt = raw[name][0]
        if kind == "linear":
            assert dt == "F8_E4M3", name
            rows, cols = src[name].shape
            sdt, scale = raw[name + "_scale_inv"]
            assert sdt == "F32" and scale.shape == (-(-rows // 128), -(-cols // 128))
        else:
            assert dt == ("F32" if kind == "bias" else "BF16"), name
            assert name + "_scale_inv" not in raw
    assert raw["model.layers.0.mlp.gate_proj.weight"][1].shape == (260, 136)
    assert raw["model.layers.0.mlp.gate_proj.weight_scale_inv"][1].shape == (3, 2)
    _, loaded = checkpoint.load_checkpoint(str(tmp_path))
    for name, kind in kinds.items():
        if kind != "linear":
            continue
        w, got = src[name].astype(np.float64), loaded[name]
        assert np.allclose(got, stored[name], rtol=1e-6, atol=0)
        scale = np.repeat(np.repeat(raw[name + "_scale_inv"][1], 128, 0), 128, 1)[:w.shape[0], :w.shape[1]]
        # e4m3: 3 mantissa bits (half-ulp 2^-4 relative), subnormal step 2^-9 x scale
        assert (np.abs(got - w) <= np.abs(w) / 16 + scale * 2 ** -10 + 1e-9).all(), name
        assert np.abs(got - w).max() < 0.07 * np.abs(w).max()
    # each block's largest magnitude maps to 448 exactly
    name = "model.layers.0.mlp.gate_proj.weight"
    blk = src[name][:128, :128]
    assert np.isclose(raw[name + "_scale_inv"][1][0, 0] * 448, np.abs(blk).max(), rtol=1e-6)


def test_sharded_checkpoint_equals_single_file(tmp_path):
    cfg = checkpoint.tiny_v2_lite()
    checkpoint.write_checkpoint(str(tmp_path / "one"), cfg, seed=3, dtype="fp8")
    checkpoint.write_checkpoint(str(tmp_path / "three"), cfg, seed=3, dtype="fp8", shards=3)
    files = sorted(os.listdir(tmp_path / "three"))
    assert files == ["config.json", "model-00001-of-00003.safetensors",
                     "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors",
                     "model.safetensors.index.json"]
    index = json.load(open(tmp_path / "three" / "model.safetensors.index.json"))
    assert set(index) == {"metadata", "weight_map"}
    assert "model.layers.1.self_attn.q_proj.weight_scale_inv" in index["weight_map"]
    _, a = checkpoint.load_checkpoint(str(tmp_path / "one"))
    _, b = checkpoint.load_checkpoint(str(tmp_path / "three"))
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_load_refuses_missing_or_misshapen_tensors(tmp_path):
    cfg = checkpoint.tiny_v3()
    w = checkpoint.random_weights(cfg)
    del w["model.layers.2.self_attn.o_proj.weight"]
    checkpoint.write_checkpoint(str(tmp_path / "miss"), cfg, w)
    with pytest.raises(ValueError, match="o_proj.weight' \\[32, 16\\] is missing"):
        checkpoint.load_checkpoint(str(tmp_path / "miss"))
    w = checkpoint.random_weights(cfg)
    w["model.norm.weight"] = np.ones(31, np.float32)
    checkpoint.write_checkpoint(str(tmp_path / "shape"), cfg, w)
    with pytest.raises(ValueError, match="shape \\[31\\], expected \\[32\\]"):
        checkpoint.load_checkpoint(str(tmp_path / "shape"))


# ---------------------------------------------------------------- command-line tools

def run(*args):
    return subprocess.run([PY, *args], capture_output=True, text=True, check=True)


def test_make_checkpoint_cli(tmp_path):
    run(os.path.join(TOOLS, "make_checkpoint.py"), "--preset", "tiny_v3", "--out",
        str(tmp_path / "p"), "--dtype", "bf16", "--shards", "2", "--seed", "4")
    cfg, w = checkpoint.load_checkpoint(str(tmp_path / "p"))
    assert cfg["torch_dtype"] == "bfloat16"
    expect = checkpoint.random_weights(checkpoint.tiny_v3(), 4)["lm_head.weight"]
    assert np.abs(w["lm_head.weight"] - expect).max() <= 2 ** -8 * np.abs(expect).max()
    cfg_file = tmp_path / "c.json"
    cfg_file.write_text(json.dumps(dict(checkpoint.tiny_noyarn(), vocab_size=40)))
    run(os.path.join(TOOLS, "make_checkpoint.py"), "--config", str(cfg_file), "--out",
        str(tmp_path / "c"))
    cfg, w = checkpoint.load_checkpoint(str(tmp_path / "c"))
    assert cfg["vocab_size"] == 40 and w["lm_head.weight"].shape == (40, 32)
    assert "tiny_v2_lite:" in run(os.path.join(TOOLS, "make_checkpoint.py"), "--list").stdout


def test_make_bad_safetensors_cli(tmp_path):
    tool = os.path.join(TOOLS, "make_bad_safetensors.py")
    listed = run(tool, "--list").stdout
    assert all(case in listed for case in st.MALFORMED_CASES)
    run(tool, "--case", "valid", "--out", str(tmp_path / "valid"))
    assert os.listdir(tmp_path / "valid") == ["model.safetensors"]
    got = st.read(str(tmp_path / "valid" / "model.safetensors"))
    assert {k: v[0] for k, v in got.items()} == {"a": "F32", "b": "BF16", "c": "F8_E4M3"}
    for case in ("overlap", "duplicate_name", "truncated"):
        d = tmp_path / case
        run(tool, "--case", case, "--out", str(d))
        with pytest.raises(st.SafetensorsError) as err:
            st.read(str(d / "model.safetensors"))
        assert err.value.kind == st.EXPECTED_KIND[case]
