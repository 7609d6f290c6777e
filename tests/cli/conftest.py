"""Fixtures of the CLI tests: a small saved dataset (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusionrec.testing.toy import save_two_group_dataset


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    return save_two_group_dataset(tmp_path / "small_ds")
