"""The test-side safetensors codec: every dtype round-trips."""
import numpy as np

from ds_testing import safetensors as st


def test_f32_f16_bf16_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    path = str(tmp_path / "m.safetensors")
    st.write(path, {"a": a, "b": a, "c": a}, {"b": "BF16", "c": "F16"})
    got = st.read(path)
    assert got["a"][0] == "F32" and np.array_equal(got["a"][1], a)
    assert np.allclose(got["b"][1], a, rtol=2 ** -8)
    assert np.allclose(got["c"][1].astype(np.float32), a, rtol=1e-3)


def test_bf16_rounds_to_nearest_even():
    one_plus_half_ulp = np.float32(1 + 2 ** -8)
    assert st.f32_to_bf16_bits(np.array([one_plus_half_ulp]))[0] == 0x3F80
    assert st.f32_to_bf16_bits(np.array([np.float32(1 + 3 * 2 ** -8)]))[0] == 0x3F82


def test_e4m3_codes():
    vals = np.array([0.0, 1.0, -1.0, 448.0, 1000.0, 2 ** -9, 0.3])
    bits = st.f32_to_e4m3_bits(vals)
    assert bits[1] == 0x38 and bits[2] == 0xB8 and bits[3] == 0x7E
    assert bits[4] == 0x7E  # saturates, never NaN
    assert bits[5] == 0x01
    back = st.e4m3_bits_to_f32(bits)
    assert abs(back[6] - 0.3) < 0.3 * 2 ** -3
    assert np.isnan(st.e4m3_bits_to_f32(np.array([0x7F], np.uint8)))[0]


def test_header_alignment(tmp_path):
    path = str(tmp_path / "m.safetensors")
    st.write(path, {"x": np.zeros(3, np.float32)})
    blob = open(path, "rb").read()
    n = int.from_bytes(blob[:8], "little")
    assert n % 8 == 0 and len(blob) == 8 + n + 12
