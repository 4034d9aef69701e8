"""dsmlir.Engine on a real compiled test checkpoint: every request of a
mixed batch (chunked prefills, decodes, different lengths, pages crossed, a
preempted and recomputed request, a prefix-cache hit) gets the logits of
the same request run alone, and the float64 reference's. The artifact has
@step, so the engine runs each step as one compiled call over its page pool
(StepExecutor); the batch tests run again with DSRT_ENGINE_EXECUTOR=session
(the session-per-request executor older artifacts use)."""
import numpy as np
import pytest

import dsmlir
from ds_testing import checkpoint
from ds_testing.reference import reference_logits

MAX_POS = 256


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("eng_ckpt")
    cfg = checkpoint.PRESETS["tiny_v3"]()
    cfg["max_position_embeddings"] = MAX_POS  # room for several 64-token pages
    checkpoint.write_checkpoint(str(d), cfg)
    return str(d)


@pytest.fixture(scope="module")
def artifact(ckpt, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("eng_art") / "m.dsa")
    dsmlir.compile(ckpt, path)
    return path


def _prompts():
    rng = np.random.default_rng(5)
    shared = [int(t) for t in rng.integers(2, 64, 140)]
    return [
        [int(t) for t in rng.integers(2, 64, 130)],   # chunked, crosses pages
        [int(t) for t in rng.integers(2, 64, 7)],
        [int(t) for t in rng.integers(2, 64, 70)],
        shared + [5, 6, 7],                           # computes the shared pages
        [int(t) for t in rng.integers(2, 64, 33)],
        shared + [9, 8],                              # a prefix-cache hit
    ]


@pytest.fixture(params=["step", "session"])
def executor(request, monkeypatch):
    monkeypatch.setenv("DSRT_ENGINE_EXECUTOR", request.param)
    return request.param


def _check_executor(eng, executor):
    calls = eng.stats()["step_calls"]
    assert (calls > 0) if executor == "step" else (calls == 0)


def test_mixed_batch_matches_solo_runs_and_the_reference(ckpt, artifact, executor):
    prompts = _prompts()
    rng = np.random.default_rng(6)
    forced = [[int(t) for t in rng.integers(2, 64, n)] for n in (12, 70, 20, 5, 40, 9)]
    model = dsmlir.Model(artifact, ckpt)
    solo = [model.generate(p, force_tokens=f, capacity=MAX_POS)["logits"]
            for p, f in zip(prompts, forced)]

    # 4 pages hold 256 tokens; together the requests need far more, and the
    # budget of 48 tokens chunks every long prompt.
    eng = dsmlir.Engine(artifact, ckpt, num_pages=4, max_num_seqs=4,
                        max_num_batched_tokens=48)
    # Request 3 first alone, so request 5 finds its pages cached.
    first = eng.generate([prompts[3]], force_tokens=[forced[3]], token_logits=True)
    rest = [5, 0, 1, 2, 4]  # 5 first: admitted before others evict the cached pages
    outs = eng.generate([prompts[i] for i in rest], force_tokens=[forced[i] for i in rest],
                        return_logits=False, token_logits=True)
    got = dict(zip(rest, outs))
    got[3] = first[0]
    stats = eng.stats()
    assert stats["preemptions"] > 0
    assert stats["prefix_hit_tokens"] >= 128
    assert got[5]["prefix_hit_tokens"] == 128
    assert stats["pages_used"] == 0 and stats["running"] == 0 and stats["waiting"] == 0
    _check_executor(eng, executor)
    if executor == "step":  # the shared pages hold the latents: no work
        assert stats["prefix_copied_tokens"] == 0
        assert stats["prefix_recomputed_tokens"] == 0

    for i, p in enumerate(prompts):
        o = got[i]
        assert o["tokens"] == forced[i] and o["finish_reason"] == "length"
        # The row each fed token came from = solo rows len(p)-1 ... end-1.
        want = solo[i][len(p) - 1:len(p) - 1 + len(forced[i])]
        err = np.abs(o["token_logits"] - want).max()
        assert err < 1e-5, f"request {i}: {err}"  # measured ~2e-6
        ref = reference_logits(ckpt, p + forced[i])[len(p) - 1:-1]
        assert np.abs(o["token_logits"] - ref).max() < 1e-5, f"request {i} vs reference"


