"""The Python package: compile, inspect stages, run; same results and
messages as the command-line tools."""
import json
import os
import subprocess
import threading
import time

import numpy as np
import pytest

import dsmlir
from conftest import BIN_DIR
from ds_testing import checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    checkpoint.write_checkpoint(str(d), checkpoint.PRESETS["tiny_v3"](), dtype="bf16")
    return str(d)


@pytest.fixture(scope="module")
def artifact(ckpt, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("art") / "m.dsa")
    assert dsmlir.compile(ckpt, path) == path
    return path


def test_cuda_stages(ckpt):
    assert dsmlir.stage_names("cuda") == ["ds", "absorbed", "dispatched", "kernels", "loops",
                                          "gpu", "nvvm", "ptx", "llvm"]
    ptx = dsmlir.compile(ckpt, emit="ptx", target="cuda", gpu_arch="sm_80")
    assert ".target sm_80" in ptx and "shfl.sync.bfly" in ptx
    gpu = dsmlir.compile(ckpt, emit="gpu", target="cuda")
    assert "gpu.launch_func" in gpu
    with pytest.raises(dsmlir.Error, match="--gpu-arch: expected sm_75 or later"):
        dsmlir.compile(ckpt, emit="ptx", target="cuda", gpu_arch="sm_52")


def test_stage_names_and_ir_text(ckpt):
    assert dsmlir.stage_names() == ["ds", "absorbed", "dispatched", "kernels", "loops", "llvm"]
    stages = dsmlir.compile_stages(ckpt)
    assert list(stages) == dsmlir.stage_names()
    assert "ds.mla " in stages["ds"] and "ds.mla " not in stages["absorbed"]
    assert "ds.latent_attention" in stages["absorbed"]
    assert "ds.moe_route" in stages["dispatched"]
    assert "llvm.func @_mlir_ciface_decode" in stages["llvm"]
    assert dsmlir.compile(ckpt, emit="kernels") == stages["kernels"]


def test_python_and_ds_run_give_identical_logits(ckpt, artifact, tmp_path):
    prompt, forced = [5, 9, 14, 3], [7, 8, 21]
    out = dsmlir.Model(artifact, ckpt).generate(prompt, force_tokens=forced)
    npy = str(tmp_path / "l.npy")
    stats = str(tmp_path / "s.json")
    subprocess.run([os.path.join(BIN_DIR, "ds-run"), artifact, "--weights", ckpt,
                    "--prompt-tokens", ",".join(map(str, prompt)),
                    "--force-tokens", ",".join(map(str, forced)),
                    "--dump-logits", npy, "--stats-json", stats], check=True,
                   capture_output=True)
    assert out["tokens"] == forced
    assert np.array_equal(out["logits"], np.load(npy))
    with open(stats) as f:
        cli = json.load(f)
    assert set(cli) == set(out["stats"])
    assert out["stats"]["kv_cache_bytes_per_token"] == cli["kv_cache_bytes_per_token"] == 3 * 20 * 4


def test_weight_pages_count_the_touched_checkpoint(ckpt, artifact):
    model = dsmlir.Model(artifact, ckpt)
    size = os.path.getsize(os.path.join(ckpt, "model.safetensors"))
    out = model.generate([5, 9, 14], max_new_tokens=2)
    pages = model.weight_pages()
    assert pages["mapped_bytes"] == size
    # The run touched the mapping; a file this small has no 2 MiB page.
    assert 0 < pages["resident_bytes"] <= size + 4096
    assert pages["huge_page_bytes"] == 0 and pages["note"] == ""
    assert out["stats"]["weights_resident_bytes"] == pages["resident_bytes"]


def test_session_prefill_and_decode_match_generate(ckpt, artifact):
    model = dsmlir.Model(artifact, ckpt)
    ref = model.generate([5, 9, 14], force_tokens=[2, 3])["logits"]
    s = model.session(capacity=16)
    rows = [s.prefill([5, 9, 14]), s.decode(2)[None, :], s.decode(3)[None, :]]
    assert s.position == 5
    assert np.array_equal(np.concatenate(rows), ref)
    s.reset()
    assert s.position == 0


