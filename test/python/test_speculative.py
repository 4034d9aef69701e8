"""Speculative decoding with the MTP module through dsmlir.Engine on a
compiled tiny_v3_mtp checkpoint: greedy requests give the plain engine's
tokens for k = 1, 2, 3 drafts per step, over generations crossing 64-token
pages, in batches with forced and sampled requests, chunked prompts, a
budget that cuts verify segments and a pool small enough to preempt; bad
settings are one-line errors."""
import numpy as np
import pytest

import dsmlir
from ds_testing import checkpoint

MAX_POS = 256


def _compile(tmp_path_factory, preset):
    d = tmp_path_factory.mktemp(preset)
    cfg = checkpoint.PRESETS[preset]()
    cfg["max_position_embeddings"] = MAX_POS  # room for several pages
    checkpoint.write_checkpoint(str(d), cfg)
    art = str(d / "m.dsa")
    dsmlir.compile(str(d), art)
    return str(d), art


@pytest.fixture(scope="module")
def mtp(tmp_path_factory):
    return _compile(tmp_path_factory, "tiny_v3_mtp")


def _serve(art, ckpt, speculative, requests):
    """Runs `requests` (prompt, kwargs for add) together; tokens per request
    and the engine's stats."""
    eng = dsmlir.Engine(art, ckpt, num_pages=8, max_num_seqs=4,
                        max_num_batched_tokens=48, speculative=speculative)
    ids = []
    for prompt, kw in requests:
        ids.append(eng._e.add(prompt, kw["max_tokens"], kw.get("temperature", 0.0), 1.0, 0,
                              kw.get("seed", 0), [], True, kw.get("force"), False, True))
    tokens = {rid: [] for rid in ids}
    rows = {rid: [] for rid in ids}
    has_work = True
    while has_work:
        has_work, events = eng._e.step()
        for rid, token, reason, _, _, logits in events:
            if token >= 0:
                tokens[rid].append(token)
                rows[rid].append(logits[0])
    return [tokens[r] for r in ids], [np.array(rows[r]) for r in ids], eng.stats()


def _requests():
    rng = np.random.default_rng(3)
    ids = lambda n: [int(t) for t in rng.integers(2, 64, n)]
    return [
        (ids(5), {"max_tokens": 180}),               # decodes across 3 pages
        (ids(70), {"max_tokens": 120}),              # chunked prompt, then decodes
        (ids(30), {"max_tokens": 40, "force": ids(40)}),   # teacher forcing: no drafts
        (ids(12), {"max_tokens": 150}),
        (ids(9), {"max_tokens": 60, "temperature": 1.0, "seed": 7}),  # sampled
        (ids(100), {"max_tokens": 100}),
    ]


def test_greedy_tokens_equal_the_plain_engines(mtp):
    ckpt, art = mtp
    reqs = _requests()
    want, want_rows, plain = _serve(art, ckpt, None, reqs)
    assert plain["preemptions"] > 0 and plain["spec_rounds"] == 0
    assert [len(t) for t in want] == [r[1]["max_tokens"] for r in reqs]
    for k in (1, 2, 3):
        got, rows, s = _serve(art, ckpt, f"mtp:{k}", reqs)
        for i in (0, 1, 2, 3, 5):
            assert got[i] == want[i], f"k={k} request {i}"
            # The rows a verify step returns: prefill-form logits of the same
            # tokens, within the prefill/decode forms' rounding.
            assert np.abs(rows[i] - want_rows[i]).max() < 1e-4, f"k={k} request {i}"
        assert len(got[4]) == 60
        assert s["speculative_tokens"] == k and s["spec_rounds"] > 0
        assert 0 <= s["spec_accepted_tokens"] <= s["spec_draft_tokens"] <= k * s["spec_rounds"]
        assert s["pages_used"] == 0
        print(f"k={k}: {s['spec_accepted_tokens']} of {s['spec_draft_tokens']} drafts accepted, "
              f"mean accepted length {s['spec_mean_accepted_length']:.2f}, "
              f"{s['steps']} steps (plain {plain['steps']})")


