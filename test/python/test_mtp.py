"""Multi-token prediction from Python: Session.prefill_hidden / draft
against the float64 reference (the same checks as check_mtp.py, through
the pybind module)."""
import numpy as np
import pytest

import dsmlir
from ds_testing import checkpoint
from ds_testing.reference import ReferenceModel


@pytest.fixture(scope="module")
def mtp(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("mtp"))
    checkpoint.write_checkpoint(d, checkpoint.tiny_v3_mtp())
    art = d + "/m.dsa"
    dsmlir.compile(d, art)
    return d, art


def test_draft_matches_reference(mtp):
    ckpt, art = mtp
    m = dsmlir.Model(art, ckpt)
    assert m.info["mtp_hidden_size"] == 32
    s = m.session()
    toks = [5, 9, 14, 3, 22, 40, 7, 2, 11]
    logits, hidden = s.prefill_hidden(toks)
    assert hidden.shape == (len(toks), 32) and logits.shape == (len(toks), 64)
    ref = ReferenceModel.load(ckpt)
    want_h = ref.forward_hidden(toks, 0, ref.new_cache())
    assert np.abs(hidden - want_h).max() < 1e-4
    calls = [s.draft(hidden[:4], toks[1:5]),
             *[s.draft(hidden[i:i + 1], toks[i + 1:i + 2]) for i in range(4, len(toks) - 1)]]
    draft = np.concatenate([c[0] for c in calls])
    out_h = np.concatenate([c[1] for c in calls])
    assert s.draft_position == len(toks) - 1
    want, want_out = ref.mtp_forward(hidden.astype(np.float64)[:-1], toks[1:], 0,
                                     ref.new_mtp_cache(), return_hidden=True)
    assert np.abs(draft - want).max() < 1e-4
    assert out_h.shape == (len(toks) - 1, 32)
    assert np.abs(out_h - want_out).max() < 1e-4
    s.reset()
    assert s.draft_position == 0 and s.position == 0


def test_draft_errors(mtp):
    ckpt, art = mtp
    s = dsmlir.Model(art, ckpt).session()
    with pytest.raises(ValueError, match=r"hidden must be \[2, 32\]"):
        s.draft(np.zeros((1, 32), np.float32), [3, 4])
    with pytest.raises(dsmlir.Error, match="next token id 64 at index 0 is out of range"):
        s.draft(np.zeros((1, 32), np.float32), [64])


@pytest.mark.parametrize("k", [2, 3])
def test_chained_drafts_match_reference(mtp, k):
    """k > 1 drafts chain the module on its own output state (as vLLM and
    SGLang do): draft j + 1 takes draft j's output state and drafted token,
    one position further. The compiled chain against the float64
    reference's, fed the same drafted tokens (teacher forcing)."""
    ckpt, art = mtp
    s = dsmlir.Model(art, ckpt).session()
    toks = [5, 9, 14, 3, 22, 40, 7, 2, 11]
    c = len(toks) - 1  # toks[c] plays the sampled token, not run yet
    _, hidden = s.prefill_hidden(toks[:c])
    # The verified pairs (h_i, t_{i+1}), i < c, in one call; the last row
    # is draft 1 (from h_{c-1} and the sampled token).
    logits, out_h = s.draft(hidden, toks[1:c + 1])
    rows, fed = [logits[-1]], []
    g = out_h[-1:]
    for _ in range(k - 1):
        fed.append(int(np.argmax(rows[-1])))
        logits, g = s.draft(g, [fed[-1]])
        rows.append(logits[0])
    assert s.draft_position == c + k - 1
    ref = ReferenceModel.load(ckpt)
    h64 = hidden.astype(np.float64)
    cache = ref.new_mtp_cache()
    ref.mtp_forward(h64[:c - 1], toks[1:c], 0, cache)
    want, want_fed = ref.mtp_chain(h64[c - 1], toks[c], c - 1, cache, k, drafted=fed)
    assert want_fed == fed
    assert np.abs(np.array(rows) - want).max() < 1e-4
    # Not the old form (drafts 2..k fed the last verified state again): the
    # test would catch it.
    stale = ref.new_mtp_cache()
    ref.mtp_forward(h64[:c - 1], toks[1:c], 0, stale)
    old = ref.mtp_forward(np.repeat(h64[c - 1:c], k, axis=0), [toks[c]] + fed, c - 1, stale)
    assert np.abs(old[1:] - want[1:]).max() > 1e-2