def test_return_logits_rows_match_ds_run_convention(ckpt, artifact, executor):
    prompts = _prompts()[:3]
    forced = [[3, 4, 5], [6] * 66, [7, 8]]  # request 1 crosses a page while decoding
    model = dsmlir.Model(artifact, ckpt)
    eng = dsmlir.Engine(artifact, ckpt, num_pages=5, max_num_seqs=3,
                        max_num_batched_tokens=40)
    outs = eng.generate(prompts, force_tokens=forced, return_logits=True)
    _check_executor(eng, executor)
    for p, f, o in zip(prompts, forced, outs):
        solo = model.generate(p, force_tokens=f, capacity=MAX_POS)["logits"]
        assert o["logits"].shape == (len(p) + len(f), solo.shape[1])
        assert np.abs(o["logits"] - solo).max() < 1e-5
        ref = reference_logits(ckpt, p + f)
        assert np.abs(o["logits"] - ref).max() < 1e-5


def test_prompt_logprobs_score_each_prompt_token(ckpt, artifact, executor):
    prompts = _prompts()[:3] + [[9]]
    eng = dsmlir.Engine(artifact, ckpt, num_pages=5, max_num_seqs=3,
                        max_num_batched_tokens=7)  # prompts in several chunks
    outs = eng.generate(prompts, max_new_tokens=2, prompt_logprobs=True)
    _check_executor(eng, executor)
    for p, o in zip(prompts, outs):
        lp = o["prompt_logprobs"]
        assert len(lp) == len(p) and lp[0] is None
        if len(p) == 1:
            continue
        # Row t of the float64 reference scores prompt token t + 1.
        ref = reference_logits(ckpt, p)[:-1].astype(np.float64)
        ref = ref - ref.max(axis=1, keepdims=True)
        ref = ref - np.log(np.exp(ref).sum(axis=1, keepdims=True))
        want = ref[np.arange(len(p) - 1), p[1:]]
        assert np.abs(np.array(lp[1:]) - want).max() < 1e-5
    # The same prompt as a plain request: the same tokens (prompt logprobs
    # change nothing else).
    plain = eng.generate(prompts, max_new_tokens=2)
    assert [o["tokens"] for o in plain] == [o["tokens"] for o in outs]


def test_greedy_and_seeded_sampling_match_solo_generate(ckpt, artifact):
    prompts = _prompts()[:4]
    model = dsmlir.Model(artifact, ckpt)
    eng = dsmlir.Engine(artifact, ckpt, kv_cache_bytes=8 * 64 * model.info["kv_cache_bytes_per_token"])
    for temperature in (0.0, 1.0):
        outs = eng.generate(prompts, max_new_tokens=10, temperature=temperature, seed=3,
                            ignore_eos=True)
        for p, o in zip(prompts, outs):
            # dsrt_generate stops after eos; compare up to its length.
            want = model.generate(p, 10, temperature=temperature, seed=3,
                                  capacity=MAX_POS)["tokens"]
            assert o["tokens"][:len(want)] == want


def test_streaming_and_stats(ckpt, artifact):
    eng = dsmlir.Engine(artifact, ckpt, num_pages=8)
    events = list(eng.stream([[5, 6, 7], [8, 9]], max_new_tokens=3, ignore_eos=True))
    by_prompt = {0: [], 1: []}
    for ev in events:
        by_prompt[ev["prompt_index"]].append(ev)
    for evs in by_prompt.values():
        assert [e["token"] is None for e in evs] == [False, False, False, True]
        assert evs[-1]["finish_reason"] == "length"
        assert all(a["time"] <= b["time"] for a, b in zip(evs, evs[1:]))
    s = eng.stats()
    # Prompts in one step, then one step per further token: 3 steps.
    assert s["finished_requests"] == 2 and s["steps"] == 3
    assert s["tokens_per_step"] > 1  # the two requests shared steps
    assert s["pages_total"] == 8 and s["page_tokens"] == 64


