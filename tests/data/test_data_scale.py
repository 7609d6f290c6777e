"""The large-data path: power-law generator, pyarrow reader == strict reader, dictionary-id saves.

The default run uses 20k-row tables; ``-m slow`` runs the 1M case the benchmark starts from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.data import Dataset, IdMap, filter_kcore, load_table, split
from fusionrec.data.bulk import write_interactions
from fusionrec.data.synthetic import SCALES, make_power_law, power_law_shape


def test_power_law_shape_matches_movielens_25m() -> None:
    assert power_law_shape(25_000_095) == (162_541, 59_047)
    u, i = power_law_shape(SCALES["1m"])
    assert u == round(162_541 / 25.000095) and i == round(59_047 / 25.000095**0.5)


def test_power_law_generator() -> None:
    ds = make_power_law(20_000, seed=3)
    again = make_power_law(20_000, seed=3)
    assert ds.n_interactions == 20_000
    assert np.array_equal(ds.user_idx, again.user_idx) and np.array_equal(ds.item_idx, again.item_idx)
    pairs = ds.user_idx * ds.n_items + ds.item_idx
    assert len(np.unique(pairs)) == len(pairs)  # no duplicate (user, item)
    pop = np.sort(np.bincount(ds.item_idx, minlength=ds.n_items))[::-1]
    assert pop[: ds.n_items // 10].sum() > 0.35 * ds.n_interactions  # head-heavy
    assert set(np.unique(ds.rating)) <= set(np.arange(1, 11) / 2)
    assert ds.timestamp.min() >= 1_420_070_400 and ds.timestamp.max() < 1_420_070_400 + 5 * 365 * 86_400
    other = make_power_law(20_000, seed=4)
    assert not np.array_equal(ds.item_idx, other.item_idx)


def test_power_law_refuses_impossible_sizes() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        make_power_law(1000, n_users=10, n_items=10)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_fast_reader_equals_strict_reader(tmp_path: Path, fmt: str) -> None:
    ds = make_power_law(20_000, seed=1)
    p = write_interactions(ds, tmp_path / f"t.{fmt}")
    fast = load_table(p, engine="fast")
    strict = load_table(p, engine="strict")
    for d in (fast, strict):
        assert np.array_equal(d.users.ids[d.user_idx], ds.users.ids[ds.user_idx])
        assert np.array_equal(d.items.ids[d.item_idx], ds.items.ids[ds.item_idx])
        assert np.array_equal(d.rating, ds.rating) and np.array_equal(d.timestamp, ds.timestamp)
    assert fast.users == strict.users and fast.items == strict.items  # same index order


def test_fast_reader_strips_padded_ids_like_strict(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("user_id,item_id,rating\nu1,i1,1\n u1,i2,2\nu2 ,i1,3\n")
    fast, strict = load_table(p, engine="fast"), load_table(p, engine="strict")
    assert fast.users.ids.tolist() == strict.users.ids.tolist() == ["u1", "u2"]
    assert fast.user_idx.tolist() == strict.user_idx.tolist() == [0, 0, 1]


def test_fast_engine_without_fallback_names_the_file(tmp_path: Path) -> None:
    from fusionrec.errors import DataFormatError

    p = tmp_path / "t.csv"
    p.write_text("user_id,item_id,rating\nu1,i1,inf\n")
    with pytest.raises(DataFormatError, match=r"t\.csv: cannot read with the fast reader: infinite rating"):
        load_table(p, engine="fast")
    with pytest.raises(DataFormatError, match=r"t\.csv, line 2: field 'rating'"):
        load_table(p)  # auto: the strict reader names the line


def test_saved_ids_are_dictionary_columns(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ds = make_power_law(5_000, seed=2)
    path = ds.save(tmp_path / "d")
    t = pq.read_table(path / "interactions.parquet")
    assert pa.types.is_dictionary(t.schema.field("user_id").type)
    back = Dataset.load(path)
    assert back.users == ds.users and np.array_equal(back.user_idx, ds.user_idx)
    assert np.array_equal(back.timestamp, ds.timestamp)


def test_idmap_does_not_merge_trailing_nul() -> None:
    m = IdMap.from_values(["196", "7"])
    assert m.to_idx(["196\x00", "196"], unknown="mask").tolist() == [-1, 0]
    assert "196\x00" not in m
    with pytest.raises(ValueError, match="NUL"):
        IdMap(["196\x00"])


@pytest.mark.slow
def test_one_million_rows_end_to_end(tmp_path: Path) -> None:
    ds = make_power_law(SCALES["1m"], seed=0)
    p = write_interactions(ds, tmp_path / "m.parquet")
    back = load_table(p)
    assert back.n_interactions == SCALES["1m"] and back.users == ds.users
    core, _ = filter_kcore(back, 5, 5)
    sp = split(core, "rs", seed=0)
    assert sp.train.n_interactions + sp.valid.n_interactions + sp.test.n_interactions == core.n_interactions
    again = Dataset.load(sp.train.save(tmp_path / "train"))
    assert np.array_equal(again.item_idx, sp.train.item_idx)
