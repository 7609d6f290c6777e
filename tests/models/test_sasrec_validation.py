"""SASRec's validation cost controls: a fixed sample of validation users (``valid_users``) and
validation every k epochs (``eval_every``), and the sampled loss's gradients against the full
softmax's (pool and targets are embedded in one lookup)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _seq_data import cycle
from _torch_model_checks import one_torch_thread  # noqa: F401

from fusionrec.data import split
from fusionrec.evaluation.evaluator import Evaluator
from fusionrec.models.sequential.sasrec import SASRec, SASRecConfig, SASRecModule, validation_sample

SMALL = dict(embedding_dim=8, n_heads=2, n_layers=1, ffn_dim=16, max_len=4, dropout=0.0, attn_dropout=0.0)


def test_validation_sample_keeps_every_row_of_n_users() -> None:
    sp = split(cycle(n_users=20), "loo", seed=0)
    valid = sp.valid
    sub = validation_sample(valid, 7, seed=3)
    users = np.unique(sub.user_idx)
    assert len(users) == 7 and set(users) <= set(valid.user_idx)
    # every validation row of a kept user is kept, no other row
    np.testing.assert_array_equal(np.isin(valid.user_idx, users).sum(), sub.n_interactions)
    # the same seed draws the same users; another seed (almost surely) others
    np.testing.assert_array_equal(np.unique(validation_sample(valid, 7, seed=3).user_idx), users)
    assert not np.array_equal(np.unique(validation_sample(valid, 7, seed=4).user_idx), users)
    assert validation_sample(valid, None, seed=3) is valid
    assert validation_sample(valid, 20, seed=3) is valid  # not fewer than there are: all
    assert validation_sample(None, 5, seed=3) is None


def test_valid_users_early_stopping_sees_only_the_sample() -> None:
    """With one epoch the kept weights are the final ones, so the recorded validation metric
    must equal the metric of the fitted model on the sampled users (and not on all users)."""
    sp = split(cycle(n_users=30), "loo", seed=0)
    kw = dict(SMALL, epochs=1, batch_size=8, history_includes_valid=False, valid_users=5)
    m = SASRec(**kw).fit(sp.train, sp.valid, seed=11)
    got = m.history_.records[0]["valid_ndcg@10"]
    ev = Evaluator(metrics=("ndcg",), ks=(10,))
    want = ev.evaluate(m, validation_sample(sp.valid, 5, 11), exclude=(sp.train,))["ndcg@10"]
    every = ev.evaluate(m, sp.valid, exclude=(sp.train,))["ndcg@10"]
    assert got == pytest.approx(want, abs=1e-9)
    assert got != pytest.approx(every, abs=1e-9)


def test_eval_every_skips_the_right_epochs() -> None:
    """eval_every = 2 over 5 epochs validates after epochs 2, 4 and the last one (5) only."""
    sp = split(cycle(n_users=12), "loo", seed=0)
    m = SASRec(**SMALL, epochs=5, batch_size=8, eval_every=2, patience=0).fit(sp.train, sp.valid, seed=0)
    assert [r["epoch"] for r in m.history_.records if "valid_ndcg@10" in r] == [2, 4, 5]
    assert len(m.history_.records) == 5


def test_whole_catalogue_pool_has_the_full_softmax_gradients() -> None:
    """A uniform pool holding every item once (logQ = 0, the target's copy masked) gives the
    full softmax's loss and the same gradient on every parameter."""
    n = 6
    torch.manual_seed(0)
    full = SASRecModule(n, SASRecConfig(**SMALL)).eval()
    samp = SASRecModule(n, SASRecConfig(**SMALL, sampled_negatives=n)).eval()
    samp.load_state_dict(full.state_dict())
    inputs = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 1], [0, 0, 2, 5]])
    targets = torch.tensor([[0, 2, 3, 4], [5, 6, 1, 3], [0, 0, 5, 6]])
    full.rec_loss({"inputs": inputs, "targets": targets}).backward()
    pool = torch.arange(1, n + 1).repeat(3, 1)
    batch = {"inputs": inputs, "targets": targets, "neg_pool": pool, "neg_logq": torch.zeros(3, n)}
    samp.rec_loss(batch).backward()
    for (name, a), (_, b) in zip(full.named_parameters(), samp.named_parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, msg=name)
