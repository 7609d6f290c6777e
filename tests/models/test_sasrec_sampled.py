"""SASRec's sampled losses (sampled softmax with logQ, many-negatives BCE/gBCE, BPR over a pool):
known answers against the full softmax and hand-computed values, and a planted pattern learnt."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from _torch_model_checks import one_torch_thread  # noqa: F401

from fusionrec.data import Dataset
from fusionrec.models.sequential.sasrec import SASRec, SASRecConfig, SASRecModule

SMALL = dict(embedding_dim=8, n_heads=2, n_layers=1, ffn_dim=16, max_len=4, dropout=0.0, attn_dropout=0.0)


def _cycle(n_items: int = 12, n_users: int = 40, length: int = 9) -> Dataset:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(n_users):
        s = int(rng.integers(n_items))
        rows += [(f"u{u}", f"i{(s + t) % n_items}", float(t)) for t in range(length)]
    return Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]))


def test_a_pool_of_every_item_is_the_full_softmax() -> None:
    """Uniform pool = the whole catalogue once: logQ = log(N/n) = 0 and the target's copy in the
    pool is masked, so the sampled softmax equals the full one."""
    n = 7
    torch.manual_seed(0)
    full = SASRecModule(n, SASRecConfig(**SMALL)).eval()
    samp = SASRecModule(n, SASRecConfig(**SMALL, sampled_negatives=n)).eval()
    samp.load_state_dict(full.state_dict())
    inputs = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    targets = torch.tensor([[0, 2, 3, 4], [5, 6, 7, 1]])
    want = full.rec_loss({"inputs": inputs, "targets": targets})
    pool = torch.arange(1, n + 1).repeat(2, 1)
    got = samp.rec_loss(
        {"inputs": inputs, "targets": targets, "neg_pool": pool, "neg_logq": torch.zeros(2, n)}
    )
    torch.testing.assert_close(got, want)


def test_gbce_beta_known_answer() -> None:
    # alpha = N / (n_items - 1) = 4 / 8; beta = alpha * (t * (1 - 1/alpha) + 1/alpha)
    m = SASRecModule(9, SASRecConfig(**SMALL, loss="bce", sampled_negatives=4, gbce_t=0.75))
    assert m.gbce_beta == pytest.approx(0.5 * (0.75 * (1 - 2) + 2))  # 0.625
    plain = SASRecModule(9, SASRecConfig(**SMALL, loss="bce", sampled_negatives=4))
    assert plain.gbce_beta == pytest.approx(1.0)


def _two_d_module(loss: str, **kw) -> SASRecModule:
    m = SASRecModule(3, SASRecConfig(**{**SMALL, "embedding_dim": 2, "n_heads": 1}, loss=loss, **kw))
    with torch.no_grad():  # codes 1, 2, 3 -> (2, 0), (0, 1), (-1, 0)
        m.item_emb.weight[1:] = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    return m


def test_sampled_losses_hand_computed() -> None:
    h = torch.tensor([[1.0, 0.0]])  # one position; target code 1 -> pos logit 2
    tgt = torch.tensor([1])
    # pool codes 2, 3, 1: logits 0, -1, and the target itself (masked)
    neg = torch.tensor([[0.0, -1.0, 2.0]])
    hit = torch.tensor([[False, False, True]])
    logq = torch.tensor([[0.5, -0.5, 0.0]])
    ls = math.log
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    ce = _two_d_module("ce", sampled_negatives=3).sampled_loss(h, tgt, neg, hit, logq)
    # logits [2, 0 - 0.5, -1 + 0.5]
    z = [2.0, -0.5, -0.5]
    assert float(ce) == pytest.approx(-(2.0 - ls(sum(math.exp(v) for v in z))), rel=1e-6)
    bce_m = _two_d_module("bce", sampled_negatives=3, gbce_t=0.5)
    beta = bce_m.gbce_beta  # alpha = 3/2 capped at 1 -> beta = 1
    bce = bce_m.sampled_loss(h, tgt, neg, hit, logq)
    assert float(bce) == pytest.approx(-(beta * ls(sig(2)) + ls(sig(-0.0)) + ls(sig(1.0))), rel=1e-6)
    bpr = _two_d_module("bpr", sampled_negatives=3).sampled_loss(h, tgt, neg, hit, logq)
    assert float(bpr) == pytest.approx(-(ls(sig(2 - 0)) + ls(sig(2 + 1))) / 2, rel=1e-6)


def test_popularity_pool_carries_log_n_q() -> None:
    ds = _cycle(n_users=10)
    m = SASRec(**SMALL, epochs=1, sampled_negatives=5, negative_sampling="popularity")
    m.fit(ds, seed=0)  # after fit the pool state is dropped
    assert m.neg_cdf_ is None
    q = np.arange(1, ds.n_items + 1, dtype=np.float64)
    m.neg_q_ = q / q.sum()
    m.neg_cdf_ = np.cumsum(m.neg_q_)
    out = m._negative_pool(np.random.default_rng(0), 3)
    assert out["neg_pool"].shape == (3, 5) and out["neg_pool"].min() >= 1
    np.testing.assert_allclose(out["neg_logq"], np.log(5 * m.neg_q_[out["neg_pool"] - 1]), rtol=1e-6)
    m.neg_cdf_ = None  # uniform: log(N / n_items)
    np.testing.assert_allclose(
        m._negative_pool(np.random.default_rng(0), 3)["neg_logq"], np.log(5 / ds.n_items), rtol=1e-6
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"sampled_negatives": 4},
        {"sampled_negatives": 4, "negative_sampling": "popularity"},
        {"sampled_negatives": 4, "loss": "bce", "gbce_t": 0.75},
    ],
    ids=["ce-uniform", "ce-popularity", "gbce"],
)
def test_sampled_losses_learn_the_cycle(extra) -> None:
    """Item i is always followed by i+1 (mod 12): learnt from 4 sampled negatives per batch."""
    ds = _cycle()
    m = SASRec(
        embedding_dim=32, n_heads=2, n_layers=1, ffn_dim=64, max_len=10, dropout=0.1,
        attn_dropout=0.1, epochs=40, batch_size=16, lr=1e-2, **extra,
    ).fit(ds, seed=0)
    last = np.array([s[-1] for s in ds.sequences()])
    top = m.score_indices(np.arange(ds.n_users)).argmax(1)
    names = ds.items.ids
    want = [f"i{(int(names[i][1:]) + 1) % 12}" for i in last]
    assert np.mean(names[top] == np.array(want)) >= 0.9


def test_gbce_needs_sampled_bce() -> None:
    with pytest.raises(ValueError, match="gbce_t needs"):
        SASRecConfig(gbce_t=0.5, sampled_negatives=8)
    with pytest.raises(ValueError, match="gbce_t needs"):
        SASRecConfig(loss="bce", gbce_t=0.5)


def test_default_is_the_full_softmax() -> None:
    c = SASRecConfig()
    assert c.sampled_negatives == 0 and c.loss == "ce"
