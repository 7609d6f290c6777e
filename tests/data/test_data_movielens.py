"""Official MovieLens formats on tiny hand-written files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import load_atomic, load_dataset, load_movielens
from fusionrec.data.movielens import ML100K_GENRES, split_title_year
from fusionrec.errors import DataFormatError

U_DATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t302\t5\t881250950\n"


CHILDREN = "Children's"


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in ML100K_GENRES)


def make_100k(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "u.data").write_text(U_DATA)
    lines = [
        f"242|Kolya (1996)|24-Jan-1997||http://us.imdb.com/M/title-exact?Kolya%20(1996)|{_flags('Comedy')}",
        f"302|L.A. Confidential (1997)|01-Jan-1997||http://x|{_flags('Crime', 'Film-Noir')}",
        f"377|Heavyweights (1994)|01-Jan-1994||http://y|{_flags(CHILDREN, 'Comedy')}",
        f"267|unknown||||{_flags('unknown')}",
        f"999|Cit\xe9 des enfants perdus, La (1995)|01-Jan-1995||http://z|{_flags('Sci-Fi')}",
    ]
    (folder / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    (folder / "u.user").write_text(
        "196|49|M|writer|55105\n186|39|F|executive|00000\n22|25|M|writer|40206\n"
    )
    (folder / "u.genre").write_text(
        "".join(f"{g}|{i}\n" for i, g in enumerate(ML100K_GENRES)) + "\n"
    )
    return folder


def test_title_year() -> None:
    import pandas as pd

    t, y = split_title_year(
        pd.Series(["Toy Story (1995)", "unknown", "Big (1988) ", "Cosmos (1980-1982)"])
    )
    assert t.tolist() == ["Toy Story", "unknown", "Big", "Cosmos"]
    assert y[0] == 1995 and np.isnan(y[1]) and y[2] == 1988 and y[3] == 1980


def test_100k(tmp_path: Path) -> None:
    ds = load_movielens(make_100k(tmp_path / "ml"))
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (3, 5, 4)
    assert ds.users.ids.tolist() == ["196", "186", "22"]
    assert ds.items.ids.tolist() == ["242", "302", "377", "267", "999"]
    assert ds.rating.tolist() == [3.0, 3.0, 1.0, 5.0]
    assert ds.timestamp[0] == 881250949.0
    f = ds.item_features
    assert f["title"].tolist() == [
        "Kolya",
        "L.A. Confidential",
        "Heavyweights",
        "unknown",
        "Cité des enfants perdus, La",
    ]
    assert f["year"].tolist()[:3] == [1996.0, 1997.0, 1994.0] and np.isnan(f["year"].iloc[3])
    assert f["genres"].tolist()[:3] == [
        ["Comedy"],
        ["Crime", "Film-Noir"],
        ["Children's", "Comedy"],
    ]
    assert ds.item_feature_types["genres"] == "token_seq"
    assert ds.user_features["occupation"].tolist() == ["writer", "executive", "writer"]
    assert ds.user_features["zip_code"].tolist()[1] == "00000"  # ids/tokens stay strings
    assert ds.text_fields == ("title", "genres")


def test_100k_same_interactions_as_atomic(tmp_path: Path) -> None:
    """GroupLens u.data and RecBole .inter of the same data give the same interactions."""
    ml = make_100k(tmp_path / "ml")
    rb = tmp_path / "rb"
    rb.mkdir()
    (rb / "ml-100k.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n" + U_DATA
    )
    a, b = load_movielens(ml), load_atomic(rb)
    fa, fb = a.interactions_frame(), b.interactions_frame()
    assert fa.equals(fb)
    assert a.users == b.users


def test_100k_bad_lines(tmp_path: Path) -> None:
    ml = make_100k(tmp_path / "ml")
    (ml / "u.data").write_text(U_DATA + "1\t2\t3\n")
    with pytest.raises(
        DataFormatError, match=r"u\.data, line 5: expected 4 fields separated by TAB, found 3"
    ):
        load_movielens(ml)
    (ml / "u.data").write_text(U_DATA.replace("\t1\t878887116", "\tone\t878887116"))
    with pytest.raises(
        DataFormatError, match=r"u\.data, line 3: field 'rating': expected a number, got 'one'"
    ):
        load_movielens(ml)
    (ml / "u.data").write_text(U_DATA)
    item = (ml / "u.item").read_bytes().replace(b"|http://x|0", b"|http://x|7", 1)
    (ml / "u.item").write_bytes(item)
    with pytest.raises(DataFormatError, match=r"u\.item, line 2: genre flags must be 0 or 1"):
        load_movielens(ml)


def test_1m(tmp_path: Path) -> None:
    ml = tmp_path / "ml-1m"
    ml.mkdir()
    (ml / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    )
    movies = "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    (ml / "movies.dat").write_bytes(movies.encode("latin-1"))
    (ml / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    ds = load_movielens(ml)
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 3)
    assert ds.item_titles().tolist() == [
        "One Flew Over the Cuckoo's Nest",
        "James and the Giant Peach",
    ]
    assert ds.item_features["genres"].tolist()[1] == ["Animation", "Children's", "Musical"]
    assert ds.user_features["gender"].tolist() == ["F", "M"]
    (ml / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3\n")
    with pytest.raises(
        DataFormatError, match=r"ratings\.dat, line 2: expected 4 fields separated by '::', found 3"
    ):
        load_movielens(ml)


def test_csv_latest(tmp_path: Path) -> None:
    ml = tmp_path / "ml-latest-small"
    ml.mkdir()
    (ml / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n6,1,2.5,845553522\n"
    )
    (ml / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,"American President, The (1995)",(no genres listed)\n'
    )
    ds = load_dataset(ml)  # folder detection goes through load_dataset
    assert ds.rating.tolist() == [4.0, 4.5, 2.5]
    assert ds.item_titles().tolist() == ["Toy Story", "American President, The"]
    assert ds.item_features["genres"].tolist() == [["Adventure", "Animation"], []]
    assert ds.item_features["year"].tolist() == [1995.0, 1995.0]
    (ml / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3\n")
    with pytest.raises(DataFormatError, match=r"ratings\.csv, line 3: expected 4 fields"):
        load_movielens(ml)
    (ml / "ratings.csv").write_text("user,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    with pytest.raises(
        DataFormatError, match=r"ratings\.csv, line 1: header lacks column\(s\) \['userId'\]"
    ):
        load_movielens(ml)


def test_not_movielens(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no MovieLens ratings file"):
        load_movielens(tmp_path)
