"""Text through ds-run (--prompt, streamed output) and Model.generate, on a
tiny model whose vocabulary covers the tiny test tokenizer."""
import json
import os
import subprocess

import pytest

import dsmlir
from conftest import BIN_DIR
from ds_testing import checkpoint
from make_tokenizer import tiny_tokenizer, write

DS_RUN = os.path.join(BIN_DIR, "ds-run")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("text")
    ckpt = str(d / "ckpt")
    tok, config = tiny_tokenizer()
    write(ckpt, tok, config)
    # Exactly the tokenizer's ids: every id the model picks has text.
    vocab = 1 + max(list(tok["model"]["vocab"].values()) + [a["id"] for a in tok["added_tokens"]])
    checkpoint.write_checkpoint(ckpt, dict(checkpoint.tiny_v3(), vocab_size=vocab), seed=4)
    artifact = str(d / "m.dsa")
    dsmlir.compile(ckpt, artifact)
    return ckpt, artifact


def dsmlir_config(ckpt):
    with open(os.path.join(ckpt, "config.json")) as f:
        return json.load(f)


def ds_run(*args):
    r = subprocess.run([DS_RUN, *args], capture_output=True, timeout=300)
    assert r.returncode in (0, 1), r  # 1 on errors, never a signal
    return r


def test_forced_tokens_come_out_as_text(model_dir):
    ckpt, artifact = model_dir
    tok = dsmlir.Tokenizer(ckpt)
    want = "héllo wörld, 123 <user> 😀"
    ids = tok.encode(want, add_special_tokens=False)
    r = ds_run(artifact, "--weights", ckpt, "--prompt", "hello",
               "--force-tokens", ",".join(map(str, ids)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == want + "\n"


def test_prompt_text_equals_prompt_tokens(model_dir):
    ckpt, artifact = model_dir
    tok = dsmlir.Tokenizer(ckpt)
    prompt = "hello the world"
    ids = tok.encode(prompt)
    assert ids[0] == 0  # BOS from tokenizer_config.json
    stats = os.path.join(os.path.dirname(artifact), "s.json")
    by_ids = ds_run(artifact, "--weights", ckpt, "--prompt-tokens", ",".join(map(str, ids)),
                    "--max-new-tokens", "12")
    by_text = ds_run(artifact, "--weights", ckpt, "--prompt", prompt, "--max-new-tokens", "12",
                     "--stats-json", stats)
    assert by_ids.returncode == 0 and by_text.returncode == 0, by_text.stderr
    generated = [int(t) for t in by_ids.stdout.decode().split(",")]
    assert by_text.stdout.decode() == tok.decode(generated, skip_special_tokens=True) + "\n"
    assert json.load(open(stats))["prefill_tokens"] == len(ids)

    out = dsmlir.Model(artifact, ckpt).generate(prompt, max_new_tokens=12)
    assert out["prompt_tokens"] == ids and out["tokens"] == generated
    assert out["text"] == tok.decode(generated, skip_special_tokens=True)


@pytest.mark.parametrize("args,message", [
    (["--prompt", "x", "--prompt-tokens", "1"], "--prompt and --prompt-tokens exclude each other"),
    (["--prompt-tokens", "1", "--tokenizer", "/tmp"],
     "--tokenizer is only used with --prompt or --chat"),
    ([], "missing prompt: give --prompt TEXT or --prompt-tokens 1,2,3"),
])
def test_option_errors(model_dir, args, message):
    ckpt, artifact = model_dir
    r = ds_run(artifact, "--weights", ckpt, *args)
    assert r.returncode == 1 and r.stderr.decode() == f"ds-run: error: {message}\n"


def test_tokenizer_errors(model_dir, tmp_path):
    ckpt, artifact = model_dir
    bad = subprocess.run([DS_RUN, artifact, "--weights", ckpt, "--prompt", b"a\xff"],
                         capture_output=True, timeout=300)
    assert bad.returncode == 1
    assert bad.stderr.decode() == "ds-run: error: --prompt: text is not valid UTF-8 at byte 1\n"

    r = ds_run(artifact, "--weights", ckpt, "--prompt", "x", "--tokenizer", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.decode() == (f"ds-run: error: --tokenizer: {tmp_path}/tokenizer.json: no such "
                                 "file (a Hugging Face tokenizer.json is needed)\n")

    tok, config = tiny_tokenizer()
    tok["normalizer"] = {"type": "NFC"}
    write(str(tmp_path), tok, config)
    r = ds_run(artifact, "--weights", ckpt, "--prompt", "x", "--tokenizer", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.decode() == (f'ds-run: error: --tokenizer: {tmp_path}/tokenizer.json: '
                                 'normalizer.type: unsupported "NFC" (normalizers are not '
                                 'supported)\n')


def test_checkpoint_without_tokenizer(model_dir, tmp_path):
    ckpt, artifact = model_dir
    bare = str(tmp_path / "bare")
    checkpoint.write_checkpoint(bare, dsmlir_config(ckpt), seed=4)
    r = ds_run(artifact, "--weights", bare, "--prompt", "x")
    assert r.returncode == 1
    assert r.stderr.decode() == (f"ds-run: error: {bare}/tokenizer.json: no such file (a Hugging "
                                 "Face tokenizer.json is needed); pass --tokenizer DIR\n")
    with pytest.raises(dsmlir.Error, match="tokenizer.json: no such file"):
        dsmlir.Model(artifact, bare).generate("x")
