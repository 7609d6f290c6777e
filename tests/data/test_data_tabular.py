"""CSV/Parquet interactions with a column mapping, and load_dataset on files and folders."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fusionrec.data import Dataset, load_dataset, load_table
from fusionrec.errors import DataFormatError


def test_csv_with_mapping(tmp_path: Path) -> None:
    p = tmp_path / "log.csv"
    p.write_text("uid,iid,stars,when\n7,a,5,100\n8,b,3,200\n7,b,4,300\n")
    items = pd.DataFrame({"iid": ["a", "b", "c"], "title": ["A", "B", "C"]})
    ds = load_table(
        p,
        columns={"user_id": "uid", "item_id": "iid", "rating": "stars", "timestamp": "when"},
        items=items,
    )
    assert ds.users.ids.tolist() == ["7", "8"]
    assert ds.items.ids.tolist() == ["a", "b", "c"]  # c: cold item from the side table
    assert ds.rating.tolist() == [5.0, 3.0, 4.0]
    assert ds.timestamp.tolist() == [100.0, 200.0, 300.0]
    assert ds.item_titles().tolist() == ["A", "B", "C"]
    assert ds.name == "log"


def test_dates_become_unix_seconds(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("user_id,item_id,timestamp\n1,x,1970-01-02\n2,y,1970-01-01T00:01:00\n")
    ds = load_table(p)
    assert ds.timestamp.tolist() == [86400.0, 60.0]
    assert ds.rating is None


def test_parquet(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pd.DataFrame({"user_id": [1, 2], "item_id": [10, 20], "rating": [1.5, 2.0]}).to_parquet(p)
    ds = load_dataset(p)
    assert ds.users.ids.tolist() == ["1", "2"] and ds.items.ids.tolist() == ["10", "20"]
    assert ds.rating.tolist() == [1.5, 2.0]


def test_errors_name_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("uid,iid\n1,a\n")
    with pytest.raises(DataFormatError, match=r"x\.csv, line 1: no column 'user_id' for user_id"):
        load_table(p)
    with pytest.raises(DataFormatError, match=r"no column 'r' for rating"):
        load_table(p, columns={"user_id": "uid", "item_id": "iid", "rating": "r"})
    p.write_text("user_id,item_id,rating\n1,a,4\n2,b,good\n")
    with pytest.raises(
        DataFormatError, match=r"x\.csv, line 3: field 'rating': expected a number, got 'good'"
    ):
        load_table(p)
    p.write_text("user_id,item_id,rating\n1,a,4\n2,b\n")
    with pytest.raises(DataFormatError, match=r"x\.csv, line 3: expected 3 fields"):
        load_table(p)
    p.write_text("user_id,item_id\n1,a\n,b\n")
    with pytest.raises(DataFormatError, match=r"x\.csv, line 3: empty user_id"):
        load_table(p)
    with pytest.raises(DataFormatError, match="unknown target column"):
        load_table(p, columns={"user": "uid"})


def test_load_dataset_paths(tmp_path: Path, tiny: Dataset) -> None:
    saved = tiny.save(tmp_path / "saved")
    back = load_dataset(saved)
    assert back.interactions_frame().equals(tiny.interactions_frame())
    with pytest.raises(DataFormatError, match="not a known dataset name"):
        load_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFormatError, match="no dataset found"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "f.xyz").write_text("x")
    with pytest.raises(DataFormatError, match="unsupported file type"):
        load_dataset(tmp_path / "f.xyz")
