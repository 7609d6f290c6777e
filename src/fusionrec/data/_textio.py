"""Fast, strict reading of delimited text files with line-accurate error messages.

Field counts are checked for every line at once on the raw bytes (numpy), so a file of a
million lines is validated in milliseconds and the first bad line is named exactly. Only
then is the text handed to pandas' C parser, with quoting off and every value as a string.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.validation import check_finite, control_bytes
from fusionrec.errors import DataFormatError

__all__ = [
    "DelimitedText", "read_delimited", "read_csv_strict", "to_float", "first_bad", "reject_control",
]  # fmt: skip

_SEP_NAMES = {"\t": "TAB", ",": "','", "|": "'|'", "::": "'::'"}
_SUBSTITUTE = "\x1f"  # ASCII unit separator: stands in for a multi-character separator


class DelimitedText:
    """The parsed content of a delimited file: header (if any), string table, line numbers."""

    def __init__(
        self, path: Path, header: list[str] | None, frame: pd.DataFrame, lines: np.ndarray
    ) -> None:
        self.path = path
        self.header = header
        self.frame = frame
        #: 1-based file line number of each row of ``frame``
        self.lines = lines

    def line_of(self, row: int) -> int:
        """File line number (1-based) of table row ``row``."""
        return int(self.lines[row])


def _line_bounds(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets and content lengths (without ``\\n`` / ``\\r\\n``) of every line."""
    nl = np.flatnonzero(data == 10)
    ends = nl if (len(data) == 0 or data[-1] == 10) else np.r_[nl, len(data)]
    starts = np.r_[0, nl + 1][: len(ends)]
    lengths = ends - starts
    has_cr = np.zeros(len(ends), dtype=bool)
    nz = lengths > 0
    has_cr[nz] = data[ends[nz] - 1] == 13
    return starts, lengths - has_cr


_CHUNK = 1 << 26  # bytes scanned at a time for control characters (bounds temporary memory)


def reject_control(path: Path, data: np.ndarray) -> None:
    """Raise naming the line of the first control byte (other than TAB/LF/CR-LF) or lone CR.

    A NUL or other control character inside an id would otherwise be kept (or, worse, dropped
    by numpy's fixed-width strings so ``"196\\0"`` becomes ``"196"``); a lone CR is an old
    Mac line end or a damaged file. Both are refused, never guessed at.
    """
    for lo in range(0, len(data), _CHUNK):
        # one byte of overlap so a CR at the end of a chunk sees its LF
        part = data[lo : lo + _CHUNK + 1]
        bad = control_bytes(part)
        bad = bad[bad < _CHUNK]
        if len(bad):
            p = lo + int(bad[0])
            line = int(np.count_nonzero(data[:p] == 10)) + 1
            col = p - (int(np.flatnonzero(data[:p] == 10)[-1]) + 1 if line > 1 else 0) + 1
            b = int(data[p])
            what = (
                "a carriage return not followed by a line feed (old Mac line ends or a damaged file)"
                if b == 13
                else f"the control character {chr(b)!r}"
            )
            raise DataFormatError(
                path, line, f"{what} at column {col}; data files may not hold control characters"
            )


def _sep_positions(data: np.ndarray, sep: bytes) -> np.ndarray:
    if len(sep) == 1:
        return np.flatnonzero(data == sep[0])
    m = np.ones(max(len(data) - len(sep) + 1, 0), dtype=bool)
    for k, b in enumerate(sep):
        m &= data[k : len(data) - len(sep) + 1 + k] == b
    pos = np.flatnonzero(m)
    if len(pos) > 1:  # drop overlapping matches (e.g. ":::")
        keep = np.ones(len(pos), dtype=bool)
        keep[1:] = np.diff(pos) >= len(sep)
        pos = pos[keep]
    return pos


