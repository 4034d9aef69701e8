#!/usr/bin/env python3
"""Writes a tiny checkpoint whose vocabulary is exactly the tiny test
tokenizer's (test/tools/make_tokenizer.py), with its tokenizer.json and
tokenizer_config.json beside the weights, the latter with DeepSeek-V2-Chat's
chat template (test/chat/templates).  Usage: make_text_model.py DIR"""
import os
import sys

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools")
sys.path.insert(0, TOOLS)
from ds_testing import checkpoint  # noqa: E402
from make_tokenizer import tiny_tokenizer, write  # noqa: E402

out = sys.argv[1]
tok, config = tiny_tokenizer()
with open(os.path.join(TOOLS, "..", "chat", "templates", "deepseek-v2-chat.jinja")) as f:
    config["chat_template"] = f.read()
config["eos_token"] = "<eos>"
write(out, tok, config)
vocab = 1 + max(list(tok["model"]["vocab"].values()) + [a["id"] for a in tok["added_tokens"]])
checkpoint.write_checkpoint(out, dict(checkpoint.tiny_v3(), vocab_size=vocab), seed=4)
