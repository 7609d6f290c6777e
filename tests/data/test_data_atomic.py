"""RecBole atomic files: typed parsing, the ml-100k conventions, and every bad-input case."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import load_atomic, read_atomic
from fusionrec.errors import DataFormatError


def write(folder: Path, name: str, lines: list[str]) -> Path:
    p = folder / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


INTER = [
    "user_id:token\titem_id:token\trating:float\ttimestamp:float",
    "u1\ti1\t4\t100",
    "u1\ti2\t3\t50",
    "u2\ti2\t5\t70",
    "u3\ti3\t1\t10",
]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path, "toy.inter", INTER)
    write(
        tmp_path,
        "toy.item",
        [
            "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\tvec:float_seq",
            "i1\tToy Story\t1995\tAnimation Comedy\t0.5 1",
            "i2\tHeat\t1995\tAction\t2 3.5",
            "i3\tThe Mirror Has Two Faces\t1996\t\t",
        ],
    )
    write(
        tmp_path,
        "toy.user",
        [
            "user_id:token\tage:token\tgender:token",
            "u1\t24\tM",
            "u2\t53\tF",
            "u3\t33\tM",
            "u4\t40\tF",
        ],
    )
    write(
        tmp_path,
        "toy.kg",
        [
            "head_id:token\trelation_id:token\ttail_id:token",
            "m.1\tfilm.genre\tm.g",
            "m.2\tfilm.genre\tm.g",
            "m.g\tgenre.parent\tm.root",
        ],
    )
    write(tmp_path, "toy.link", ["item_id:token\tentity_id:token", "i1\tm.1", "i2\tm.2"])
    return tmp_path


def test_read_atomic_types(folder: Path) -> None:
    items, types = read_atomic(folder / "toy.item")
    assert types == {
        "item_id": "token",
        "movie_title": "token_seq",
        "release_year": "token",
        "class": "token_seq",
        "vec": "float_seq",
    }
    assert items["movie_title"].tolist() == [
        ["Toy", "Story"],
        ["Heat"],
        ["The", "Mirror", "Has", "Two", "Faces"],
    ]
    assert items["class"].tolist() == [["Animation", "Comedy"], ["Action"], []]
    assert items["vec"].tolist() == [[0.5, 1.0], [2.0, 3.5], []]
    inter, _ = read_atomic(folder / "toy.inter")
    assert inter["rating"].dtype == np.float64
    assert inter["timestamp"].tolist() == [100.0, 50.0, 70.0, 10.0]


def test_load_atomic_dataset(folder: Path) -> None:
    ds = load_atomic(folder)
    assert ds.name == "toy"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (4, 3, 4)  # u4 only in .user: cold
    assert list(ds.users.ids) == ["u1", "u2", "u3", "u4"]
    assert ds.rating.tolist() == [4.0, 3.0, 5.0, 1.0]
    assert ds.item_titles().tolist() == ["Toy Story", "Heat", "The Mirror Has Two Faces"]
    assert ds.item_feature_types["title"] == "token"
    assert ds.item_feature_types["class"] == "token_seq"
    assert ds.item_feature_types["vec"] == "float_seq"
    assert ds.text_fields == ("title", "class")
    assert ds.item_text()[0] == "Toy Story; Animation Comedy"
    assert ds.user_features["age"].tolist() == ["24", "53", "33", "40"]
    kg = ds.kg
    assert kg is not None and kg.n_triples == 3 and kg.n_linked_items == 2
    assert kg.entities.to_ids(kg.item_entity[:2]).tolist() == ["m.1", "m.2"]
    assert kg.item_entity[2] == -1


def test_kg_without_link_is_an_error(folder: Path) -> None:
    (folder / "toy.link").unlink()
    with pytest.raises(DataFormatError, match=r"toy\.link.*needs both"):
        load_atomic(folder)


def test_name_and_missing_inter(tmp_path: Path, folder: Path) -> None:
    assert load_atomic(folder, name="toy").n_interactions == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFormatError, match="no RecBole atomic"):
        load_atomic(empty)


def _err(tmp_path: Path, lines: list[str], name: str = "bad.inter") -> DataFormatError:
    p = tmp_path / name
    p.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    with pytest.raises(DataFormatError) as ei:
        read_atomic(p)
    msg = str(ei.value)
    assert str(p) in msg, msg  # the message names the file
    return ei.value


def test_bad_wrong_column_count(tmp_path: Path) -> None:
    lines = [*INTER[:3], "u2\ti2\t5", *INTER[3:]]  # line 4 has 3 fields
    e = _err(tmp_path, lines)
    assert e.line == 4
    assert re.search(r"line 4: expected 4 fields separated by TAB, found 3", str(e))


def test_bad_too_many_columns_late_in_file(tmp_path: Path) -> None:
    lines = [INTER[0]] + [f"u{i}\ti{i}\t1\t{i}" for i in range(5000)] + ["u\ti\t1\t2\textra"]
    e = _err(tmp_path, lines)
    assert e.line == 5002 and "found 5" in str(e)


def test_bad_float(tmp_path: Path) -> None:
    e = _err(tmp_path, [INTER[0], "u1\ti1\t4\t100", "u1\ti2\tfour\t50"])
    assert e.line == 3
    assert "field 'rating': expected a number, got 'four'" in str(e)


def test_bad_float_seq(tmp_path: Path) -> None:
    e = _err(
        tmp_path,
        ["item_id:token\tvec:float_seq", "i1\t1 2", "i2\t", "i3\t3 x 4"],
        name="bad.item",
    )
    assert e.line == 4
    assert "float_seq" in str(e) and "'x'" in str(e)


def test_bad_unknown_type(tmp_path: Path) -> None:
    e = _err(tmp_path, ["user_id:token\titem_id:integer", "u1\ti1"])
    assert e.line == 1 and "unknown type 'integer'" in str(e)


def test_bad_empty_file(tmp_path: Path) -> None:
    e = _err(tmp_path, [])
    assert "empty file" in str(e)


def test_bad_header_only(tmp_path: Path) -> None:
    e = _err(tmp_path, [INTER[0]])
    assert e.line == 2 and "no data lines" in str(e)


def test_header_only_allowed_for_side_tables(tmp_path: Path) -> None:
    p = tmp_path / "x.user"
    p.write_text("user_id:token\tage:float\n")
    frame, types = read_atomic(p, require_rows=False)
    assert len(frame) == 0 and types == {"user_id": "token", "age": "float"}


def test_bad_duplicate_field(tmp_path: Path) -> None:
    e = _err(tmp_path, ["user_id:token\titem_id:token\tuser_id:token", "a\tb\tc"])
    assert e.line == 1 and "duplicate header field 'user_id'" in str(e)


def test_bad_header_without_type(tmp_path: Path) -> None:
    e = _err(tmp_path, ["user_id:token\titem_id", "a\tb"])
    assert e.line == 1 and "'item_id' has no type" in str(e)


def test_missing_required_field(tmp_path: Path) -> None:
    write(tmp_path, "t.inter", ["user_id:token\tthing:token", "a\tb"])
    with pytest.raises(DataFormatError, match=r"t\.inter, line 1: header has no field 'item_id'"):
        load_atomic(tmp_path)


def test_crlf_and_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "w.inter"
    p.write_bytes(b"user_id:token\titem_id:token\r\nu1\ti1\r\n\r\nu2\ti2\r\nu3\tx\ty\r\n")
    with pytest.raises(DataFormatError) as ei:
        read_atomic(p)
    assert ei.value.line == 5  # the blank line still counts
    p.write_bytes(b"user_id:token\titem_id:token\r\nu1\ti1\r\n\r\nu2\ti2")  # no final newline
    frame, _ = read_atomic(p)
    assert frame["item_id"].tolist() == ["i1", "i2"]


def test_header_errors_name_the_header_line_after_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "b.user"
    p.write_text("\n\nuser_id:token\tage:int\n")
    with pytest.raises(
        DataFormatError, match=r"b\.user, line 3: header field 'age' has unknown type 'int'"
    ):
        read_atomic(p, require_rows=False)
    p.write_text("\nuser_id:token\tage:float\nu1\t3\n")
    frame, _ = read_atomic(p)
    assert frame["user_id"].tolist() == ["u1"] and frame["age"].tolist() == [3.0]
