#!/usr/bin/env python3
"""Writes a small byte-level BPE tokenizer in Hugging Face's tokenizer.json
format, shaped like DeepSeek's (Split regexes + ByteLevel, added tokens,
ByteLevel decoder), for tests that alter it and for fuzz seeds.

    make_tokenizer.py --out DIR        # DIR/tokenizer.json + tokenizer_config.json
"""
import argparse
import json
import os

# DeepSeek V3's pre-tokenizer patterns, as its tokenizer.json writes them.
DEEPSEEK_SPLITS = [
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?"
    "[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
]


def byte_symbols():
    """GPT-2's byte -> printable character map."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def tiny_tokenizer():
    """(tokenizer.json dict, tokenizer_config.json dict)."""
    sym = byte_symbols()
    vocab = {}
    for b in range(256):
        vocab[sym[b]] = len(vocab) + 3  # 0..2 are added tokens
    merges = []
    for word in ["hello", "world", "\u0120the", "\u0120hello", "ing", "er"]:
        cur = word[0]
        for ch in word[1:]:
            merges.append([cur, ch])
            cur += ch
            vocab.setdefault(cur, len(vocab) + 3)
    added = [
        {"id": 0, "content": "<bos>", "special": True},
        {"id": 1, "content": "<eos>", "special": True},
        {"id": 2, "content": "<user>", "special": False},
    ]
    for a in added:
        a.update(single_word=False, lstrip=False, rstrip=False, normalized=not a["special"])
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": r}, "behavior": "Isolated",
                 "invert": False} for r in DEEPSEEK_SPLITS
            ] + [{"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": False}],
        },
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True,
                           "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                  "merges": [" ".join(m) for m in merges]},
    }
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<bos>",
              "eos_token": {"content": "<eos>"}, "clean_up_tokenization_spaces": False,
              "tokenizer_class": "LlamaTokenizerFast"}
    return tok, config


def write(out, tok, config):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    if config is not None:
        with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, ensure_ascii=False)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    a = p.parse_args()
    write(a.out, *tiny_tokenizer())


if __name__ == "__main__":
    main()
