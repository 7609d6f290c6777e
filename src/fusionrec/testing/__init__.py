"""Shared test helpers: named conformance checks over every model, the table of fast cases,
and small synthetic datasets with planted structure."""

from fusionrec.testing.cases import CONFORMANCE_CASES, ConformanceCase, toy_text_dataset
from fusionrec.testing.conformance import (
    CHECK_DOCS,
    CHECKS,
    ConformanceError,
    ConformanceReport,
    check_recommender,
    conformance_checks,
    skipped_checks,
)
from fusionrec.testing.parametrize import parametrize_conformance
from fusionrec.testing.toy import TOY_GROUPS, checkerboard, toy_dataset

__all__ = [
    "check_recommender",
    "conformance_checks",
    "skipped_checks",
    "parametrize_conformance",
    "ConformanceError",
    "ConformanceReport",
    "ConformanceCase",
    "CONFORMANCE_CASES",
    "CHECKS",
    "CHECK_DOCS",
    "toy_dataset",
    "toy_text_dataset",
    "checkerboard",
    "TOY_GROUPS",
]
