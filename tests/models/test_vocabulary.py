"""One hyperparameter vocabulary: every deprecated name maps to today's name with a
DeprecationWarning (Python calls, YAML configs, saved folders), and no model config uses an
old name as a field."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from fusionrec.config import vocabulary
from fusionrec.errors import ConfigError
from fusionrec.models import load_model
from fusionrec.models.registry import get_model, list_models
from fusionrec.testing import toy_dataset

ALIASES = [(i.name, old, new) for i in list_models() for old, new in i.cls.Config.aliases().items()]
DEPRECATED = {old for _, old, _ in ALIASES}


def _other_value(field):
    """A valid value of ``field`` different from its default."""
    default = field.get_default(call_default_factory=True)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default * 2 if default < 2048 else default // 2
    if isinstance(default, tuple):
        return (7,)
    if isinstance(default, list):
        return [7]
    raise AssertionError(f"no test value for {field!r}")


def test_every_renamed_model_is_in_the_table():
    expected = {"embedding_size", "dim", "hidden_size", "hidden_dim", "id_dim", "mf_embedding_size",
                "mlp_embedding_size", "mlp_hidden_size", "hidden", "layers", "inner_size",
                "tower_hidden", "cold_neighbors", "n_negatives"}  # fmt: skip
    assert DEPRECATED == expected
    for name in expected:
        assert f"\n{name} " in vocabulary.__doc__, f"{name} missing from the vocabulary table"


@pytest.mark.parametrize("model, old, new", ALIASES, ids=[f"{m}-{o}" for m, o, _ in ALIASES])
def test_old_name_maps_to_new_name_with_a_deprecation_warning(model, old, new):
    cls = get_model(model)
    assert new in cls.Config.model_fields and old not in cls.Config.model_fields
    value = _other_value(cls.Config.model_fields[new])
    with pytest.warns(DeprecationWarning, match=rf"\b{old} -> {new}\b"):
        m = cls(**{old: value})
    got = getattr(m.config, new)
    assert (list(got) if isinstance(got, tuple | list) else got) == (list(value) if isinstance(value, tuple | list) else value)
    assert old not in m.config.model_dump()
    # the same through the config class and through a params dict
    with pytest.warns(DeprecationWarning, match=rf"\b{old} -> {new}\b"):
        assert cls.Config(**{old: value}) == m.config
    with pytest.warns(DeprecationWarning):
        assert cls({old: value}).config == m.config


def test_no_model_config_has_a_field_with_a_deprecated_name():
    for info in list_models():
        clash = DEPRECATED & set(info.cls.Config.model_fields)
        assert not clash, f"{info.name} still has field(s) {sorted(clash)} (use the vocabulary's names)"


def test_old_and_new_name_with_different_values_is_refused():
    bpr = get_model("bpr")
    with pytest.raises(ConfigError, match="both 'embedding_size' .deprecated. and 'embedding_dim'"):
        bpr(embedding_size=8, embedding_dim=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert bpr(embedding_size=8, embedding_dim=8).config.embedding_dim == 8


def test_new_name_given_over_an_existing_config_wins():
    bpr = get_model("bpr")
    base = bpr(embedding_dim=8).config
    with pytest.warns(DeprecationWarning):
        assert bpr(base, embedding_size=16).config.embedding_dim == 16


def test_subclass_configs_inherit_their_parents_aliases():
    from fusionrec.models.sequential.sasrec import SASRecConfig
    from fusionrec.models.text.lm_sasrec import LMSASRecConfig

    assert SASRecConfig.aliases().items() <= LMSASRecConfig.aliases().items()


def test_yaml_experiment_config_with_old_names_still_builds_the_model(tmp_path):
    import yaml

    from fusionrec.experiment.config import ExperimentConfig

    raw = yaml.safe_load("data: {name: ml-100k}\nmodel: {name: neumf, params: {mf_embedding_size: 8, mlp_hidden_size: [16, 8]}}\n")
    with pytest.warns(DeprecationWarning, match="mf_embedding_size -> embedding_dim, mlp_hidden_size -> hidden_dims"):
        cfg = ExperimentConfig(**raw)
        model = get_model("neumf")(**cfg.model_params())
    assert (model.config.embedding_dim, model.config.hidden_dims) == (8, (16, 8))


def test_folder_saved_with_old_names_loads_scores_the_same_and_resaves_new_names(tmp_path):
    ds = toy_dataset()
    model = get_model("neumf")(embedding_dim=4, mlp_embedding_dim=4, hidden_dims=(8,), epochs=2, batch_size=64)
    folder = model.fit(ds, seed=0).save(tmp_path / "m")
    meta = json.loads((folder / "config.json").read_text())
    p = meta["params"]
    p["mf_embedding_size"], p["mlp_embedding_size"], p["mlp_hidden_size"] = p.pop("embedding_dim"), p.pop("mlp_embedding_dim"), p.pop("hidden_dims")
    p["device"] = "cpu"
    (folder / "config.json").write_text(json.dumps(meta))
    with pytest.warns(DeprecationWarning, match="mf_embedding_size -> embedding_dim"):
        loaded = load_model(folder)
    users = ds.users.ids[:10]
    np.testing.assert_allclose(loaded.score(users), model.score(users), rtol=1e-6)
    resaved = json.loads((loaded.save(tmp_path / "again") / "config.json").read_text())["params"]
    assert {"embedding_dim", "mlp_embedding_dim", "hidden_dims"} <= set(resaved)
    assert not {"mf_embedding_size", "mlp_embedding_size", "mlp_hidden_size", "device"} & set(resaved)


def test_resolve_aliases_known_answer():
    with pytest.warns(DeprecationWarning, match=r"^X: deprecated parameter names: a -> b, c -> d$"):
        out = vocabulary.resolve_aliases("X", {"a": "b", "c": "d", "e": "f"}, {"a": 1, "c": 2, "z": 3})
    assert out == {"b": 1, "d": 2, "z": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vocabulary.resolve_aliases("X", {"a": "b"}, {"b": 1}) == {"b": 1}  # nothing to warn
    assert vocabulary.split_run_keys({"device": "cpu", "lr": 1, "progress": True}, {"lr": None}) == ({"lr": 1}, {"device": "cpu", "progress": True})
