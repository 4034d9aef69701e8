"""Rounding ties (ds_testing/rounding_ties.py): the reference lists the
values f32 may round to the other bf16 / fp8 neighbour, its GEMM inputs
keyed by the activation they are (one key for all the weights that read
it), and the search flips exactly the ties that explain a compiled run,
and cannot explain away a wrong weight."""
import numpy as np
import pytest

from ds_testing import checkpoint
from ds_testing.reference import (ReferenceModel, bf16_gemm_inputs, input_site,
                                  round_to_bf16)
from ds_testing.rounding_ties import TieBook, find_ties, resolve_ties, tie_order

TOKENS = [143, 154, 227, 285, 12, 44, 247, 284, 76, 94, 260, 128]


def test_ties_are_the_values_near_a_rounding_boundary():
    """find_ties lists exactly the values within the window of a bf16
    midpoint (or, truncating, of a bf16 value), with the other neighbour;
    the book records each with its distance and flips the ones asked."""
    mid = 1.0 + 2.0 ** -8  # halfway between the bf16 values 1 and 1 + 2^-7
    x = np.array([[mid * (1 + 3e-7), 1.5, mid * (1 - 3e-7)], [0.3, mid * (1 + 1e-4), 2.0]])
    store = lambda v: round_to_bf16(v)  # noqa: E731
    ties = find_ties(x, store(x), store, 1e-5)
    assert ties == [(0, 0, 1.0), (0, 2, 1.0 + 2.0 ** -7)]
    assert find_ties(x, store(x), store, 1e-7) == []
    trunc = lambda v: round_to_bf16(v, "truncate")  # noqa: E731
    assert [t[:2] for t in find_ties(np.array([[1.0 + 1e-7, 1.2]]),
                                     trunc(np.array([[1.0 + 1e-7, 1.2]])), trunc, 1e-5)] == [(0, 0)]

    book = TieBook({("L", 0, 2)})
    out = book.round(x, store(x), store, 1e-5, lambda t, j: ("L", t, j))
    assert [k for k, _ in book.ties] == [("L", 0, 0), ("L", 0, 2)]
    assert book.distance[("L", 0, 0)] == pytest.approx(3e-7, rel=1e-3)
    assert out[0, 0] == 1.0 + 2.0 ** -7  # above the midpoint: up, as stored
    assert out[0, 2] == 1.0 + 2.0 ** -7  # below it, flipped: up too
    assert (out[1] == store(x)[1]).all()


def test_search_flips_only_the_tie_that_explains_a_run():
    """Synthetic: two ties, the compiled run flipped the second; a wrong
    tie moves its row and all later ones."""
    class State:
        ties = [((0, 2, "c", 1), 0.0), ((1, 5, "k", 0), 0.0)]
    truth = {(1, 5, "k", 0)}

    def run(flips):
        rows = np.zeros((8, 3))
        for key in flips ^ truth:
            rows[key[1]:] += [1e-3, -2e-3, 5e-4]
        return State(), rows
    logits, _, flips = resolve_ties(run, np.zeros((8, 3)), 1e-4)
    assert flips == truth and np.abs(logits).max() == 0


def test_search_order_is_the_models():
    """A wrong row's own ties are measured first, nearest the boundary
    first, then by key, and only then the earlier positions' ties that can
    reach it: never in a set's order, which follows str hashes and so
    changed the search's result from one interpreter to the next."""
    keys = [(layer, 3, kind, col) for layer in (2, 0, 1) for kind in ("k", "c", "attn_in")
            for col in (7, 1)] + [(0, 1, "k", 4), (1, 2, "lm_head", 5)]
    distance = {k: 1e-6 if k[2] == "attn_in" else 1e-7 for k in keys}

    class State:
        ties = [(k, 0.0) for k in keys]
        local = {(1, 2, "lm_head", 5)}  # moves row 2 only: cannot explain row 3
    State.distance = distance
    tried = []

    def run(flips):
        tried.append(flips)
        rows = np.zeros((8, 2))
        rows[3:] = 1  # rows 3 on wrong, and no flip helps
        return State(), rows
    resolve_ties(run, np.zeros((8, 2)), 1e-4)
    firsts = [next(iter(f)) for f in tried[1:]]
    own = sorted((k for k in keys if k[1] == 3), key=lambda k: (distance[k], k))
    assert firsts == own + [(0, 1, "k", 4)]
    assert tie_order(State) == sorted(keys, key=lambda k: (k[1], distance[k], k))


def test_input_sites_group_the_weights_that_read_one_activation():
    assert input_site("model.layers.0.self_attn.q_a_proj.weight", 2) == (0, "attn_in")
    assert input_site("model.layers.0.self_attn.kv_a_proj_with_mqa.weight", 2) == (0, "attn_in")
    assert input_site("model.layers.3.self_attn.q_proj.weight", 4) == (3, "attn_in")
    assert input_site("model.layers.1.self_attn.q_b_proj.weight", 2) == (1, "self_attn.q_b_proj")
    assert input_site("model.layers.1.self_attn.o_proj.weight", 2) == (1, "self_attn.o_proj")
    for w in ("mlp.gate", "mlp.gate_proj", "mlp.up_proj", "mlp.experts.3.gate_proj",
              "mlp.experts.3.up_proj", "mlp.shared_experts.up_proj"):
        assert input_site(f"model.layers.1.{w}.weight", 2) == (1, "mlp_in"), w
    assert input_site("model.layers.1.mlp.experts.3.down_proj.weight", 2) == (
        1, "mlp.experts.3.down_proj")
    assert input_site("model.layers.1.mlp.down_proj.weight", 2) == (1, "mlp.down_proj")
    assert input_site("lm_head.weight", 2) == (2, "lm_head")


