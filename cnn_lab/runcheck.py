"""Reading a run's files strictly: each one decoded and checked, or ``DamagedRunFile``.

Run folders travel (copied between machines, synced, kept for months, edited by hand), so a
file can arrive cut short or broken even though it was written atomically. The readers here
never guess: a file that does not hold what it should raises ``DamagedRunFile``, which names
the file and what is wrong in one line (``PROBLEMS``). What each run file must hold, file by
file, is checked where it is read (``runio``, ``report.load``).
"""
from __future__ import annotations

import csv
import io
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

# What can be wrong with a run file, by kind (``DamagedRunFile.kind``), in the words of the
# one-line message; the report words the same kinds in Chinese (report.damage).
PROBLEMS = {
    "missing": "is missing",
    "unreadable": "cannot be read ({reason})",
    "empty": "is empty",
    "cut_line": "is cut short: line {line} ends mid-row",
    "cut_array": "is cut short: it holds less data than its header declares",
    "syntax": "is not valid {format} (line {line}: {reason})",
    "not_npy": "is not a NumPy array file",
    "not_mapping": "holds a {got}, not a mapping of names to values",
    "lacks_field": "lacks the field(s) {names}",
    "bad_field": "has {name}: {value}, which is not {expected}",
    "lacks_column": "lacks the column(s) {names}",
    "row_fields": "line {line} has {n} fields where the header has {expected}",
    "not_number": "line {line}: {column} is {value!r}, not a number",
    "out_of_range": "line {line}: {column} is {value}, outside {allowed}",
    "epoch_order": "numbers its epochs {epochs}, not 1, 2, 3, ... in order",
    "epoch_rows": "has {rows} epoch row(s) where run.json records {done} finished epoch(s)",
    "grad_epochs": "ends at epoch {last} where run.json records {done} finished epoch(s)",
    "uneven_epochs": "has {n} row(s) for epoch {epoch} where epoch {first} has {m}",
    "classes": "has the rows {rows}, not the ten classes in order",
    "total": "counts {total} test images where the run has {n}",
    "shape": "holds an array of shape {shape} ({dtype}) where the run's {n} test images need ({n},) uint8",
    "not_class": "holds {value}, which is not a class (0-9)",
}


class DamagedRunFile(ValueError):
    """A run file that does not hold what it should; ``str(err)`` is one line: the file and
    what is wrong. ``kind`` (a key of ``PROBLEMS``) and ``details`` say the same for other wordings."""

    def __init__(self, path: str | os.PathLike, kind: str, **details: Any):
        self.path, self.kind, self.details = Path(path), kind, details
        super().__init__(f"{self.path}: {self.problem}")

    @property
    def problem(self) -> str:
        return PROBLEMS[self.kind].format(**self.details)


def read_text(path: str | os.PathLike) -> str:
    """A run file's text; ``DamagedRunFile`` when it is missing, unreadable or empty."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DamagedRunFile(path, "missing") from None
    except UnicodeDecodeError:
        raise DamagedRunFile(path, "unreadable", reason="not UTF-8 text") from None
    except OSError as err:
        raise DamagedRunFile(path, "unreadable", reason=err.strerror or type(err).__name__) from None
    if not text.strip():
        raise DamagedRunFile(path, "empty")
    return text


_TYPE_WORDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", dict: "a mapping",
               list: "a list"}


def check_fields(path: str | os.PathLike, values: Any, hints: Mapping[str, Any], required: Iterable[str]) -> None:
    """A decoded mapping: the ``required`` names present, each known name's value of its type hint."""
    if not isinstance(values, dict):
        raise DamagedRunFile(path, "not_mapping", got=type(values).__name__)
    lacking = [k for k in required if k not in values]
    if lacking:
        raise DamagedRunFile(path, "lacks_field", names=", ".join(lacking))
    for name, hint in hints.items():
        value = values.get(name)
        kinds = [typing.get_origin(h) or h for h in
                 (typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,))]
        if value is not None and not any(_is(value, k) for k in kinds):
            expected = " or ".join(_TYPE_WORDS.get(k, k.__name__) for k in kinds if k is not type(None))
            raise DamagedRunFile(path, "bad_field", name=name, value=repr(value), expected=expected)


def _is(value: Any, kind: type) -> bool:
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) if kind is float else isinstance(value, kind)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file decoded; ``DamagedRunFile`` when it is missing, empty or not valid JSON."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise DamagedRunFile(path, "syntax", format="JSON", line=err.lineno, reason=err.msg) from None


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file decoded; ``DamagedRunFile`` when it is missing, empty or not valid YAML."""
    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise DamagedRunFile(path, "syntax", format="YAML", line=mark.line + 1 if mark else 1,
                             reason=getattr(err, "problem", None) or type(err).__name__) from None


def read_npy(path: str | os.PathLike) -> Any:
    """The array in ``path``, or None when the file is absent (runs made before it existed);
    ``DamagedRunFile`` when it is empty, cut short or not a NumPy array file."""
    import numpy as np

    path = Path(path)
    if not path.exists():
        return None
    data = path.read_bytes()
    if not data:
        raise DamagedRunFile(path, "empty")
    try:  # from memory: numpy then says "EOF: reading array data, expected 200 bytes got 72"
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError) as err:
        raise DamagedRunFile(path, "cut_array" if str(err).startswith("EOF") else "not_npy") from None


def read_table(path: str | os.PathLike, required: Iterable[str], text_columns: Iterable[str] = ()) -> Any:
    """A run CSV (as ``write_csv`` writes it) as a DataFrame, read strictly: ``DamagedRunFile``
    for an empty file, a last line without its newline (a copy cut mid-line), a row with more
    or fewer fields than the header, a ``required`` column missing, or a value that is not a
    number outside ``text_columns``. A damaged row is never read as a row of NaNs."""
    import pandas as pd

    text = read_text(path)
    if not text.endswith("\n"):
        raise DamagedRunFile(path, "cut_line", line=text.count("\n") + 1)
    header, *rows = list(csv.reader(io.StringIO(text)))
    lacking = [c for c in required if c not in header]
    if lacking:
        raise DamagedRunFile(path, "lacks_column", names=", ".join(lacking))
    for line, row in enumerate(rows, 2):
        if len(row) != len(header):
            raise DamagedRunFile(path, "row_fields", line=line, n=len(row), expected=len(header))
    raw = pd.DataFrame(rows, columns=header, dtype=str)
    for col in header:
        bad = pd.to_numeric(raw[col], errors="coerce").isna() & (raw[col] != "") & (raw[col].str.lower() != "nan")
        if col not in text_columns and bad.any():
            line = int(bad.to_numpy().nonzero()[0][0])
            raise DamagedRunFile(path, "not_number", line=line + 2, column=col, value=raw[col].iloc[line])
    return pd.read_csv(io.StringIO(text))
