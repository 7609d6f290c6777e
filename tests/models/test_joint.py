"""The joint X/Y/Z/W model: each loss term logged, sources ablation, the text path ranking cold
items (known answer), fine-tuned encoder round trip, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fusionrec.errors import ConfigError
from fusionrec.models import get_model
from fusionrec.testing import toy_dataset

pytest.importorskip("sentence_transformers")

_FAST = {"epochs": 2, "batch_size": 64, "embedding_dim": 8, "rel_dim": 4, "patience": 0}
PRIOR = {"text": "prior", "user": "prior"}


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _fit(ds, **params):
    return get_model("joint")(**{**_FAST, **params}).fit(ds, seed=0)


def test_every_term_is_logged_and_weight_zero_drops_it():
    ds = toy_dataset()
    m = _fit(ds)
    rec = m.history_.records[-1]
    for term in ("rec", "user", "text", "kg", "reg"):
        assert rec[f"loss_{term}"] > 0, term
    m0 = _fit(ds, loss_weights={"kg": 0.0, "user": 0.0})
    rec0 = m0.history_.records[-1]
    assert "loss_kg" not in rec0 and "loss_user" not in rec0 and "loss_text" in rec0
    assert m0.module_.has_kg and m0.module_.user_feats is not None  # sources kept in the score


def test_sources_remove_parts_from_the_model():
    ds = toy_dataset()
    m = _fit(ds, sources=[])
    mod = m.module_
    assert mod.bank is None and mod.user_feats is None and not mod.has_kg
    assert set(k[5:] for k in m.history_.records[-1] if k.startswith("loss_")) == {"rec", "reg"}
    s = m.score(ds.users.ids[:3])
    assert s.shape == (3, ds.n_items) and np.isfinite(s).all()


def test_text_path_ranks_cold_items_by_their_text():
    from _lm_data import make_groups

    ds, cold_s, cold_r = make_groups()
    m = get_model("joint")(
        sources=["text"], epochs=40, batch_size=16, embedding_dim=16, lr=0.02, patience=0,
        loss_weights={"text": 1.0},
    ).fit(ds, seed=0)  # fmt: skip
    cols = ds.items.to_idx(np.array(cold_s + cold_r))
    sc = m.score(ds.users.ids)[:, cols]
    half = ds.n_users // 2
    space_users = sc[:half, :2].mean() > sc[:half, 2:].mean()
    romance_users = sc[half:, 2:].mean() > sc[half:, :2].mean()
    assert space_users and romance_users


def test_save_load_equal_scores(tmp_path):
    from fusionrec.models import load_model

    ds = toy_dataset()
    m = _fit(ds)
    m.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    np.testing.assert_allclose(back.score(ds.users.ids[:5]), m.score(ds.users.ids[:5]), atol=1e-5)


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_finetuned_encoder_trains_and_round_trips(tmp_path, mode):
    from fusionrec.models import load_model

    ds = toy_dataset()
    m = _fit(
        ds, sources=["text"], epochs=1, batch_size=256, encoder_finetune=mode, lora_r=2,
        live_items=4, encoder_lr=1e-3,
    )  # fmt: skip
    bank = m.module_.bank
    assert bank.finetuning
    state = bank.trainable_state()
    if mode == "lora":
        assert state and all("lora_" in k for k in state)
    else:
        assert any("embeddings" in k for k in state)  # every weight trains
    m.save(tmp_path / mode)
    back = load_model(tmp_path / mode)
    np.testing.assert_allclose(back.score(ds.users.ids[:4]), m.score(ds.users.ids[:4]), atol=1e-4)
    q = back.encode_query("space")
    np.testing.assert_allclose(q, m.encode_query("space"), atol=1e-4)


def test_missing_parts_are_named():
    import dataclasses

    ds = toy_dataset()
    with pytest.raises(ConfigError, match="no user features"):
        _fit(dataclasses.replace(ds, user_features=None))
    with pytest.raises(ConfigError, match="no knowledge graph"):
        _fit(dataclasses.replace(ds, kg=None), sources=["kg"])
    with pytest.raises(ValueError, match="unknown loss term"):
        get_model("joint")(loss_weights={"image": 1.0})
    with pytest.raises(ValueError, match="sources"):
        get_model("joint")(sources=["image"])


# ---- fusion modes: a source in "prior" mode stays out of a warm row's score and is the mean of
# the ID vector's prior (the ``prior`` term); cold items are scored by it


def test_prior_sources_stay_out_of_warm_scores():
    ds = toy_dataset()
    m = _fit(ds, fusion=PRIOR)
    mod = m.module_
    assert mod.prior == {"text", "user"}
    rec = m.history_.records[-1]
    assert rec["loss_prior"] > 0 and "loss_reg" not in rec  # every row has a prior: no L2 to 0
    users = torch.arange(5)
    with torch.no_grad():
        ent = mod.entity(mod.item_entity)
        want = (mod.user(users) @ (mod.item.weight + ent).T).numpy()  # ID + entity (kg adds)
        mod.text_proj.weight.mul_(7.0)  # text and features out of the score: nothing changes
        for p in mod.user_feats.parameters():
            p.add_(1.0)
        mod._cache = None
    np.testing.assert_allclose(m.score(ds.users.ids[:5]), want, rtol=1e-5, atol=1e-5)


def test_prior_term_known_answer():
    """ID rows constant c, prior mean 0 (text projection 0) -> prior = w·0.5·(2n·d·c²)/n = w·d·c²;
    users without a prior (user features "add", all 0) and ID rows a -> reg = w_r·0.5·d·a²."""
    ds = toy_dataset()
    w, wr, d = 0.5, 0.2, 8
    m = _fit(ds, sources=["text", "user"], fusion={"text": "prior"}, loss_weights={"prior": w, "reg": wr, "text": 0.0, "user": 0.0})
    mod = m.module_.train()
    with torch.no_grad():
        mod.item.weight.fill_(0.3)
        mod.user.weight.fill_(0.2)
        mod.text_proj.weight.zero_()
        for p in mod.user_feats.parameters():
            p.zero_()
    batch = {"user": torch.tensor([0, 1, 2]), "pos": torch.tensor([0, 1, 2]), "neg": torch.tensor([3, 4, 5])}
    out = mod.loss(batch)
    assert set(out) == {"rec", "reg", "prior"}
    assert out["prior"].item() == pytest.approx(w * d * 0.3**2, rel=1e-5)
    assert out["reg"].item() == pytest.approx(wr * 0.5 * d * 0.2**2, rel=1e-5)
    assert out["rec"].item() == pytest.approx(float(np.log(2.0)), rel=1e-5)  # equal scores: -log σ(0)


def test_add_mode_is_unchanged_by_the_prior_weight():
    ds = toy_dataset()
    a = _fit(ds)
    b = _fit(ds, loss_weights={"prior": 5.0})  # no source in prior mode: the term never runs
    assert "loss_prior" not in b.history_.records[-1]
    np.testing.assert_allclose(a.score(ds.users.ids[:4]), b.score(ds.users.ids[:4]), atol=1e-6)


def test_prior_mode_scores_cold_items_by_their_text():
    from _lm_data import make_groups

    ds, cold_s, cold_r = make_groups()
    m = get_model("joint")(
        sources=["text"], fusion={"text": "prior"}, epochs=40, batch_size=16, embedding_dim=16,
        lr=0.02, patience=0, loss_weights={"text": 1.0},
    ).fit(ds, seed=0)  # fmt: skip
    cols = ds.items.to_idx(np.array(cold_s + cold_r))
    sc = m.score(ds.users.ids)[:, cols]
    half = ds.n_users // 2
    assert sc[:half, :2].mean() > sc[:half, 2:].mean()
    assert sc[half:, 2:].mean() > sc[half:, :2].mean()


def test_bad_fusion_is_named():
    with pytest.raises(ValueError, match="fusion"):
        get_model("joint")(fusion={"image": "prior"})
    with pytest.raises(ValueError, match="fusion"):
        get_model("joint")(fusion={"text": "mix"})