def test_bad_settings_are_one_line_errors(mtp, tmp_path_factory):
    ckpt, art = mtp
    with pytest.raises(dsmlir.Error, match=r"expected 'mtp' or 'mtp:K' with K in \[1, 16\], got 'mtp:0'"):
        dsmlir.Engine(art, ckpt, num_pages=8, speculative="mtp:0")
    with pytest.raises(dsmlir.Error, match="got 'eagle'"):
        dsmlir.Engine(art, ckpt, num_pages=8, speculative="eagle")
    plain_ckpt, plain_art = _compile(tmp_path_factory, "tiny_v3")
    with pytest.raises(dsmlir.Error, match=r"speculative mtp: .*m\.dsa has no MTP module"):
        dsmlir.Engine(plain_art, plain_ckpt, num_pages=8, speculative="mtp")


def _agreeing_weights(cfg, eps, h_mix=0.0):
    """Random weights edited so the MTP module drafts what the main model
    decodes (bench/speculative.py's construction): norms 1, o_proj and down
    projections scaled by eps, eh_proj = [I, 0]. At eps 0.15 it agrees on
    64 of 84 drafts here (at 0.1 almost always, at 0.2 almost never)."""
    w = checkpoint.random_weights(cfg, 0)
    d = cfg["hidden_size"]
    for name in w:
        if name.endswith(("norm.weight", "layernorm.weight")):
            w[name] = np.ones_like(w[name])
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            w[name] = (w[name] * eps).astype(np.float32)
    eh = np.zeros((d, 2 * d), np.float32)
    eh[:, :d] = np.eye(d, dtype=np.float32)
    eh[:, d:] = h_mix * np.eye(d, dtype=np.float32)  # h_mix > 0: the drafter reads h
    w[f"model.layers.{cfg['num_hidden_layers']}.eh_proj.weight"] = eh
    return w


def test_each_draft_is_the_mtp_modules_choice(tmp_path):
    """The engine's drafter is fed the right pairs (h_i, t_{i+1}): replaying
    the generated tokens through prefill_hidden and draft (teacher forcing)
    and walking the engine's rounds gives exactly its counts of drafts
    proposed and accepted."""
    cfg = checkpoint.PRESETS["tiny_v3_mtp"]()
    cfg["max_position_embeddings"] = MAX_POS
    d = str(tmp_path)
    checkpoint.write_checkpoint(d, cfg, weights=_agreeing_weights(cfg, 0.15))
    art = d + "/m.dsa"
    dsmlir.compile(d, art)
    prompt, n = [5, 9, 14, 3, 22], 150
    eng = dsmlir.Engine(art, d, num_pages=4, max_num_seqs=1, speculative="mtp")
    gen = eng.generate([prompt], n, ignore_eos=True)[0]["tokens"]
    stats = eng.stats()
    toks = prompt + gen
    s = dsmlir.Model(art, d).session(MAX_POS)
    _, hidden = s.prefill_hidden(toks)
    drafts = s.draft(hidden[:-1], toks[1:])[0].argmax(axis=1)  # row i predicts toks[i + 2]
    c, drafted, accepted = len(prompt), 0, 0
    while c + 1 - len(prompt) < n:  # tokens fed so far < max_tokens
        if c + 1 - len(prompt) > n - 2:  # no room for a draft and the token after it
            c += 1
            continue
        drafted += 1
        if drafts[c - 1] == toks[c + 1]:
            accepted += 1
            c += 2
        else:
            c += 1
    assert 0.2 * drafted < accepted < drafted  # both outcomes happen
    assert (stats["spec_draft_tokens"], stats["spec_accepted_tokens"]) == (drafted, accepted)


def _replay(art, d, toks, prompt_len, n, k, chained=True):
    """Drafts proposed and accepted by walking the engine's greedy rounds
    over the generated tokens: each round drafts min(k, room) tokens on a
    fresh session (the verified pairs (h_i, t_{i+1}), i < c, then drafts
    2..k fed the module's output state and the drafted token; with
    chained=False, the last verified state again, the form before)."""
    m = dsmlir.Model(art, d)
    _, hidden = m.session(MAX_POS).prefill_hidden(toks)
    c, drafted, accepted = prompt_len, 0, 0
    while c + 1 - prompt_len < n:
        room = min(k, n - (c + 1 - prompt_len) - 1)
        if room <= 0:
            c += 1
            continue
        s = m.session(MAX_POS)
        logits, out = s.draft(hidden[:c], toks[1:c + 1])
        drafts = [int(np.argmax(logits[-1]))]
        g = out[-1:]
        for _ in range(room - 1):
            logits, g = s.draft(g if chained else hidden[c - 1:c], [drafts[-1]])
            drafts.append(int(np.argmax(logits[0])))
        a = 0
        while a < room and drafts[a] == toks[c + 1 + a]:
            a += 1
        drafted, accepted, c = drafted + room, accepted + a, c + 1 + a
    return drafted, accepted