def read_delimited(
    path: str | os.PathLike,
    sep: str,
    *,
    header: bool,
    n_fields: int | None = None,
    encoding: str = "utf-8",
    require_rows: bool = True,
    expect: str = "",
    numeric: Sequence[int] | Callable[[list[str] | None], Sequence[int]] = (),
) -> DelimitedText:
    """Read a separator-delimited file with no quoting, every value a string.

    Columns listed in ``numeric`` (or returned by it, given the header) are parsed straight
    to float64 when every value is a number (fast path); otherwise all columns stay strings
    and the caller's :func:`to_float` names the first bad line.

    Args:
        path: the file.
        sep: field separator (one or more characters, e.g. ``"\\t"`` or ``"::"``).
        header: whether the first non-blank line is a header; its field count then fixes
            ``n_fields`` when that is not given.
        n_fields: the number of fields every line must have.
        encoding: text encoding (``"latin-1"`` for the MovieLens files).
        require_rows: raise when the file has no data lines.
        expect: words describing a data line, added to the wrong-field-count message.

    Raises:
        DataFormatError: naming the file and line, for a missing/empty file, a line with the
            wrong number of fields, or text that does not decode.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, None, "file not found") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    data = np.frombuffer(raw, dtype=np.uint8)
    reject_control(path, data)
    starts, lengths = _line_bounds(data)
    sep_b = sep.encode(encoding)
    pos = _sep_positions(data, sep_b)
    n_lines = len(starts)
    counts = (
        np.bincount(np.searchsorted(starts, pos, side="right") - 1, minlength=n_lines)[:n_lines] + 1
    )
    nonblank = np.flatnonzero(lengths > 0)
    if len(nonblank) == 0:
        raise DataFormatError(path, None, "empty file" + (f", expected {expect}" if expect else ""))
    head_fields: list[str] | None = None
    if header:
        h = nonblank[0]
        head_text = raw[starts[h] : starts[h] + lengths[h]].decode(encoding, errors="replace")
        head_fields = head_text.split(sep)
        if n_fields is None:
            n_fields = len(head_fields)
        elif len(head_fields) != n_fields:
            raise DataFormatError(
                path, int(h) + 1, f"header has {len(head_fields)} fields, expected {n_fields}"
            )
        rows = nonblank[1:]
    else:
        rows = nonblank
        if n_fields is None:
            n_fields = int(counts[rows[0]])
    if require_rows and len(rows) == 0:
        raise DataFormatError(path, int(nonblank[0]) + 2, "no data lines after the header")
    bad = np.flatnonzero(counts[rows] != n_fields)
    if len(bad):
        r = rows[bad[0]]
        name = _SEP_NAMES.get(sep, repr(sep))
        raise DataFormatError(
            path,
            int(r) + 1,
            f"expected {n_fields} fields separated by {name}, found {int(counts[r])}"
            + (f" ({expect})" if expect else ""),
        )
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = int(np.searchsorted(starts, e.start, side="right"))
        raise DataFormatError(path, line, f"text is not valid {encoding}: {e.reason}") from None
    use_sep = sep
    if len(sep) > 1:
        if _SUBSTITUTE in text:
            raise DataFormatError(path, None, "file contains the control character \\x1f")
        text = text.replace(sep, _SUBSTITUTE)
        use_sep = _SUBSTITUTE
    if len(rows):
        num = list(numeric(head_fields) if callable(numeric) else numeric)
        kw = dict(
            sep=use_sep,
            header=None,
            names=list(range(n_fields)),
            skiprows=1 if header else 0,
            quoting=csv.QUOTE_NONE,
            na_filter=False,
            skip_blank_lines=True,
            engine="c",
        )
        frame = None
        if num:
            try:
                dtypes = {i: (np.float64 if i in num else str) for i in range(n_fields)}
                frame = pd.read_csv(io.StringIO(text), dtype=dtypes, **kw)
            except (ValueError, TypeError):
                frame = None  # some value is not a number: the slow path finds which
        if frame is None:
            frame = pd.read_csv(io.StringIO(text), dtype=str, **kw)
        if header and nonblank[0] != 0:
            # leading blank lines before the header: pandas skipped them, then one line
            frame = frame.iloc[len(frame) - len(rows) :].reset_index(drop=True)
    else:
        frame = pd.DataFrame({i: pd.Series([], dtype=str) for i in range(n_fields)})
    if len(frame) != len(rows):  # pragma: no cover - defensive: counts and parser disagree
        raise DataFormatError(path, None, f"parsed {len(frame)} rows, expected {len(rows)}")
    return DelimitedText(path, head_fields, frame, rows + 1)


_PANDAS_LINE = re.compile(r"line (\d+)")


def read_csv_strict(
    path: str | os.PathLike,
    sep: str = ",",
    encoding: str = "utf-8",
    numeric: Sequence[str] = (),
) -> DelimitedText:
    """Read a quoted CSV with a header (values as strings); wrong field counts name the line.

    Field counts are checked on the raw bytes; only lines holding a quote character are
    re-counted with the ``csv`` module. A record must fit on one physical line (true for the
    MovieLens files); a quoted field spanning lines is reported as a wrong field count.
    Columns named in ``numeric`` are parsed straight to float64 when all values are numbers.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, None, "file not found") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    data = np.frombuffer(raw, dtype=np.uint8)
    reject_control(path, data)
    starts, lengths = _line_bounds(data)
    n_lines = len(starts)
    pos = _sep_positions(data, sep.encode(encoding))
    counts = (
        np.bincount(np.searchsorted(starts, pos, side="right") - 1, minlength=n_lines)[:n_lines] + 1
    )
    quotes = np.flatnonzero(data == ord('"'))
    for ln in np.unique(np.searchsorted(starts, quotes, side="right") - 1).tolist():
        text = raw[starts[ln] : starts[ln] + lengths[ln]].decode(encoding, errors="replace")
        counts[ln] = len(next(csv.reader([text], delimiter=sep), []))
    nonblank = np.flatnonzero(lengths > 0)
    if len(nonblank) == 0:
        raise DataFormatError(path, None, "empty file, expected a header line")
    n_fields = int(counts[nonblank[0]])
    rows = nonblank[1:]
    bad = np.flatnonzero(counts[rows] != n_fields)
    if len(bad):
        r = rows[bad[0]]
        raise DataFormatError(
            path,
            int(r) + 1,
            f"expected {n_fields} fields separated by {_SEP_NAMES.get(sep, repr(sep))}, found {int(counts[r])}",
        )
    try:
        kw = dict(sep=sep, keep_default_na=False, na_filter=False, encoding=encoding, engine="c")
        frame = None
        if numeric:  # fast path: named columns straight to float64 when they are all numbers
            try:
                frame = pd.read_csv(
                    io.BytesIO(raw),
                    dtype=defaultdict(lambda: str, dict.fromkeys(numeric, np.float64)),
                    **kw,
                )
            except (ValueError, TypeError):
                frame = None
        if frame is None:
            frame = pd.read_csv(io.BytesIO(raw), dtype=str, **kw)
    except pd.errors.EmptyDataError:
        raise DataFormatError(path, None, "no header line (the file holds only blanks)") from None
    except pd.errors.ParserError as e:
        m = _PANDAS_LINE.search(str(e))
        raise DataFormatError(path, int(m.group(1)) if m else None, f"malformed CSV: {e}") from None
    except UnicodeDecodeError as e:
        raise DataFormatError(path, None, f"text is not valid {encoding}: {e.reason}") from None
    if len(frame) != len(rows):
        raise DataFormatError(
            path,
            None,
            f"parsed {len(frame)} records from {len(rows)} lines (multi-line quoted field?)",
        )
    return DelimitedText(path, [str(c) for c in frame.columns], frame, rows + 1)


