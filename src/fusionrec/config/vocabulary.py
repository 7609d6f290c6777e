"""One hyperparameter vocabulary across models, and the deprecated names it replaced.

Every model spells the same idea the same way. The table below is the whole rename (survey of
every ``*Config`` under ``fusionrec.models``); the left column keeps working as a deprecated
alias in Python calls, YAML configs and saved model folders (a ``DeprecationWarning`` names
``old -> new``), and a folder saved afterwards uses the new name. No default and no numeric
behaviour changed: only the names.

=====================  =====================  ==============================================
old name               new name               models (what it is)
=====================  =====================  ==============================================
embedding_size         embedding_dim          bpr, lightgcn, lm_lightgcn, deepfm, distill,
                                              multitask (user/item/field embedding width)
dim                    embedding_dim          static_embedding, kgat, mm_mf, cke, KGEConfig
                                              (node / entity / SVD width)
hidden_size            embedding_dim          sasrec, lm_sasrec (item embedding = model width)
hidden_dim             embedding_dim          text_seq (model width)
id_dim                 embedding_dim          two_tower (user/item id embedding width;
                                              the retrieval vector stays ``out_dim``)
mf_embedding_size      embedding_dim          neumf (GMF branch width)
mlp_embedding_size     mlp_embedding_dim      neumf (MLP branch width: a second, distinct
                                              width, so a distinct name)
mlp_hidden_size        hidden_dims            neumf (MLP layer widths)
hidden                 hidden_dims            deepfm, two_tower, multitask (MLP layer widths)
layers                 hidden_dims            kgat (propagation layer output widths)
inner_size             ffn_dim                sasrec, lm_sasrec (transformer feed-forward width)
tower_hidden           tower_dim              multitask (per-task tower width)
cold_neighbors         cold_neighbours        lm_ease (as lm_lightgcn already spelt it)
n_negatives            num_negatives          ensemble (as TrainConfig spells it)
=====================  =====================  ==============================================

Names that were already shared and stay: ``n_layers``, ``n_heads``, ``n_experts``, ``dropout``
(``attn_dropout``, ``id_dropout`` for the other dropouts), ``lr``, ``reg_weight`` (a loss or
closed-form L2 term; ``weight_decay`` is the optimiser's), ``num_negatives``, ``temperature``,
``rel_dim`` (KG relation space), ``feature_dim``, ``out_dim``, ``max_len``, ``epochs``,
``batch_size``, ``patience``.

Run options are not hyperparameters: ``device``, ``cpu_threads`` and ``progress`` were fields of
every torch model's config and are now ``fusionrec.training.FitOptions`` (never saved).
:data:`RUN_KEYS` lists them; a model config given them drops them with a
``DeprecationWarning`` (``Recommender(...)`` turns them into that instance's default
``FitOptions``; ``load_model`` drops them from old folders with a warning).

A config class declares its renames once, as ``_aliases: ClassVar[dict[str, str]] = {old: new}``;
``ModelConfig`` collects them over the class's bases, so a subclass (``LMSASRecConfig`` of
``SASRecConfig``) inherits its parent's aliases.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from fusionrec.errors import ConfigError

__all__ = ["RUN_KEYS", "resolve_aliases", "split_run_keys", "warn_renamed"]

#: Keys that describe a run, not a model; once fields of every torch model's config.
RUN_KEYS: tuple[str, ...] = ("device", "cpu_threads", "progress", "run_dir", "resume", "callbacks")


def warn_renamed(owner: str, renamed: Mapping[str, str], stacklevel: int = 3) -> None:
    """One ``DeprecationWarning`` naming every ``old -> new`` of ``renamed``."""
    if renamed:
        pairs = ", ".join(f"{old} -> {new}" for old, new in renamed.items())
        warnings.warn(f"{owner}: deprecated parameter names: {pairs}", DeprecationWarning, stacklevel=stacklevel)


def resolve_aliases(owner: str, aliases: Mapping[str, str], data: Mapping[str, Any], stacklevel: int = 4) -> dict[str, Any]:
    """``data`` with every deprecated key of ``aliases`` renamed to its new name.

    Warns once (``DeprecationWarning``) naming the renamed keys; giving both the old and the
    new name with different values is a :class:`ConfigError`."""
    out = dict(data)
    renamed: dict[str, str] = {}
    for old, new in aliases.items():
        if old not in out:
            continue
        value = out.pop(old)
        if new in out and out[new] != value:
            raise ConfigError(f"{owner}: both {old!r} (deprecated) and {new!r} given; use only {new!r}")
        out[new] = value
        renamed[old] = new
    warn_renamed(owner, renamed, stacklevel=stacklevel)
    return out


def split_run_keys(data: Mapping[str, Any], fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, run)``: the :data:`RUN_KEYS` of ``data`` that are not fields of the config
    (``fields``) moved out into ``run``."""
    params = dict(data)
    run = {k: params.pop(k) for k in RUN_KEYS if k in params and k not in fields}
    return params, run
