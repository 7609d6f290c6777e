"""lm_mf: conformance, cold-item known answer, ad-hoc users, fine-tuning switches, search CLI."""

from __future__ import annotations

import numpy as np
import pytest
from _torch_model_checks import check_model

from fusionrec.models import get_model, load_model
from fusionrec.models.text.lm_mf import LMMF


def test_conformance(groups, tmp_path):
    ds, _, _ = groups
    check_model(LMMF, {"epochs": 3, "batch_size": 16, "device": "cpu"}, ds, tmp_path)


@pytest.mark.parametrize("fusion", ["gate"])
def test_cold_items_rank_for_textually_similar_users(groups, fusion):
    ds, cold_s, cold_r = groups
    m = get_model("lm_mf")(epochs=60, batch_size=16, lr=0.01, fusion=fusion, device="cpu").fit(
        ds, seed=0
    )
    cold = list(cold_s) + list(cold_r)
    s = m.score(ds.users.ids, cold)
    space_user = np.array([int(u[1:]) < 8 for u in ds.users.ids])
    best_is_space = s.argmax(1) < len(cold_s)
    # the best cold item is of the user's own taste group for (nearly) every user
    assert (best_is_space == space_user).mean() >= 0.9
    # the ID-only model cannot tell (a cold item's untrained ID is masked: all cold items tie)
    idonly = get_model("lm_mf")(
        epochs=60, batch_size=16, lr=0.01, use_text=False, device="cpu"
    ).fit(ds, seed=0)
    s0 = idonly.score(ds.users.ids, cold)
    assert ((s0.argmax(1) < len(cold_s)) == space_user).mean() <= 0.75


def test_ad_hoc_history_scores(groups):
    ds, cold_s, _ = groups
    m = get_model("lm_mf")(epochs=40, batch_size=16, lr=0.01, device="cpu").fit(ds, seed=0)
    hist = ds.items.to_idx(np.array(["s0", "s1"]))
    sc = m.score_histories([hist, np.zeros(0, np.int64)])
    assert sc.shape == (2, ds.n_items) and np.isfinite(sc).all()
    space = [i for i in range(ds.n_items) if ds.items.ids[i].startswith("s")]
    romance = [i for i in range(ds.n_items) if ds.items.ids[i].startswith("r")]
    assert sc[0, space].mean() > sc[0, romance].mean()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["top_n", "lora"])
def test_finetune_trains_the_right_parameters_and_saves(groups, tmp_path, mode):
    ds, _, _ = groups
    m = get_model("lm_mf")(
        epochs=1, batch_size=32, encoder_finetune=mode, encoder_top_n=1, live_items=4, device="cpu"
    )
    m.fit(ds, seed=0)
    enc = m.module_.bank.encoder
    trainable = [n for n, p in enc.module.named_parameters() if p.requires_grad]
    assert trainable
    if mode == "top_n":
        assert all(".encoder.layer.5." in n for n in trainable), trainable[
            :3
        ]  # MiniLM has 6 layers
        assert not any("embeddings" in n for n in trainable)
    else:
        assert all("lora_" in n for n in trainable)
    groups_ = m.module_.param_groups(1e-3)
    assert len(groups_) == 2 and groups_[1]["lr"] == m.config.encoder_lr
    m.save(tmp_path / "m")
    assert (
        tmp_path / "m" / "state.safetensors"
    ).stat().st_size < 20_000_000  # no base weights copied
    m2 = load_model(tmp_path / "m")
    np.testing.assert_allclose(m2.score(ds.users.ids[:3]), m.score(ds.users.ids[:3]), atol=1e-5)
    np.testing.assert_allclose(m2.encode_query("space"), m.encode_query("space"), atol=1e-5)


def test_search_cli_on_a_tiny_model(groups, tmp_path, capsys):
    from fusionrec.cli.main import main

    ds, _, _ = groups
    get_model("lm_mf")(epochs=2, batch_size=16, device="cpu").fit(ds, seed=0).save(tmp_path / "m")
    assert (
        main(
            ["search", "--model-dir", str(tmp_path / "m"), "-k", "3", "a love story and a wedding"]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.strip().startswith("│") and " r" in line]
    assert len(rows) == 3, out  # all three hits are romance items


def test_text_score_term_adds_beta_times_the_users_text_profile(groups, tmp_path):
    """score(u, i) = the fused MF score + β·⟨mean text of u's items, text of i⟩ with a fixed β
    (training unchanged); ad-hoc users get their history's mean text; survives save/load."""
    from fusionrec.models.text.toolkit import user_item_text

    ds, cold_s, cold_r = groups
    params = {"epochs": 20, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    base = get_model("lm_mf")(**params, text_score_weight=0.0).fit(ds, seed=0)
    m = get_model("lm_mf")(**params, text_score_weight=3.0).fit(ds, seed=0)
    ut, it = user_item_text(ds.item_embeddings["text"], m.seen_)
    want = base.score(ds.users.ids) + 3.0 * ut @ it.T
    np.testing.assert_allclose(m.score(ds.users.ids), want, atol=1e-4)
    hist = ds.items.to_idx(np.array(["s0", "s1"]))
    np.testing.assert_allclose(
        m.score_histories([hist])[0],
        base.score_histories([hist])[0] + 3.0 * it @ it[hist].mean(0),
        atol=1e-4,
    )
    m.save(tmp_path / "m")
    np.testing.assert_allclose(
        load_model(tmp_path / "m").score(ds.users.ids), m.score(ds.users.ids), atol=1e-5
    )


def test_learned_text_score_weight_moves_and_enters_the_scores(groups):
    from fusionrec.models.text.toolkit import user_item_text

    ds, _, _ = groups
    params = {"epochs": 10, "batch_size": 16, "lr": 0.01, "patience": 0, "device": "cpu"}
    m = get_model("lm_mf")(**params, text_score_weight=0.0, text_score_learned=True).fit(ds, seed=0)
    beta = float(m.module_.beta.detach())
    assert beta > 0.01  # trained up from 0: users' own texts predict their positives
    ut, it = user_item_text(ds.item_embeddings["text"], m.seen_)
    mf = m.module_.user.weight.detach().numpy() @ m.item_vectors().T
    np.testing.assert_allclose(
        m.score_indices(np.arange(ds.n_users)), mf + beta * ut @ it.T, atol=1e-4
    )


def test_text_initialised_ids_add_the_text_offsets_and_survive_save_load(groups, tmp_path):
    import torch

    from fusionrec.models.text.toolkit import text_id_offsets

    ds, _, _ = groups
    m = get_model("lm_mf")(epochs=2, batch_size=16, id_init="text", device="cpu").fit(ds, seed=0)
    mod = m.module_
    want = text_id_offsets(ds.item_embeddings["text"], m.seen_, 64, 0.1)
    np.testing.assert_allclose(mod.id_offset.numpy(), want, atol=1e-6)
    users = torch.arange(ds.n_users)
    np.testing.assert_allclose(
        mod.user_vecs(users).detach().numpy(),
        mod.user.weight.detach().numpy() + want[: ds.n_users],
        atol=1e-6,
    )
    m.save(tmp_path / "m")
    np.testing.assert_allclose(
        load_model(tmp_path / "m").score(ds.users.ids), m.score(ds.users.ids), atol=1e-5
    )
