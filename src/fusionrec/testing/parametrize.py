"""``parametrize_conformance``: pytest parameters, one per (case, check), ids ``model-check``.

Usage (what tests/models/test_conformance.py does)::

    from fusionrec.testing import CONFORMANCE_CASES, parametrize_conformance

    @pytest.mark.parametrize("check", parametrize_conformance(CONFORMANCE_CASES))
    def test_conformance(check):
        check()

Checks that do not apply are kept as skipped parameters carrying the reason, so a report
shows what was not verified; cases marked ``slow`` get the ``slow`` mark. pytest is imported
only when this is called.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fusionrec.testing.cases import ConformanceCase, case_dataset
from fusionrec.testing.conformance import CHECKS, _iter_checks, _skip_reasons, make_subject

__all__ = ["parametrize_conformance"]


def parametrize_conformance(cases: Iterable[ConformanceCase]) -> list[Any]:
    """One ``pytest.param(check_callable, id="<case>-<check>")`` per case and check."""
    import pytest

    out = []
    for case in cases:
        subject = make_subject(
            case.model,
            case.params,
            case_dataset(case),
            planted=True,
            overrides=case.overrides,
        )
        marks = [pytest.mark.slow] if case.slow else []
        runnable = dict(_iter_checks(subject, case.skip))
        reasons = _skip_reasons(subject, case.skip)
        for name in CHECKS:
            pid = f"{case.id}-{name}"
            if name in runnable:
                out.append(pytest.param(runnable[name], id=pid, marks=marks))
            else:
                out.append(
                    pytest.param(
                        None, id=pid, marks=[*marks, pytest.mark.skip(reason=reasons[name])]
                    )
                )
    return out
