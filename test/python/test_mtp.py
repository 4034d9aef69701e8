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
    draft = np.concatenate([s.draft(hidden[:4], toks[1:5]),
                            *[s.draft(hidden[i:i + 1], toks[i + 1:i + 2])
                              for i in range(4, len(toks) - 1)]])
    assert s.draft_position == len(toks) - 1
    want = ref.mtp_forward(hidden.astype(np.float64)[:-1], toks[1:], 0, ref.new_mtp_cache())
    assert np.abs(draft - want).max() < 1e-4
    s.reset()
    assert s.draft_position == 0 and s.position == 0


def test_draft_errors(mtp):
    ckpt, art = mtp
    s = dsmlir.Model(art, ckpt).session()
    with pytest.raises(ValueError, match=r"hidden must be \[2, 32\]"):
        s.draft(np.zeros((1, 32), np.float32), [3, 4])
    with pytest.raises(dsmlir.Error, match="next token id 64 at index 0 is out of range"):
        s.draft(np.zeros((1, 32), np.float32), [64])
