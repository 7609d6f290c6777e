"""Malformed saved model folders give ModelStateError naming the file and the problem
(models/folder.py), and ensemble members stay inside their folder (issue 17 items 3 and 6)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from fusionrec.errors import ModelStateError
from fusionrec.models.base import load_model
from fusionrec.models.classic.ease import EASE
from fusionrec.models.composite.ensemble import Ensemble
from fusionrec.models.folder import check_model_folder, member_folder, nested_load, smoke_check


@pytest.fixture
def saved(tmp_path, tiny):
    return EASE(reg_weight=1.0).fit(tiny).save(tmp_path / "ease")


def _config(folder):
    return json.loads((folder / "config.json").read_text())


def test_a_sound_folder_passes(saved):
    meta = check_model_folder(saved)
    assert meta["model"] == "ease" and meta["n_items"] == 6
    smoke_check(load_model(saved), saved)


@pytest.mark.parametrize(
    "damage, needle",
    [
        (
            lambda d: (d / "state.safetensors").unlink(),
            r"state\.safetensors: missing \(a half-copied",
        ),
        (lambda d: (d / "users.npy").unlink(), r"users\.npy: missing"),
        (
            lambda d: (d / "config.json").write_text("[1, 2]"),
            r"config\.json: must hold a JSON object, got list",
        ),
        (
            lambda d: (d / "config.json").write_text('{"model": "ease", "par'),
            r"config\.json: not valid JSON",
        ),
        (
            lambda d: (d / "config.json").write_text('{"model": "ease", "params": []}'),
            r"'params' must be an object, got list",
        ),
        (lambda d: (d / "config.json").write_text('{"params": {}}'), r"lacks the model name"),
        (lambda d: shutil.rmtree(d) or d.mkdir(), r"config\.json missing"),
    ],
    ids=[
        "no-state",
        "no-users",
        "config-list",
        "config-json",
        "params-list",
        "no-name",
        "empty-folder",
    ],
)
def test_malformed_folders_name_file_and_problem(saved, damage, needle):
    damage(saved)
    with pytest.raises(ModelStateError, match=needle):
        load_model(saved)


def test_truncated_files(saved):
    st = saved / "state.safetensors"
    data = st.read_bytes()
    st.write_bytes(data[: len(data) - 40])
    with pytest.raises(
        ModelStateError, match=r"state\.safetensors: truncated: \d+ bytes of tensor data"
    ):
        load_model(saved)
    st.write_bytes(data[:5])
    with pytest.raises(ModelStateError, match="not even a header length"):
        load_model(saved)
    st.write_bytes(b"\xff" * 8 + data[8:])
    with pytest.raises(ModelStateError, match="truncated or corrupt: header of"):
        load_model(saved)
    st.write_bytes(data)
    it = saved / "items.npy"
    raw = it.read_bytes()
    it.write_bytes(raw[:-4])
    with pytest.raises(ModelStateError, match=r"items\.npy: truncated"):
        load_model(saved)
    it.write_bytes(b"not numpy at all")
    with pytest.raises(ModelStateError, match=r"items\.npy: not a valid \.npy file"):
        load_model(saved)


def test_ids_that_do_not_match_the_arrays(saved):
    np.save(saved / "items.npy", np.array(list("abcdefg")), allow_pickle=False)
    with pytest.raises(
        ModelStateError, match=r"items\.npy: holds 7 ids but config\.json says n_items=6"
    ):
        load_model(saved)
    meta = _config(saved)
    del meta["n_items"]
    (saved / "config.json").write_text(json.dumps(meta))
    with pytest.raises(
        ModelStateError, match=r"item_titles\.npy: has shape \(6,\), expected \(7,\)"
    ):
        load_model(saved)
    (saved / "item_titles.npy").unlink()
    with pytest.raises(ModelStateError, match=r"'_item_pop' has shape \(6,\), expected \(7,\)"):
        load_model(saved)
    np.save(saved / "items.npy", np.array([["a"]] * 6), allow_pickle=False)
    with pytest.raises(ModelStateError, match="must be a 1-D array of ids"):
        load_model(saved)


def test_pickled_ids_are_refused(saved):
    np.save(saved / "users.npy", np.array([object()] * 6, dtype=object), allow_pickle=True)
    with pytest.raises(ModelStateError, match=r"users\.npy: holds Python objects \(pickle\)"):
        load_model(saved)


def test_state_missing_a_model_array(saved):
    from safetensors.numpy import load_file, save_file

    st = load_file(str(saved / "state.safetensors"))
    del st["B"]
    save_file(st, str(saved / "state.safetensors"))
    with pytest.raises(
        ModelStateError, match=r"the saved state does not fit the model \(missing state array 'B'\)"
    ):
        load_model(saved)


def test_smoke_check_catches_weights_that_do_not_match_ids(saved):
    m = load_model(saved)
    m.B_ = m.B_[:, :4]
    with pytest.raises(ModelStateError, match=r"scores have shape \(1, 4\), expected \(1, 6\)"):
        smoke_check(m, saved)


# ----------------------------------------------------------------- ensemble member paths
@pytest.fixture
def ensemble_dir(tmp_path, tiny):
    ens = Ensemble(members=[{"name": "ease"}, {"name": "pop"}], weights=[0.5, 0.5]).fit(tiny)
    return ens.save(tmp_path / "ens")


def test_ensemble_round_trip(ensemble_dir):
    m = load_model(ensemble_dir)
    assert [x.name for x in m.members_] == ["ease", "pop"]


def test_member_name_with_dotdot_is_refused(tmp_path, ensemble_dir, tiny):
    EASE().fit(tiny).save(tmp_path / "elsewhere")
    meta = _config(ensemble_dir)
    meta["params"]["members"][0]["name"] = "../../elsewhere"
    (ensemble_dir / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ModelStateError, match="is not a plain name"):
        load_model(ensemble_dir)


def test_member_symlink_and_cycles_are_refused(ensemble_dir):
    member = ensemble_dir / "members" / "0-ease"
    shutil.rmtree(member)
    os.symlink(ensemble_dir, member)  # the ensemble as its own member: a cycle
    with pytest.raises(ModelStateError, match="may not be symbolic links"):
        load_model(ensemble_dir)
    with nested_load(ensemble_dir):
        with pytest.raises(ModelStateError, match="cycle"):
            with nested_load(ensemble_dir / "."):
                pass


def test_member_holding_another_model_is_refused(tmp_path, ensemble_dir, tiny):
    from fusionrec.models.classic.pop import Pop

    shutil.rmtree(ensemble_dir / "members" / "0-ease")
    Pop().fit(tiny).save(ensemble_dir / "members" / "0-ease")
    with pytest.raises(ModelStateError, match="holds a 'pop' model, the config names 'ease'"):
        load_model(ensemble_dir)


def test_member_folder_rules(tmp_path):
    assert member_folder(tmp_path, "members", "0-ease") == tmp_path / "members" / "0-ease"
    for bad in ("..", "", "a/b", "/etc", "a\\b"):
        with pytest.raises(ModelStateError):
            member_folder(tmp_path, "members", bad)
