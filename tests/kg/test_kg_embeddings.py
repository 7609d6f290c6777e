"""TransE / TransR on toy graphs with planted structure, and link-prediction metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.errors import ConfigError
from fusionrec.models.kg.kge import KGEmbeddings, link_prediction, split_triples, train_kge
from fusionrec.nn.kg import TransRModule, corrupt_triples, edge_softmax, kg_pair_loss
from fusionrec.testing import toy_dataset


def _composition_kg(n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """x_i -r0-> y_i -r1-> z_i and x_i -r2-> z_i (r2 = r0 + r1). The last two r2 triples are held out:
    only a model that learned the composition ranks their tail first."""
    x, y, z = np.arange(n), n + np.arange(n), 2 * n + np.arange(n)
    tr = [(x[i], 0, y[i]) for i in range(n)] + [(y[i], 1, z[i]) for i in range(n)]
    comp = [(x[i], 2, z[i]) for i in range(n)]
    return np.array(tr + comp[:-2]), np.array(comp[-2:])


def test_transe_recovers_planted_relation():
    train, held_out = _composition_kg()
    emb = train_kge(
        train,
        "transe",
        embedding_dim=16,
        epochs=150,
        seed=0,
        batch_size=16,
        lr=0.02,
        n_entities=36,
        n_relations=3,
    )
    e = emb.tail_energies(held_out[:, 0], held_out[:, 1])
    assert (e.argmin(1) == held_out[:, 2]).all()  # the held-out tail is ranked first
    m = link_prediction(emb, held_out, known=[train])
    assert m["mrr"] == 1.0 and m["hits@1"] == 1.0
    assert emb.entity.shape == (36, 16)
    np.testing.assert_allclose(np.linalg.norm(emb.entity, axis=1), 1.0, rtol=1e-5)


def test_transr_shapes_and_loss_decreases():
    train, _ = _composition_kg()
    emb = train_kge(
        train,
        "transr",
        embedding_dim=8,
        epochs=40,
        seed=0,
        batch_size=16,
        lr=0.02,
        rel_dim=4,
        n_entities=36,
        n_relations=3,
    )
    assert (
        emb.entity.shape == (36, 8) and emb.relation.shape == (3, 4) and emb.proj.shape == (3, 8, 4)
    )
    losses = [r["loss_kg"] for r in emb.history]
    assert losses[-1] < 0.5 * losses[0]
    assert emb.tail_energies(np.array([0, 1]), np.array([0, 0])).shape == (2, 36)
    m = link_prediction(emb, train)
    assert m["hits@10"] > 0.9


def test_kge_seeded_reproducible_and_on_dataset_kg():
    ds = toy_dataset()
    a = train_kge(ds.kg, "transe", embedding_dim=8, epochs=3, seed=1)
    b = train_kge(ds.kg, "transe", embedding_dim=8, epochs=3, seed=1)
    np.testing.assert_array_equal(a.entity, b.entity)
    assert a.entity.shape == (len(ds.kg.entities), 8)
    tr, te = split_triples(ds.kg, 0.2, seed=0)
    assert len(tr) + len(te) == ds.kg.n_triples and len(te) > 0


def test_kge_bad_input():
    with pytest.raises(ConfigError, match="method"):
        train_kge(np.array([[0, 0, 1]]), "distmult")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"\(n, 3\)"):
        train_kge(np.array([0, 1, 2]))


def test_link_prediction_hand_computed():
    class Fixed(KGEmbeddings):
        def tail_energies(self, h, r):  # entity 2 best, then 1, then 0
            return np.tile(np.array([3.0, 2.0, 1.0]), (len(h), 1))

    emb = Fixed("fixed", np.zeros((3, 1)), np.zeros((1, 1)))
    test = np.array([[0, 0, 2], [0, 0, 1], [1, 0, 0]])
    # (0,0,*) has true tails {2, 1}: the other is filtered -> both rank 1; (1,0,0) ranks 3
    m = link_prediction(emb, test, ks=(1, 3))
    assert m["mrr"] == pytest.approx((1 + 1 + 1 / 3) / 3)
    assert m["hits@1"] == pytest.approx(2 / 3) and m["hits@3"] == 1.0


def test_kg_losses_and_corruption():
    pos, neg = torch.tensor([0.5, 2.0]), torch.tensor([1.0, 1.0])
    assert kg_pair_loss(pos, neg, "margin", 1.0).item() == pytest.approx((0.5 + 2.0) / 2)
    assert kg_pair_loss(pos, neg, "softplus").item() == pytest.approx(
        float(np.mean(np.log1p(np.exp([-0.5, 1.0])))), rel=1e-6
    )
    h, t = np.arange(1000), np.arange(1000) + 5000
    h2, t2 = corrupt_triples(h, t, 10, np.random.default_rng(0))
    changed_h, changed_t = h2 != h, t2 != t
    assert not (changed_h & changed_t).any() and 0.4 < changed_h.mean() < 0.6
    m = TransRModule(5, 2, 4, 3)
    assert m.proj.shape == (2, 4, 3)


def test_edge_softmax_groups_by_destination():
    logits = torch.tensor([0.0, 0.0, 1.0, 5.0])
    dst = torch.tensor([0, 0, 1, 2])
    w = edge_softmax(logits, dst, 4)
    np.testing.assert_allclose(w.numpy(), [0.5, 0.5, 1.0, 1.0], rtol=1e-6)


def test_grouped_transr_projection_equals_per_row_matrices():
    """project_by_relation / transr_energy (one product per relation) give exactly what the
    per-row (B, d, d_r) gather gives, and so does its gradient."""
    from fusionrec.nn.kg import project_by_relation, transr_distance, transr_energy

    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g, requires_grad=True)
    t = torch.randn(50, 6, generator=g)
    r = torch.randint(0, 4, (50,), generator=g)
    proj = torch.randn(4, 6, 3, generator=g, requires_grad=True)
    rel = torch.randn(4, 3, generator=g)
    want = torch.bmm(x.unsqueeze(1), proj[r]).squeeze(1)
    got = project_by_relation(x, r, proj)
    torch.testing.assert_close(got, want)
    e_ref = transr_distance(x, rel[r], t, proj[r])
    e = transr_energy(x, r, t, rel, proj)
    torch.testing.assert_close(e, e_ref)
    gx_ref, gp_ref = torch.autograd.grad(e_ref.sum(), (x, proj))
    gx, gp = torch.autograd.grad(e.sum(), (x, proj))
    torch.testing.assert_close(gx, gx_ref)
    torch.testing.assert_close(gp, gp_ref)
    assert project_by_relation(x[:0], r[:0], proj).shape == (0, 3)