def test_errors(ckpt, artifact):
    model_info = dsmlir.Model(artifact, ckpt).info
    per_page = 64 * model_info["kv_cache_bytes_per_token"]
    with pytest.raises(dsmlir.Error, match="cannot hold one request of max_model_len 256"):
        dsmlir.Engine(artifact, ckpt, kv_cache_bytes=3 * per_page)
    eng = dsmlir.Engine(artifact, ckpt, num_pages=4)
    with pytest.raises(dsmlir.Error, match=r"prompt of 257 tokens exceeds max_model_len \(256\)"):
        eng.generate([[1, 2], [3] * 257])
    with pytest.raises(dsmlir.Error, match=r"token id 64 at index 1 is out of range \[0, 64\)"):
        eng.generate([[1, 64]])
    with pytest.raises(dsmlir.Error, match=r"top_p must be in \(0, 1\]"):
        eng.generate([[1, 2]], top_p=0.0)
    with pytest.raises(dsmlir.Error, match="temperature must be"):
        eng.generate([[1, 2]], temperature=-1.0)
    # Nothing of the refused batch stayed; the engine serves on.
    assert eng.stats()["running"] == 0 and eng.stats()["waiting"] == 0
    out = eng.generate([[1, 2, 3]], max_new_tokens=2, ignore_eos=True)
    assert len(out[0]["tokens"]) == 2


def test_stop_tokens_top_k_and_leaving_a_stream_early(ckpt, artifact):
    eng = dsmlir.Engine(artifact, ckpt, num_pages=8)
    free = eng.generate([[5, 6, 7]], max_new_tokens=4, ignore_eos=True)[0]["tokens"]
    out = eng.generate([[5, 6, 7]], max_new_tokens=4, stop_token_ids=[free[1]],
                       ignore_eos=True)[0]
    assert out["finish_reason"] == "stop" and out["tokens"] == free[:free.index(free[1]) + 1]
    # top_k 1 is greedy whatever the temperature.
    assert eng.generate([[5, 6, 7]], max_new_tokens=4, temperature=5.0, top_k=1,
                        ignore_eos=True)[0]["tokens"] == free
    stream = eng.stream([[1, 2, 3], [4, 5]], max_new_tokens=20, ignore_eos=True)
    next(stream)
    stream.close()  # the consumer leaves: the rest is aborted, pages freed
    s = eng.stats()
    assert s["running"] == 0 and s["waiting"] == 0 and s["pages_used"] == 0


def test_logits_processing(ckpt, artifact):
    eng = dsmlir.Engine(artifact, ckpt, num_pages=8)
    free = eng.generate([[5, 6, 7]], max_new_tokens=4, ignore_eos=True)[0]["tokens"]
    # A bias of +100 makes a token every choice; -100 bans the greedy one.
    forced = eng.generate([[5, 6, 7]], max_new_tokens=4, ignore_eos=True,
                          logit_bias={17: 100})[0]["tokens"]
    assert forced == [17, 17, 17, 17]
    banned = eng.generate([[5, 6, 7]], max_new_tokens=4, ignore_eos=True,
                          logit_bias={free[0]: -100})[0]["tokens"]
    assert banned[0] != free[0]
    # min_p 1 keeps only the best token: greedy at any temperature.
    hot = eng.generate([[5, 6, 7]], max_new_tokens=4, ignore_eos=True, temperature=1.5,
                       seed=3)[0]["tokens"]
    assert hot != free
    assert eng.generate([[5, 6, 7]], max_new_tokens=4, ignore_eos=True, temperature=1.5,
                        seed=3, min_p=1.0)[0]["tokens"] == free
    # A token forced by its bias, then penalised for appearing: it does not
    # stay the choice.
    pen = eng.generate([[5, 6, 7]], max_new_tokens=4, ignore_eos=True,
                       logit_bias={17: 3.0}, frequency_penalty=2.0,
                       presence_penalty=2.0)[0]["tokens"]
    lifted = eng.generate([[5, 6, 7]], max_new_tokens=4, ignore_eos=True,
                          logit_bias={17: 3.0})[0]["tokens"]
    assert lifted.count(17) > pen.count(17)
    with pytest.raises(dsmlir.Error, match="presence_penalty"):
        eng.generate([[5, 6, 7]], max_new_tokens=2, presence_penalty=3.0)
    with pytest.raises(dsmlir.Error, match="logit_bias token id"):
        eng.generate([[5, 6, 7]], max_new_tokens=2, logit_bias={10**6: 1.0})


