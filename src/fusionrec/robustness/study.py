"""One attack study: fit a model on clean or poisoned training data, with or without a defence,
and measure overall accuracy and the pushed items' hit rate (used by ``fusionrec robustness
attack`` and ``benchmarks/robustness_benchmark.py``).

Defences:

- ``none``: the model is fitted on the poisoned data as it is;
- ``detector``: :func:`~fusionrec.robustness.detection.detect_fake_profiles` (with the
  neighbour-similarity feature) flags users; their interactions are removed before fitting;
- ``apr``: adversarial training (APR), for models with an ``adv_eps`` setting (BPR).

Target HR@k counts (real user, target) pairs whose user had not seen the target in the clean
training data (see :func:`~fusionrec.robustness.poisoning.target_hit_rate`); the fake users are
never scored, nor the real users the detector removed (they have no history left: their
loss shows in NDCG@10, which counts every test user).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.robustness.detection import detect_fake_profiles, precision_recall
from fusionrec.robustness.poisoning import ShillingAttack, inject_profiles, target_hit_rate

__all__ = ["StudyRow", "DEFENCES", "default_attack", "run_attack"]

Defence = Literal["none", "apr", "detector"]
DEFENCES: tuple[str, ...] = ("none", "apr", "detector")


@dataclass(frozen=True)
class StudyRow:
    """One measured setting."""

    model: str
    attack: str
    defence: str
    ndcg10: float
    target_hr10: float
    target_hr50: float
    n_fake: int
    det_precision: float | None
    det_recall: float | None
    removed_users: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_attack(
    kind: str, targets: tuple[str, ...], n_profiles: int, filler_size: int = 40, n_popular: int = 60
) -> ShillingAttack:
    """The attacks of the study: ``random``/``average`` with filler drawn in proportion to item
    popularity (what real profiles look like; uniform filler barely moves implicit-feedback
    models), ``bandwagon`` with its whole filler from the ``n_popular`` most popular items."""
    if kind == "bandwagon":
        return ShillingAttack(kind="bandwagon", targets=targets, n_profiles=n_profiles, filler_size=filler_size,
                              bandwagon_share=1.0, n_popular=max(n_popular, filler_size))
    if kind not in ("random", "average"):
        raise ConfigError(f"unknown attack {kind!r}; expected random, average or bandwagon")
    return ShillingAttack(kind=kind, targets=targets, n_profiles=n_profiles, filler_size=filler_size,
                          filler_sampling="popularity")


def run_attack(
    model_name: str,
    params: dict[str, Any],
    train: Dataset,
    test: Dataset,
    exclude: tuple[Dataset, ...],
    targets: tuple[str, ...],
    attack: ShillingAttack | None = None,
    defence: Defence = "none",
    *,
    seed: int = 2020,
    apr_eps: float = 0.05,
    detector_threshold: float = 8.0,
) -> StudyRow:
    """Fit ``model_name(**params)`` on ``train`` poisoned by ``attack`` (None = clean), defended
    by ``defence``; NDCG@10 on ``test`` (``exclude`` masked) and HR@10/50 of ``targets``.

    Raises:
        ConfigError: an unknown defence, APR asked of a model without ``adv_eps``, or an
            attack whose targets are not ``targets``.
    """
    from fusionrec.evaluation import Evaluator
    from fusionrec.models.registry import get_model

    if attack is not None and tuple(attack.targets) != tuple(targets):
        raise ConfigError("the attack pushes other items than the targets measured")
    if defence not in DEFENCES:
        raise ConfigError(f"unknown defence {defence!r}; expected one of {DEFENCES}")
    t0 = time.perf_counter()
    cls = get_model(model_name)
    params = dict(params)
    if defence == "apr":
        if "adv_eps" not in cls.Config.model_fields:
            raise ConfigError(f"APR needs a BPR-style model with adv_eps; {model_name} has none")
        params["adv_eps"] = apr_eps
    fit_on, fake = train, np.zeros(train.n_users, dtype=bool)
    if attack is not None:
        fit_on, fake = inject_profiles(train, attack, np.random.default_rng(seed))
    prec = rec = None
    removed = 0
    if defence == "detector":
        det = detect_fake_profiles(fit_on, detector_threshold, similarity=True)
        removed = int(det.flagged.sum())
        if attack is not None:
            prec, rec = precision_recall(det.flagged, fake)
        fit_on = fit_on.with_interactions(~det.flagged[fit_on.user_idx])
    model = cls(**params).fit(fit_on, seed=seed)
    ndcg = float(Evaluator(["ndcg"], ks=(10,)).evaluate(model, test, exclude=exclude).metrics["ndcg@10"])
    # real users the model still knows from training (a flagged real user lost their history)
    has_history = np.bincount(fit_on.user_idx, minlength=fit_on.n_users) > 0
    real = np.flatnonzero(np.isin(model.users_.ids, train.users.ids) & has_history)
    hr10 = target_hit_rate(model, real, targets, 10)
    hr50 = target_hit_rate(model, real, targets, 50)
    return StudyRow(
        model=model_name, attack="none" if attack is None else attack.kind, defence=defence,
        ndcg10=ndcg, target_hr10=hr10, target_hr50=hr50, n_fake=int(fake.sum()),
        det_precision=prec, det_recall=rec, removed_users=removed, seconds=time.perf_counter() - t0,
    )
