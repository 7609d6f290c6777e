"""fusionrec privacy keygen / prepare / rekey from the command line."""

from __future__ import annotations

from pathlib import Path

from fusionrec.cli.main import main
from fusionrec.data.dataset import Dataset
from fusionrec.privacy import PseudonymKey, read_marker


def _run(args: list[str]) -> int:
    return main(args)


def test_keygen_prepare_rekey(tmp_path: Path) -> None:
    csv = tmp_path / "inter.csv"
    csv.write_text("user_id,item_id\n" + "".join(f"carol-{u},i{i}\n" for u in range(4) for i in range(3)))
    k1, k2 = tmp_path / "k1", tmp_path / "k2"
    assert _run(["privacy", "keygen", "--out", str(k1)]) == 0
    assert _run(["privacy", "keygen", "--out", str(k2)]) == 0
    first = k1.read_text()
    assert _run(["privacy", "keygen", "--out", str(k1)]) == 1  # refuses to overwrite
    assert k1.read_text() == first
    out = tmp_path / "ds"
    assert _run(["privacy", "prepare", str(csv), "--out", str(out), "--key", str(k1)]) == 0
    key1, key2 = PseudonymKey.load(k1), PseudonymKey.load(k2)
    raw = [f"carol-{u}" for u in range(4)]
    assert sorted(Dataset.load(out).users.ids.tolist()) == sorted(key1.pseudonymise(raw).tolist())
    ids = tmp_path / "raw.txt"
    ids.write_text("\n".join(raw))
    assert _run(["privacy", "rekey", str(out), "--old-key", str(k1), "--new-key", str(k2), "--raw-ids", str(ids)]) == 0
    assert read_marker(out)["key_fingerprint"] == key2.fingerprint
    assert sorted(Dataset.load(out).users.ids.tolist()) == sorted(key2.pseudonymise(raw).tolist())
    assert _run(["privacy", "rekey", str(out), "--old-key", str(k1), "--new-key", str(k2), "--raw-ids", str(ids)]) == 1
    assert read_marker(out)["key_fingerprint"] == key2.fingerprint  # wrong old key: unchanged
