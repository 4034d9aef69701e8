#!/usr/bin/env python3
"""Writes a tiny checkpoint whose vocabulary is exactly the tiny test
tokenizer's (test/tools/make_tokenizer.py), with its tokenizer.json and
tokenizer_config.json beside the weights, the latter with DeepSeek-V2-Chat's
chat template (test/chat/templates). DeepSeek V3's role, tool-call and
fill-in-the-middle tokens are added tokens too (not special, as in V3's
tokenizer), so a V3 template, tool calls and FIM can be served.
Usage: make_text_model.py DIR"""
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
V3_TOKENS = ["<｜User｜>", "<｜Assistant｜>", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>",
             "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁outputs▁begin｜>",
             "<｜tool▁outputs▁end｜>", "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>",
             "<｜tool▁sep｜>", "<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>"]
next_id = 1 + max(list(tok["model"]["vocab"].values()) + [a["id"] for a in tok["added_tokens"]])
for i, content in enumerate(V3_TOKENS):
    tok["added_tokens"].append({"id": next_id + i, "content": content, "special": False,
                                "single_word": False, "lstrip": False, "rstrip": False,
                                "normalized": True})
write(out, tok, config)
vocab = 1 + max(list(tok["model"]["vocab"].values()) + [a["id"] for a in tok["added_tokens"]])
# A longer context than tiny_v3's 64: room for tool definitions and
# structured answers (the rotary tables grow; the model is the same).
checkpoint.write_checkpoint(out, dict(checkpoint.tiny_v3(), vocab_size=vocab,
                                      max_position_embeddings=256), seed=4)
