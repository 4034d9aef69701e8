"""DSRT_BATCH_INVARIANT on a bf16 MoE checkpoint through dsmlir.Engine.

With DSRT_BATCH_INVARIANT=1 every request of a batch whose steps carry at
most 16 tokens (a batched decode: 8 requests, two prompt tokens each) gets
the logits it gets alone, bit for bit: the dense products and the expert
groups (the folded shared expert over all 8 rows among them) take the dot
products. By default (0) sets whose tiles are ahead take them (AMX for the
dense products, every set with bf16 tiles for expert groups from 6 rows),
and the same requests agree with their lone runs only to within f32
summation order and the bf16 roundings it moves.

The flag is read once per process, so each setting runs in a child."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dsmlir
from ds_testing import checkpoint

CHILD = r"""
import json, sys
import numpy as np
import dsmlir
art, ckpt = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(7)
prompts = [[int(t) for t in rng.integers(2, 64, 2)] for _ in range(8)]
forced = [[int(t) for t in rng.integers(2, 64, 6)] for _ in range(8)]
eng = dsmlir.Engine(art, ckpt, num_pages=16, max_num_seqs=8)
batch = eng.generate(prompts, force_tokens=forced, token_logits=True)
stats = eng.stats()
worst, equal = 0.0, True  # worst: a row's relative L2 change
for i, p in enumerate(prompts):
    alone = dsmlir.Engine(art, ckpt, num_pages=4).generate(
        [p], force_tokens=[forced[i]], token_logits=True)[0]["token_logits"]
    got = batch[i]["token_logits"]
    equal = equal and bool(np.array_equal(got, alone))
    rel = np.linalg.norm(got - alone, axis=1) / np.linalg.norm(alone, axis=1)
    worst = max(worst, float(rel.max()))
print(json.dumps({"equal": equal, "worst": worst, "stats": stats}))
"""


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("inv_ckpt")
    cfg = checkpoint.PRESETS["tiny_v3"]()
    # Rows of a few hundred values, so that the products' tiles and dot
    # products sum in different orders.
    cfg.update(hidden_size=256, intermediate_size=512, moe_intermediate_size=128,
               q_lora_rank=96, kv_lora_rank=64, max_position_embeddings=128)
    checkpoint.write_checkpoint(str(d), cfg, dtype="bf16")
    art = str(d / "m.dsa")
    dsmlir.compile(str(d), art)
    return art, str(d)


def _child(model, value):
    """CHILD run with DSRT_BATCH_INVARIANT=value."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(dsmlir.__file__)))
    path = os.pathsep.join(p for p in (package, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, DSRT_BATCH_INVARIANT=value, PYTHONPATH=path)
    return subprocess.run([sys.executable, "-c", CHILD, *model], capture_output=True,
                          text=True, timeout=600, env=env)


def _run(model, value):
    r = _child(model, value)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_invariant_batch_matches_each_request_alone_bit_for_bit(model):
    out = _run(model, "1")
    # The requests ran together: 8 prompts of 2 tokens, then 6 decode
    # steps of 8 tokens (56 tokens in 6 steps).
    assert out["stats"]["tokens_per_step"] >= 8, out["stats"]
    assert out["equal"], f"batched logits moved by up to {out['worst']}"


def test_default_batch_stays_within_summation_order(model):
    out = _run(model, "0")
    # A row's logits move by the f32 summation order and the bf16 roundings
    # of activations it tips, layer after layer: 3.9e-3 of their L2 norm at
    # most on an Emerald Rapids with AMX (0 where no tile is taken); a
    # wrong row or expert would move them by ~1.
    assert out["worst"] < 2e-2, out


def test_bad_value_is_refused(model):
    r = _child(model, "yes")
    assert r.returncode != 0
    assert "DSRT_BATCH_INVARIANT='yes' is unknown (expected 1 or 0)" in r.stderr