def test_prefix_hit_copies_a_live_sessions_rows(ckpt, artifact, monkeypatch):
    """Session executor: B arrives while A (same 140-token start) is still
    running: its two cached pages are copied from A's session, not
    recomputed."""
    monkeypatch.setenv("DSRT_ENGINE_EXECUTOR", "session")
    shared = _prompts()[3][:140]
    a, filler, b = shared + [5, 6, 7], [3, 4], shared + [9, 8]
    fa, ff, fb = [7] * 20, [8], [int(t) for t in np.arange(10, 19)]
    model = dsmlir.Model(artifact, ckpt)
    # max_num_seqs 2: B waits for the filler's slot, then finds A's pages.
    eng = dsmlir.Engine(artifact, ckpt, num_pages=8, max_num_seqs=2)
    outs = eng.generate([a, filler, b], force_tokens=[fa, ff, fb], token_logits=True)
    s = eng.stats()
    assert outs[2]["prefix_hit_tokens"] == 128
    assert s["prefix_copied_tokens"] == 128 and s["prefix_recomputed_tokens"] == 0
    for p, f, o in ((a, fa, outs[0]), (b, fb, outs[2])):
        solo = model.generate(p, force_tokens=f, capacity=MAX_POS)["logits"]
        assert np.abs(o["token_logits"] - solo[len(p) - 1:-1]).max() < 1e-5


def test_step_executor_errors(ckpt, artifact, monkeypatch):
    monkeypatch.setenv("DSRT_ENGINE_EXECUTOR", "fast")
    with pytest.raises(dsmlir.Error, match="DSRT_ENGINE_EXECUTOR must be step or session, got 'fast'"):
        dsmlir.Engine(artifact, ckpt, num_pages=4)


def test_follow_and_close_on_one_rank(ckpt, artifact):
    # A model of one rank: rank 0 of 1; there is no engine to follow.
    eng = dsmlir.Engine(artifact, ckpt, num_pages=4)
    assert eng.rank == 0 and eng.world_size == 1
    with pytest.raises(dsmlir.Error, match="is not partitioned"):
        eng.follow()
    with eng:
        assert len(eng.generate([[1, 2]], max_new_tokens=1, ignore_eos=True)[0]["tokens"]) == 1
    with pytest.raises(dsmlir.Error, match="the engine is closed"):
        eng.generate([[1, 2]], max_new_tokens=1)


def test_priority_scheduling(ckpt, artifact):
    prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
    eng = dsmlir.Engine(artifact, ckpt, num_pages=8, max_num_seqs=1,
                        scheduling_policy="priority")
    order = []
    for ev in eng.stream(prompts, max_new_tokens=3, ignore_eos=True, priority=[2, 0, 1]):
        if ev["token"] is not None and ev["prompt_index"] not in order:
            order.append(ev["prompt_index"])
    assert order == [1, 2, 0]  # one seat: lower priority values first
    # The answers are the ones each prompt gets alone.
    solo = dsmlir.Engine(artifact, ckpt, num_pages=8)
    both = eng.generate(prompts, max_new_tokens=3, ignore_eos=True, priority=5)
    assert [o["tokens"] for o in both] == [
        o["tokens"] for o in solo.generate(prompts, max_new_tokens=3, ignore_eos=True)]
    with pytest.raises(dsmlir.Error, match="needs priority scheduling"):
        solo.generate([[1, 2]], priority=1)
    with pytest.raises(ValueError, match="scheduling_policy"):
        dsmlir.Engine(artifact, ckpt, num_pages=8, scheduling_policy="lifo")
