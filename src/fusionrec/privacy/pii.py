"""Drop or generalise personal columns of the user table (zip codes, exact ages).

``protect_pii(dataset, PIIPolicy())`` returns a copy whose ``zip_code`` keeps only its first
digit (the US ZIP's national area: 0 = New England ... 9 = Pacific) and whose exact ``age``
becomes a band such as ``"25-34"``; listed columns are dropped. MovieLens-1M already stores
ages as band codes (1, 18, 25, ...): those map to the same band labels.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

__all__ = ["PII_MODES", "PIIPolicy", "protect_pii", "pii_policy", "age_band", "zip_prefix"]

DEFAULT_AGE_EDGES = (18, 25, 35, 45, 50, 56)


class PIIPolicy(BaseModel):
    """What to do with each personal column of ``user_features``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zip_column: str = "zip_code"
    """Column holding postal codes."""
    zip: Literal["keep", "prefix", "drop"] = "prefix"
    """Keep, cut to ``zip_digits`` leading characters, or drop the postal code."""
    zip_digits: int = Field(1, ge=1, le=4)
    """Leading characters kept by ``zip="prefix"`` (1 = ZIP national area)."""
    age_column: str = "age"
    """Column holding ages in years."""
    age: Literal["keep", "band", "drop"] = "band"
    """Keep, replace by a band, or drop the age."""
    age_edges: tuple[int, ...] = DEFAULT_AGE_EDGES
    """Band lower edges (ascending): ages below the first edge are "<18", above the last "56+"."""
    drop: tuple[str, ...] = ()
    """Further user columns to drop entirely."""


PII_MODES: tuple[str, ...] = ("keep", "generalise", "drop")
"""The load-time choices (``data.pii`` in an experiment config, ``--pii`` on the CLI)."""


def pii_policy(mode: str, zip_digits: int = 1) -> PIIPolicy:
    """The policy of a load-time mode: ``generalise`` (zip prefix, age bands), ``drop`` (both
    columns removed) or ``keep`` (nothing changed).

    Raises:
        ConfigError: an unknown mode.
    """
    if mode == "generalise":
        return PIIPolicy(zip_digits=zip_digits)
    if mode == "drop":
        return PIIPolicy(zip="drop", age="drop")
    if mode == "keep":
        return PIIPolicy(zip="keep", age="keep")
    raise ConfigError(f"pii must be one of {PII_MODES}, not {mode!r}")


def zip_prefix(values: pd.Series, digits: int) -> pd.Series:
    """The first ``digits`` characters of each code, upper-cased; a missing code stays missing."""
    s = values.astype("string").str.strip().str.upper()
    return s.str.slice(0, digits).astype(object).where(s.notna() & (s != ""), None)


def age_band(values: pd.Series, edges: tuple[int, ...] = DEFAULT_AGE_EDGES) -> pd.Series:
    """Band labels of ages in years: ``<18``, ``18-24``, ..., ``56+`` for the default edges.

    Raises:
        ConfigError: edges not strictly ascending, or an age that is not a number.
    """
    e = np.asarray(edges, dtype=float)
    if len(e) == 0 or np.any(np.diff(e) <= 0):
        raise ConfigError(f"age band edges must be ascending and non-empty, got {edges}")
    num = pd.to_numeric(values, errors="coerce")
    bad = num.isna() & values.notna()
    if bad.any():
        raise ConfigError(f"age column holds a non-number: {values[bad].iloc[0]!r}")
    labels = [f"<{edges[0]}"] + [f"{a}-{b - 1}" for a, b in zip(edges[:-1], edges[1:], strict=True)] + [f"{edges[-1]}+"]
    pos = np.searchsorted(e, num.to_numpy(dtype=float), side="right")
    out = np.array([labels[p] for p in pos], dtype=object)
    out[num.isna().to_numpy()] = None
    return pd.Series(out, index=values.index)


def protect_pii(dataset: Dataset, policy: PIIPolicy | None = None) -> Dataset:
    """A copy of ``dataset`` with the user table generalised/dropped as ``policy`` says.

    Raises:
        ConfigError: a column the policy names is missing from the user table.
    """
    policy = policy or PIIPolicy()
    table = dataset.user_features
    if table is None:
        return dataset
    table = table.copy()
    types = dict(dataset.user_feature_types)
    missing = [c for c in policy.drop if c not in table.columns]
    if missing:
        raise ConfigError(f"PII policy drops {missing}, not columns of the user table {list(table.columns)}")
    for col, action in ((policy.zip_column, policy.zip), (policy.age_column, policy.age)):
        if action == "keep" or col not in table.columns:
            continue
        if action == "drop":
            table = table.drop(columns=[col])
            types.pop(col, None)
        elif action == "prefix":
            table[col] = zip_prefix(table[col], policy.zip_digits)
            types[col] = "token"
        else:
            table[col] = age_band(table[col], policy.age_edges)
            types[col] = "token"
    table = table.drop(columns=list(policy.drop))
    for c in policy.drop:
        types.pop(c, None)
    return dataclasses.replace(dataset, user_features=table, user_feature_types=types, _cache={})
