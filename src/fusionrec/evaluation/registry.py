"""The one table of metric names the Evaluator, the experiment config and the CLI accept.

Kinds:

* ``topk`` — per-user accuracy of the top-k (recall, ndcg, ...), keys ``name@k``;
* ``list`` — beyond-accuracy of the top-k lists (coverage, diversity, ...), keys ``name@k``;
* ``fair`` — fairness, one key per group (``exposure@10:tail``, ``ndcg_gap@10:gender``);
* ``ctr`` — held-out positives vs sampled negatives (``auc``, ``gauc``, ``logloss``);
* ``rating`` — rating prediction on held-out ratings (``rmse``, ``mae``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from fusionrec.errors import ConfigError
from fusionrec.evaluation.metrics import TOPK_METRICS

__all__ = ["MetricInfo", "METRICS", "ALIASES", "canonical_metric", "validate_metric_names", "metric_kind"]

Kind = Literal["topk", "list", "fair", "ctr", "rating"]


@dataclass(frozen=True)
class MetricInfo:
    kind: Kind
    description: str
    smaller_is_better: bool = False


METRICS: dict[str, MetricInfo] = {
    **{m: MetricInfo("topk", f"{m} of the top-k (RecBole 1.2.1)") for m in TOPK_METRICS},
    "itemcoverage": MetricInfo("list", "share of the catalogue recommended to anyone (RecBole)"),
    "giniindex": MetricInfo("list", "inequality of how often items are recommended (RecBole)", True),
    "shannonentropy": MetricInfo("list", "entropy of the recommended-item distribution (RecBole)"),
    "tailpercentage": MetricInfo("list", "share of list slots given to long-tail items (RecBole)"),
    "averagepopularity": MetricInfo("list", "mean training popularity of listed items (RecBole)", True),
    "ild": MetricInfo("list", "intra-list diversity: mean pairwise cosine distance of item features"),
    "novelty": MetricInfo("list", "mean self-information -log2 p(item) of listed items"),
    "serendipity": MetricInfo("list", "share of the list both relevant and not in a popularity list"),
    "calibration": MetricInfo("list", "KL(user genre profile || list genre distribution)", True),
    "exposure": MetricInfo("fair", "position-weighted exposure share of each item group (head/tail)"),
    "ndcg_gap": MetricInfo("fair", "NDCG per user group and the max-min gap (gender, age, activity)", True),
    "auc": MetricInfo("ctr", "AUC of held-out positives vs sampled negatives"),
    "gauc": MetricInfo("ctr", "per-user AUC weighted by the user's examples"),
    "logloss": MetricInfo("ctr", "log loss (models that predict probabilities)", True),
    "rmse": MetricInfo("rating", "root mean squared error of predicted ratings", True),
    "mae": MetricInfo("rating", "mean absolute error of predicted ratings", True),
}

ALIASES: dict[str, str] = {
    "coverage": "itemcoverage",
    "item_coverage": "itemcoverage",
    "gini": "giniindex",
    "gini_index": "giniindex",
    "entropy": "shannonentropy",
    "shannon_entropy": "shannonentropy",
    "tail": "tailpercentage",
    "tail_percentage": "tailpercentage",
    "avgpop": "averagepopularity",
    "average_popularity": "averagepopularity",
    "diversity": "ild",
    "intra_list_diversity": "ild",
    "log_loss": "logloss",
    "ndcggap": "ndcg_gap",
}


def canonical_metric(name: str) -> str:
    """The registered name for ``name`` (case-insensitive, aliases resolved); ConfigError (a
    ValueError) if unknown."""
    n = str(name).strip().lower()
    n = ALIASES.get(n, n)
    if n not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return n


def validate_metric_names(names: Iterable[str]) -> list[str]:
    """Canonical names, order kept, duplicates dropped; ConfigError naming every unknown one."""
    names = list(names)
    bad = []
    out: list[str] = []
    for n in names:
        try:
            c = canonical_metric(n)
        except ValueError:
            bad.append(n)
            continue
        if c not in out:
            out.append(c)
    if bad:
        raise ConfigError(f"unknown metrics {bad}; known: {', '.join(METRICS)}")
    return out


def metric_kind(name: str) -> Kind:
    return METRICS[canonical_metric(name)].kind