def test_sampling_is_seeded(ckpt, artifact):
    model = dsmlir.Model(artifact, ckpt)
    a = model.generate([5, 6], 12, temperature=1.5, top_p=0.9, seed=3)["tokens"]
    b = model.generate([5, 6], 12, temperature=1.5, top_p=0.9, seed=3)["tokens"]
    assert a == b


def test_top_k_one_is_greedy_at_any_temperature(ckpt, artifact):
    model = dsmlir.Model(artifact, ckpt)
    greedy = model.generate([5, 6], 12)["tokens"]
    hot = model.generate([5, 6], 12, temperature=1.5, seed=3)["tokens"]
    assert hot != greedy  # so that top_k below is what makes them equal
    assert model.generate([5, 6], 12, temperature=1.5, seed=3, top_k=1)["tokens"] == greedy
    with pytest.raises(ValueError, match="top_k"):
        model.generate([5, 6], 2, top_k=-1)


def test_errors_carry_the_cli_messages(ckpt, artifact, tmp_path):
    model = dsmlir.Model(artifact, ckpt)
    with pytest.raises(dsmlir.Error, match=r"token id 64 at index 1 is out of range \[0, 64\)"):
        model.session().prefill([1, 64])
    with pytest.raises(dsmlir.Error, match="empty prompt"):
        model.session().prefill([])
    with pytest.raises(dsmlir.Error, match=r"exceeds the cache capacity \(4\)"):
        model.session(capacity=4).prefill([1, 2, 3, 4, 5])
    with pytest.raises(dsmlir.Error, match="compiled for target 'cpu', cannot run on device 'cuda'"):
        dsmlir.Model(artifact, ckpt, device="cuda")
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama"}')
    with pytest.raises(dsmlir.Error, match="field 'model_type': unknown model_type 'llama'"):
        dsmlir.compile(str(bad), emit="ds")
    r = subprocess.run([os.path.join(BIN_DIR, "ds-compile"), str(bad), "--emit=ds"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "field 'model_type': unknown model_type 'llama'" in r.stderr
    assert issubclass(dsmlir.Error, RuntimeError)


def test_compile_releases_the_gil(ckpt, tmp_path):
    ticks = []
    done = threading.Event()

    def work():
        dsmlir.compile(ckpt, str(tmp_path / "g.dsa"))
        done.set()

    t = threading.Thread(target=work)
    start = time.perf_counter()
    t.start()
    while not done.is_set():
        ticks.append(time.perf_counter())
        time.sleep(0.005)
    t.join()
    elapsed = time.perf_counter() - start
    # Held GIL: the loop above could not run while compiling (~1 s).
    assert elapsed > 0.2 and len(ticks) > 0.3 * elapsed / 0.005


def test_prefill_continuing_a_context_matches_one_prefill(ckpt, tmp_path, monkeypatch):
    """A chat turn: a second prefill over an existing context (naive MLA
    form, the context's K/V built 3 rows at a time and merged by
    log-sum-exp) gives the logits of one prefill of both parts. The bf16
    weights are bound as f32 copies: bf16 arithmetic (the CPU default with
    AVX512-BF16) rounds activations, which turns the two attention orders'
    1e-7 differences into 1e-2 ones."""
    monkeypatch.setenv("DSRT_WEIGHTS_F32", "1")
    art = str(tmp_path / "chunked.dsa")
    subprocess.run([os.path.join(BIN_DIR, "ds-compile"), ckpt, "-o", art,
                    "--mla-form", "naive", "--attention-chunk", "3"], check=True)
    model = dsmlir.Model(art, ckpt)
    first, second = [5, 9, 13, 2, 7, 30, 11], [4, 8, 15, 16, 23]
    whole = np.asarray(model.session().prefill(first + second))
    s = model.session()
    s.prefill(first)
    turn = np.asarray(s.prefill(second))
    assert turn.shape == (len(second), whole.shape[1])
    assert np.abs(turn - whole[len(first):]).max() < 1e-4
