"""dsmlir.Engine's structured outputs (json_schema, regex, choice,
json_object) on a compiled random model with a tokenizer (the one ds-serve's
text tests use): whatever the random model prefers, each sampled answer
follows its constraint, and a request that cannot be constrained is refused
before anything runs."""
import json
import os
import re
import subprocess
import sys

import pytest

import dsmlir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("structured_ckpt"))
    subprocess.run([sys.executable, os.path.join(ROOT, "test", "Serve", "make_text_model.py"), d],
                   check=True)
    art = os.path.join(d, "m.dsa")
    dsmlir.compile(d, art)
    return art, d


def _texts(eng, outs):
    return [eng.tokenizer.decode(o["tokens"], skip_special_tokens=True) for o in outs]


def test_answers_follow_their_constraints(text_model):
    art, ckpt = text_model
    eng = dsmlir.Engine(art, ckpt, num_pages=16, max_num_seqs=4)
    prompts = ["hello the world"] * 4
    kw = dict(max_new_tokens=60, temperature=1.0)
    outs = eng.generate(prompts, seed=1, regex=r"[a-c]{2,4}-\d{1,3}", **kw)
    for o, t in zip(outs, _texts(eng, outs)):
        assert re.fullmatch(r"[a-c]{2,4}-\d{1,3}", t), t
        assert o["finish_reason"] == "stop"
    outs = eng.generate(prompts, seed=2, choice=["alpha", "beta gamma"], **kw)
    assert all(t in ("alpha", "beta gamma") for t in _texts(eng, outs))
    schema = {"type": "object",
              "properties": {"ok": {"type": "boolean"},
                             "n": {"type": "integer", "minimum": 3, "maximum": 7},
                             "code": {"type": "string", "pattern": "^[a-c]{2}$"}},
              "required": ["ok", "n", "code"]}
    outs = eng.generate(prompts, seed=3, json_schema=schema, max_new_tokens=200,
                        temperature=1.0)
    ended = 0
    for o, t in zip(outs, _texts(eng, outs)):
        if o["finish_reason"] != "stop":
            continue  # a random model may spend its tokens on whitespace
        ended += 1
        v = json.loads(t)
        assert list(v) == ["ok", "n", "code"]
        assert isinstance(v["ok"], bool) and 3 <= v["n"] <= 7, t
        assert re.fullmatch("[a-c]{2}", v["code"]), t
    assert ended >= 2
    outs = eng.generate(prompts[:2], seed=4, json_object=True, max_new_tokens=80,
                        temperature=1.0)
    for t in _texts(eng, outs):
        assert t.lstrip().startswith("{"), t
    # Unconstrained requests of the same engine are untouched.
    free = eng.generate(["hello the world"], max_new_tokens=5)
    alone = dsmlir.Engine(art, ckpt, num_pages=16).generate(["hello the world"],
                                                             max_new_tokens=5)
    assert free[0]["tokens"] == alone[0]["tokens"]


def test_bad_constraints_are_refused(text_model):
    art, ckpt = text_model
    eng = dsmlir.Engine(art, ckpt, num_pages=16)
    with pytest.raises(dsmlir.Error, match="regex: missing '\\)'"):
        eng.generate(["x"], regex="(a")
    with pytest.raises(dsmlir.Error, match="json_schema: .*'not' is not supported"):
        eng.generate(["x"], json_schema={"not": {}})
    with pytest.raises(ValueError, match="one of json_schema, regex"):
        eng.generate(["x"], regex="a", choice=["b"])
    assert eng.stats()["running"] == 0 and eng.stats()["waiting"] == 0
