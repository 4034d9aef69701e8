"""The test-side safetensors codec: every dtype round-trips bit-exactly where
it can, bf16/e4m3 round to nearest even, files have the documented layout,
and each malformed-file helper produces the damage it claims."""
import json
import os
import struct

import numpy as np
import pytest

from ds_testing import safetensors as st


# ---------------------------------------------------------------- dtypes

def test_plain_dtypes_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    arrays = {"f32": a, "f16": a.astype(np.float16), "f64": a.astype(np.float64),
              "i32": np.arange(6, dtype=np.int32).reshape(2, 3) - 3, "scalar": np.float32(2.5),
              "empty": np.zeros((0, 4), np.float32)}
    dtypes = {"f16": "F16", "f64": "F64", "i32": "I32"}
    path = str(tmp_path / "m.safetensors")
    st.write(path, arrays, dtypes)
    got = st.read(path)
    for name, arr in arrays.items():
        dt, back = got[name]
        assert dt == dtypes.get(name, "F32")
        assert back.shape == np.shape(arr)
        assert np.array_equal(back, arr)


def test_bf16_rounds_to_nearest_even():
    cases = [
        (1 + 2 ** -8, 0x3F80),               # tie -> even (down)
        (1 + 3 * 2 ** -8, 0x3F82),           # tie -> even (up)
        (1 + 2 ** -8 + 2 ** -20, 0x3F81),    # above the tie -> up
        (-(1 + 2 ** -8), 0xBF80),
        (0.0, 0x0000), (-0.0, 0x8000),
        (np.inf, 0x7F80), (-np.inf, 0xFF80),
        (3.4028234663852886e38, 0x7F80),     # f32 max rounds up into inf (RNE)
        (1e-45, 0x0000),                     # smallest f32 subnormal rounds to +0
    ]
    x = np.array([v for v, _ in cases], np.float32)
    assert [hex(v) for v in st.f32_to_bf16_bits(x)] == [hex(b) for _, b in cases]
    nan = st.f32_to_bf16_bits(np.array([np.nan], np.float32))
    assert np.isnan(st.bf16_bits_to_f32(nan))[0]
    assert st.bf16_bits_to_f32(np.array([0x3F80], np.uint16))[0] == np.float32(1.0)


def test_bf16_every_finite_pattern_round_trips():
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    vals = st.bf16_bits_to_f32(bits)
    keep = ~np.isnan(vals)
    assert np.array_equal(st.f32_to_bf16_bits(vals[keep]), bits[keep])


def _e4m3_brute(x):
    """Nearest finite e4m3 value by exhaustive search, ties to the even code."""
    finite = list(range(0x7F))
    out = []
    for v in np.asarray(x, np.float64):
        mag = min(abs(v), 448.0)
        d = [abs(mag - st.E4M3[c]) for c in finite]
        cands = [c for c, dd in zip(finite, d) if dd == min(d)]
        code = [c for c in cands if c % 2 == 0][0] if len(cands) > 1 else cands[0]
        out.append(code | (0x80 if np.signbit(v) else 0))
    return np.array(out, np.uint8)


def test_e4m3_known_codes_and_edges():
    vals = np.array([0.0, -0.0, 1.0, -1.0, 448.0, 500.0, -1000.0, np.inf, -np.inf,
                     2 ** -9, 2 ** -10, 3 * 2 ** -10, 1.0625, 1.1875, 2 ** -6, 240.0, 464.0])
    want = [0x00, 0x80, 0x38, 0xB8, 0x7E, 0x7E, 0xFE, 0x7E, 0xFE,
            0x01, 0x00, 0x02, 0x38, 0x3A, 0x08, 0x77, 0x7E]
    # 2^-10 is halfway 0 .. 2^-9: even code 0; 3*2^-10 halfway codes 1 and 2: 2.
    # 1.0625 halfway 1.0 (0x38) .. 1.125 (0x39): 0x38; 1.1875: 0x3A. Past 448: saturate.
    assert [hex(b) for b in st.f32_to_e4m3_bits(vals)] == [hex(w) for w in want]
    assert st.f32_to_e4m3_bits(np.array([np.nan]))[0] == 0x7F
    assert np.isnan(st.e4m3_bits_to_f32(np.array([0x7F, 0xFF], np.uint8))).all()
    assert st.e4m3_bits_to_f32(np.array([0x7E], np.uint8))[0] == 448.0
    assert st.e4m3_bits_to_f32(np.array([0x01], np.uint8))[0] == 2.0 ** -9


def test_e4m3_every_code_round_trips_and_matches_brute_force():
    codes = np.array([c for c in range(256) if c not in (0x7F, 0xFF)], np.uint8)
    assert np.array_equal(st.f32_to_e4m3_bits(st.e4m3_bits_to_f32(codes)), codes)
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-500, 500, 300),
                        rng.choice([-1, 1], 300) * 2.0 ** rng.uniform(-12, 9, 300),
                        (st.E4M3[:0x7E] + st.E4M3[1:0x7F]) / 2])  # every midpoint
    assert np.array_equal(st.f32_to_e4m3_bits(x), _e4m3_brute(x))


def test_bf16_and_fp8_files_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 7)).astype(np.float32)
    path = str(tmp_path / "m.safetensors")
    st.write(path, {"b": a, "e": a}, {"b": "BF16", "e": "F8_E4M3"})
    got = st.read(path)
    assert got["b"][0] == "BF16"
    assert np.array_equal(got["b"][1], st.bf16_bits_to_f32(st.f32_to_bf16_bits(a)))
    assert got["e"][0] == "F8_E4M3"
    assert np.array_equal(got["e"][1], st.e4m3_bits_to_f32(st.f32_to_e4m3_bits(a)))
    assert np.abs(got["b"][1] - a).max() <= 2 ** -8 * np.abs(a).max()
    header, _ = st.read_header(path)
    assert header["b"]["data_offsets"][1] - header["b"]["data_offsets"][0] == 28 * 2
    assert header["e"]["data_offsets"][1] - header["e"]["data_offsets"][0] == 28