@pytest.fixture(scope="module")
def rounded_model():
    """ragged_v3 (experts, two layers, 128-wide blocks with ragged edges)
    with every GEMM input rounded to bf16, as the runtime's bf16 and FP8
    paths on avx512vbmi / AMX do."""
    cfg = checkpoint.PRESETS["ragged_v3"]()
    weights = checkpoint.random_weights(cfg, 0)
    rounded = bf16_gemm_inputs({n: "BF16" for n in weights})
    return ReferenceModel(cfg, weights, rounded)


def _runner(m, tokens, window=2e-5):
    def run(flips):
        book = TieBook(flips)
        m.input_tie_window, m.book = window, book
        try:
            return book, m.forward(tokens, 0, m.new_cache())
        finally:
            m.book = None
    return run


def test_gemm_input_ties_are_keyed_by_position_and_site(rounded_model):
    """A flipped GEMM input moves its own row and (through the cache) later
    ones, never earlier ones; the experts' inputs carry their tokens'
    positions, and the router's, experts' and shared experts' inputs one
    key between them."""
    m, run = rounded_model, _runner(rounded_model, TOKENS)
    book, base = run(frozenset())
    keys = {k for k, _ in book.ties}
    assert keys and all(0 <= k[1] < len(TOKENS) for k in keys)
    assert {k[2] for k in keys} >= {"attn_in", "mlp_in", "lm_head"}
    # mlp_in is read by the router, both experts of each token and the
    # shared expert: listed once per reading, one key.
    moe = [k for k, _ in book.ties if k[0] == 1 and k[2] == "mlp_in"]
    assert len(moe) > len(set(moe))
    for site, layer in (("attn_in", 0), ("lm_head", 2)):
        key = next(k for k in tie_order(book) if k[2] == site and k[0] == layer and k[1] > 0)
        _, moved = run(frozenset({key}))
        assert (moved[:key[1]] == base[:key[1]]).all()
        assert (moved[key[1]] != base[key[1]]).any()
        after = moved[key[1] + 1:] != base[key[1] + 1:]
        assert after.any() if site == "attn_in" else not after.any(), site
    assert m.book is None


def test_search_recovers_the_flips_of_a_run(rounded_model):
    """A 'compiled' run: the reference with three ties rounded the other
    way (a layer-0 input, whose row reaches later rows through the cache,
    an expert's input and an lm_head input) plus f32-sized noise. The search
    finds exactly those three and nothing else."""
    run = _runner(rounded_model, TOKENS)
    base = run(frozenset())[1]
    pick = frozenset()
    # Each pick among the ties of the run with the earlier picks flipped: a
    # flip moves the later values, and some leave their boundary.
    for kinds in (lambda k: k[0] == 0 and k[2] == "attn_in" and 0 < k[1] < 6,
                  lambda k: k[0] == 1 and k[2].startswith("mlp.experts") and 6 <= k[1] < 9,
                  lambda k: k[2] == "lm_head" and k[1] >= 9):
        book, now = run(pick)
        strongest = max((k for k in tie_order(book) if kinds(k)),
                        key=lambda k: np.abs(run(pick | {k})[1] - now).max())
        pick = pick | {strongest}
    _, compiled = run(pick)
    compiled = compiled + np.random.default_rng(0).normal(0, 1e-7, compiled.shape)
    assert np.abs(compiled - base).max() > 1e-3, "the flips must matter for the test to"
    logits, _, flips = resolve_ties(run, compiled, 1e-5)
    assert flips == pick
    assert np.abs(logits - compiled).max() < 1e-6


@pytest.mark.parametrize("bug", ["block scale", "swapped rows"])
def test_search_cannot_explain_a_wrong_weight(rounded_model, bug):
    """What ties cannot hide: a 'compiled' run with one 128x128 block of
    o_proj's weights 0.5% off (a wrong block scale), or two rows of
    down_proj swapped (a swapped tile), plus one real tie flip, stays past
    1e-4 after the search."""
    m = rounded_model
    run = _runner(m, TOKENS)
    book, _ = run(frozenset())
    flip = next(k for k in tie_order(book) if k[2] == "lm_head")
    saved = {n: m.w[n].copy() for n in ("model.layers.0.self_attn.o_proj.weight",
                                         "model.layers.0.mlp.down_proj.weight")}
    try:
        if bug == "block scale":
            m.w["model.layers.0.self_attn.o_proj.weight"][:128, :128] *= 1.005
        else:
            w = m.w["model.layers.0.mlp.down_proj.weight"]
            w[[5, 6]] = w[[6, 5]]
        _, compiled = run(frozenset({flip}))
    finally:
        m.w.update(saved)
    logits, _, _ = resolve_ties(run, compiled, 1e-4)
    assert np.abs(logits - compiled).max() > 1e-4