def first_bad(mask: np.ndarray) -> int | None:
    """Index of the first True in ``mask`` (None when there is none)."""
    idx = np.flatnonzero(mask)
    return int(idx[0]) if len(idx) else None


def to_float(
    values: pd.Series, src: DelimitedText, field: str, *, allow_empty: bool = True
) -> np.ndarray:
    """Convert a string column to float64; the first non-number raises naming file and line."""
    if pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values):
        out = values.to_numpy(np.float64)
        if allow_empty or not np.isnan(out).any():
            check_finite(out, path=src.path, field=field, line_of=src.line_of)
            return out
    s = values.astype(str)
    stripped = s.str.strip()
    empty = (stripped == "").to_numpy()
    out = pd.to_numeric(stripped.where(~empty, None), errors="coerce").to_numpy(np.float64)
    # a literal "nan" parses to NaN on purpose and is not flagged
    bad = np.isnan(out) & ~empty & stripped.str.lower().ne("nan").to_numpy()
    if not allow_empty:
        bad |= empty
    r = first_bad(bad)
    if r is not None:
        raise DataFormatError(
            src.path, src.line_of(r), f"field {field!r}: expected a number, got {s.iloc[r]!r}"
        )
    check_finite(out, path=src.path, field=field, line_of=src.line_of, raw=s)
    return out