# ---------------------------------------------------------------- layout

def test_layout_sorted_contiguous_and_aligned(tmp_path):
    path = str(tmp_path / "m.safetensors")
    st.write(path, {"z": np.zeros(3, np.float32), "a": np.ones((2, 2), np.float32),
                    "m": np.zeros(5, np.float32)}, {"m": "BF16"}, metadata={"format": "pt"})
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    text = blob[8:8 + n].decode()
    assert n % 8 == 0 and set(text[len(text.rstrip()):]) <= {" "}
    assert len(blob) == 8 + n + 16 + 10 + 12
    header = json.loads(text)
    assert header.pop("__metadata__") == {"format": "pt"}
    assert [header[k]["data_offsets"] for k in ["a", "m", "z"]] == [[0, 16], [16, 26], [26, 38]]
    hdr, meta = st.read_header(path)
    assert list(hdr) == ["a", "m", "z"] and meta == {"format": "pt"}
    assert "__metadata__" not in st.read(path)


def test_sharded_writer_and_reader(tmp_path):
    rng = np.random.default_rng(3)
    arrays = {f"t{i}": rng.standard_normal((i + 1, 3)).astype(np.float32) for i in range(7)}
    index = st.write_sharded(str(tmp_path), st.tensors_from_arrays(arrays), 3,
                             metadata={"note": "x"})
    files = sorted(f for f in os.listdir(tmp_path) if f.endswith(".safetensors"))
    assert files == [st.shard_file_name(i, 3) for i in range(3)]
    assert files[0] == "model-00001-of-00003.safetensors"
    assert json.load(open(tmp_path / st.INDEX_NAME)) == index
    assert set(index) == {"metadata", "weight_map"}
    assert set(index["weight_map"]) == set(arrays)
    assert set(index["weight_map"].values()) == set(files)
    assert index["metadata"] == {"total_size": sum(a.nbytes for a in arrays.values()), "note": "x"}
    for f in files:  # each shard holds exactly what the index says
        assert set(st.read(str(tmp_path / f))) == {n for n, g in index["weight_map"].items() if g == f}
    got = st.read_dir(str(tmp_path))
    assert all(np.array_equal(got[n][1], a) for n, a in arrays.items())


def test_read_dir_checks_the_index(tmp_path):
    index = st.write_sharded(str(tmp_path), st.tensors_from_arrays({"a": np.zeros(2),
                                                                    "b": np.ones(2)}), 2)
    index["weight_map"]["ghost"] = st.shard_file_name(0, 2)
    json.dump(index, open(tmp_path / st.INDEX_NAME, "w"))
    with pytest.raises(st.SafetensorsError, match="'ghost' is listed in"):
        st.read_dir(str(tmp_path))


# ---------------------------------------------------------------- malformed files

def _sample():
    rng = np.random.default_rng(4)
    return st.tensors_from_arrays({"a": rng.standard_normal((4, 8)), "b": rng.standard_normal(8),
                                   "c": rng.standard_normal((2, 16))},
                                  {"b": "BF16", "c": "F8_E4M3"})


def _header_text(blob):
    n = struct.unpack("<Q", blob[:8])[0]
    return blob[8:8 + n].decode()


def test_valid_sample_parses():
    header, data = st.build(_sample())
    parsed, meta, body = st.parse(st.serialize(header, data))
    assert parsed == header and meta == {} and body == data


@pytest.mark.parametrize("case", list(st.MALFORMED_CASES))
def test_malformed_case_fails_for_its_reason(case):
    with pytest.raises(st.SafetensorsError) as err:
        st.parse(st.malformed(_sample(), case))
    assert err.value.kind == st.EXPECTED_KIND[case], str(err.value)


def test_malformed_bytes_are_what_they_claim():
    t = _sample()
    good_header, data = st.build(t)
    good = st.serialize(good_header, data)
    n_good = struct.unpack("<Q", good[:8])[0]

    cut = st.malformed(t, "truncated")
    assert good.startswith(cut) and 8 + n_good < len(cut) < len(good)  # cut inside the data

    long = st.malformed(t, "header_too_long")
    assert struct.unpack("<Q", long[:8])[0] > len(long) and long[8:] == good[8:]

    text = _header_text(st.malformed(t, "duplicate_name"))
    assert text.count('"a":') == 2 and text.count('"b":') == 1

    def hdr(case):
        return json.loads(_header_text(st.malformed(t, case)))

    assert hdr("bad_shape")["a"]["shape"][0] < 0
    assert hdr("bad_dtype")["a"]["dtype"] == "Q7"
    h = hdr("overlap")
    (ab, ae), (bb, be) = h["a"]["data_offsets"], h["b"]["data_offsets"]
    assert ab < be and bb < ae and be - bb == 16  # shares bytes, keeps its size
    bg, en = hdr("reversed_offsets")["a"]["data_offsets"]
    assert bg > en
    assert hdr("offsets_past_end")["c"]["data_offsets"][1] > len(data)
    h = hdr("size_mismatch")
    assert h["a"]["shape"] == [5, 8] and h["a"]["data_offsets"] == good_header["a"]["data_offsets"]
    with pytest.raises(ValueError):
        json.loads(_header_text(st.malformed(t, "not_json")))
    assert isinstance(json.loads(_header_text(st.malformed(t, "not_object"))), list)
    with pytest.raises(ValueError, match="unknown case"):
        st.malformed(t, "nope")