@pytest.mark.parametrize("k", [2, 3])
def test_chained_drafts_are_the_mtp_modules_choice(tmp_path, k):
    """For k > 1 the engine chains the module on its own output state: its
    counts of drafts proposed and accepted equal a replay of that chain,
    on a construction whose drafter reads h (eh_proj = [I, 0.3 I]), where
    the old form (the last verified state fed again) gives other counts."""
    cfg = checkpoint.PRESETS["tiny_v3_mtp"]()
    cfg["max_position_embeddings"] = MAX_POS
    d = str(tmp_path)
    checkpoint.write_checkpoint(d, cfg, weights=_agreeing_weights(cfg, 0.1, h_mix=0.3))
    art = d + "/m.dsa"
    dsmlir.compile(d, art)
    prompt, n = [5, 9, 14, 3, 22], 150
    eng = dsmlir.Engine(art, d, num_pages=4, max_num_seqs=1, speculative=f"mtp:{k}")
    gen = eng.generate([prompt], n, ignore_eos=True)[0]["tokens"]
    stats = eng.stats()
    toks = prompt + gen
    drafted, accepted = _replay(art, d, toks, len(prompt), n, k)
    print(f"k={k}: engine {stats['spec_accepted_tokens']} of {stats['spec_draft_tokens']}, "
          f"chained replay {accepted} of {drafted}, "
          f"stale replay {_replay(art, d, toks, len(prompt), n, k, chained=False)}")
    assert 0.2 * drafted < accepted < drafted  # both outcomes happen
    assert (stats["spec_draft_tokens"], stats["spec_accepted_tokens"]) == (drafted, accepted)
    assert _replay(art, d, toks, len(prompt), n, k, chained=False) != (drafted, accepted)


def test_prefix_hit_copies_a_drafting_donors_rows(mtp, monkeypatch):
    """B arrives while A (same 140-token start) is still decoding with
    drafts: B's two cached pages come from A's session (main and MTP cache
    rows before the last prefix token; that token is run again for its
    hidden state), and both give the plain engine's greedy tokens."""
    ckpt, art = mtp
    rng = np.random.default_rng(5)
    shared = [int(t) for t in rng.integers(2, 64, 140)]
    requests = [(shared + [5, 6, 7], 40), ([3, 4], 1), (shared + [9, 8], 20)]

    def run(speculative):
        # max_num_seqs 2: B waits for the filler's slot, then finds A's pages.
        eng = dsmlir.Engine(art, ckpt, num_pages=8, max_num_seqs=2,
                            speculative=speculative)
        ids = [eng._e.add(p, n, 0.0, 1.0, 0, 0, [], True, None, False, True)
               for p, n in requests]
        tokens = {rid: [] for rid in ids}
        has_work = True
        while has_work:
            has_work, events = eng._e.step()
            for rid, token, _, _, _, _ in events:
                if token >= 0:
                    tokens[rid].append(token)
        return [tokens[r] for r in ids], eng.stats()

    # Speculating engines run a session per request; the plain one is put on
    # the same executor so that its prefix hit is a copy too (the compiled
    # step shares the pages instead, and copies nothing).
    monkeypatch.setenv("DSRT_ENGINE_EXECUTOR", "session")
    want, plain = run(None)
    assert plain["prefix_copied_tokens"] == 128
    for k in (1, 2):
        got, s = run(f"mtp:{k}")
        assert got == want, f"k={k}"
        assert s["spec_rounds"] > 0
        assert (s["prefix_copied_tokens"], s["prefix_recomputed_tokens"]) == (127, 1), s
