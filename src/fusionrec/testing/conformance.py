"""Conformance as individual named checks, after scikit-learn's ``parametrize_with_checks``.

``conformance_checks(model, params, dataset)`` yields ``(check_name, callable)`` for every
check that applies to the model; ``skipped_checks`` says which do not and why (a capability
the model does not declare, a check the caller skips, data without the planted groups). The
callables share one lazily fitted model, so running them all costs one fit plus the checks'
own (a reproducibility refit, a cold-item variant, ...). A failure raises
:class:`ConformanceError` naming the model and the check ("bpr: check 'save_load' failed: ...").

``check_recommender`` runs them all and reports **every** failure, not only the first.
``fusionrec.testing.parametrize_conformance`` turns a table of cases into pytest parameters
with ids ``model-check``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from fusionrec.config.base import ModelConfig
from fusionrec.data.dataset import Dataset
from fusionrec.models.base import Recommender
from fusionrec.testing._subject import Subject, saved_folder_problems
from fusionrec.testing.checks_api import API_CHECKS
from fusionrec.testing.checks_capabilities import CAPABILITY_CHECKS

__all__ = [
    "CHECKS",
    "CHECK_DOCS",
    "ConformanceError",
    "ConformanceReport",
    "check_recommender",
    "conformance_checks",
    "skipped_checks",
    "make_subject",
    "default_overrides",
    "saved_folder_problems",
]


@dataclass(frozen=True)
class _Check:
    name: str
    fn: Callable[[Subject], None]
    applies: Callable[[Any], str | None]
    planted: bool
    doc: str


_ALL: tuple[_Check, ...] = (
    *(_Check(n, f, lambda _c: None, False, d) for n, f, d in API_CHECKS),
    *(_Check(n, f, a, p, d) for n, f, a, p, d in CAPABILITY_CHECKS),
)

#: Names of all checks, in the order they run.
CHECKS: tuple[str, ...] = tuple(c.name for c in _ALL)
#: check name -> one line on what it verifies.
CHECK_DOCS: dict[str, str] = {c.name: c.doc for c in _ALL}


class ConformanceError(AssertionError):
    """A model failed conformance checks; the message names the model and each failed check.

    ``check`` is the first failed check, ``failures`` maps every failed check to its message."""

    def __init__(
        self, model: str, check: str, message: str, failures: dict[str, str] | None = None
    ) -> None:
        self.model = model
        self.check = check
        self.failures = dict(failures) if failures else {check: message}
        if len(self.failures) == 1:
            text = f"{model}: check {check!r} failed: {message}"
        else:
            lines = [f"{model}: {len(self.failures)} checks failed:"]
            lines += [f"  check {c!r} failed: {m}" for c, m in self.failures.items()]
            text = "\n".join(lines)
        super().__init__(text)


@dataclass
class ConformanceReport:
    """Which checks passed, which were skipped (with the reason) and which failed."""

    model: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _as_params(config: ModelConfig | dict[str, Any] | None) -> dict[str, Any]:
    if config is None:
        return {}
    return config.model_dump() if isinstance(config, ModelConfig) else dict(config)


def make_subject(
    model: str | type[Recommender],
    params: ModelConfig | dict[str, Any] | None = None,
    dataset: Dataset | Callable[[], Dataset] | None = None,
    *,
    seed: int = 0,
    k: int = 5,
    planted: bool | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Subject:
    """The shared state of one model's checks. ``dataset`` None = the toy data (planted groups
    known); ``planted`` says whether a given dataset (or factory) is the toy data."""
    from fusionrec.models.registry import get_model
    from fusionrec.testing.toy import toy_dataset

    cls = get_model(model) if isinstance(model, str) else model
    if overrides is None:
        overrides = default_overrides(getattr(cls, "name", ""))
    if dataset is None:
        dataset, planted = toy_dataset, True
    return Subject(
        cls, _as_params(params), dataset, seed=seed, k=k, planted=bool(planted), overrides=overrides
    )


def default_overrides(model: str) -> dict[str, dict[str, Any]]:
    """The per-check parameter overrides of ``model``'s first row in ``CONFORMANCE_CASES``
    (e.g. deepfm's rating target for ``rating_range``); {} for a model without a row."""
    from fusionrec.testing.cases import CONFORMANCE_CASES

    for case in CONFORMANCE_CASES:
        if case.model == model:
            return dict(case.overrides)
    return {}


def _skip_reasons(subject: Subject, skip: Iterable[str] | dict[str, str]) -> dict[str, str]:
    skip = dict(skip) if isinstance(skip, dict) else {c: "skipped by caller" for c in skip}
    unknown = set(skip) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks to skip: {sorted(unknown)}; known: {', '.join(CHECKS)}")
    out = {}
    for c in _ALL:
        reason = skip.get(c.name) or c.applies(subject.caps)
        if reason is None and c.planted and not subject.planted_data:
            reason = "needs the planted groups of fusionrec.testing.toy_dataset() (run with dataset=None)"
        if reason is not None:
            out[c.name] = reason
    return out


def _bind(subject: Subject, check: _Check) -> Callable[[], None]:
    def run() -> None:
        try:
            check.fn(subject)
        except ConformanceError:
            raise
        except Exception as e:  # noqa: BLE001 - every failure is reported under the check's name
            msg = str(e) or type(e).__name__
            raise ConformanceError(subject.name, check.name, f"{type(e).__name__}: {msg}") from e

    run.__name__ = check.name
    run.__doc__ = check.doc
    return run


def _iter_checks(
    subject: Subject, skip: Iterable[str] | dict[str, str]
) -> Iterator[tuple[str, Callable[[], None]]]:
    reasons = _skip_reasons(subject, skip)
    for c in _ALL:
        if c.name not in reasons:
            yield c.name, _bind(subject, c)


def conformance_checks(
    model: str | type[Recommender] | Subject,
    params: ModelConfig | dict[str, Any] | None = None,
    dataset: Dataset | Callable[[], Dataset] | None = None,
    *,
    seed: int = 0,
    k: int = 5,
    skip: Iterable[str] | dict[str, str] = (),
) -> list[tuple[str, Callable[[], None]]]:
    """``(check_name, callable)`` for every check that applies to ``model`` (a registry name,
    a Recommender class or a prepared Subject); each callable raises ConformanceError on failure.

    The callables share one model fitted on first use. ``skip``: check names (or name -> reason)
    the model legitimately cannot meet; see :func:`skipped_checks` for what is left out."""
    subject = (
        model
        if isinstance(model, Subject)
        else make_subject(model, params, dataset, seed=seed, k=k)
    )
    return list(_iter_checks(subject, skip))


def skipped_checks(
    model: str | type[Recommender] | Subject,
    params: ModelConfig | dict[str, Any] | None = None,
    dataset: Dataset | Callable[[], Dataset] | None = None,
    *,
    skip: Iterable[str] | dict[str, str] = (),
) -> dict[str, str]:
    """check name -> why it does not run for this model (capability, caller, data)."""
    subject = model if isinstance(model, Subject) else make_subject(model, params, dataset)
    return _skip_reasons(subject, skip)


def check_recommender(
    cls: str | type[Recommender],
    config: ModelConfig | dict[str, Any] | None = None,
    dataset: Dataset | None = None,
    *,
    seed: int = 0,
    skip: Iterable[str] | dict[str, str] = (),
    k: int = 5,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> ConformanceReport:
    """Run every conformance check on model ``cls`` and report all failures at once.

    Args:
        cls: a Recommender subclass (usually from the registry) or its registry name.
        config: parameters (dict or config object); keep training short (few epochs).
        dataset: defaults to :func:`fusionrec.testing.toy_dataset` (the signal checks of the
            capabilities need it and are skipped on other data).
        seed: the fit seed.
        skip: names of checks to skip (see ``CHECKS``), or name -> reason.
        k: list length used by the recommendation checks.
        overrides: check name -> parameters replacing ``config`` in that check's own fit
            (None: the model's overrides in ``CONFORMANCE_CASES``).

    Returns the report of passed and skipped checks; raises ConformanceError listing every
    failed check when any fails.
    """
    subject = make_subject(cls, config, dataset, seed=seed, k=k, overrides=overrides)
    report = ConformanceReport(model=subject.name, skipped=_skip_reasons(subject, skip))
    for name, run in _iter_checks(subject, skip):
        try:
            run()
        except ConformanceError as e:
            report.failed[name] = str(e).split(" failed: ", 1)[-1]
            continue
        report.passed.append(name)
    if report.failed:
        first = next(iter(report.failed))
        raise ConformanceError(subject.name, first, report.failed[first], report.failed)
    return report
