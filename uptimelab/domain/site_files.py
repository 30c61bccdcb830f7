"""Site files: the rows of a CSV, JSON or YAML file, before validation.

Whatever is wrong with a file (not UTF-8, not parseable, nested too deep, a CSV row longer than
its header) is one InvalidSiteFileError naming the file and, where there is one, the row.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidSiteFileError
from ..text import one_line

FORMATS = ("csv", "json", "yaml", "yml")
# Spreadsheets in many locales save "CSV" with semicolons (or tabs); the header, a list of
# column names, says which: none of them holds a delimiter.
_DELIMITERS = (",", ";", "\t")


def read_site_rows(path: Path, *, format: str | None = None) -> list[dict[Any, Any]]:
    """Rows of a CSV, JSON or YAML file (by ``format`` or the file's extension), as parsed: the
    keys and values are not checked here. A UTF-8 byte order mark is allowed; a CSV file may be
    delimited by ``,``, ``;`` or tabs (the header says which).

    Raises InvalidSiteFileError naming ``path`` (and the row, for a CSV row longer than the
    header) when the file cannot be read or parsed.
    """
    if path.is_dir():
        raise InvalidSiteFileError(f"{path} is a directory: give a CSV, JSON or YAML file")
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise InvalidSiteFileError(f"{path}: unknown format {fmt!r} (use csv, json or yaml)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidSiteFileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidSiteFileError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); save it as UTF-8"
        ) from None
    if not text.strip():
        raise InvalidSiteFileError(f"no sites in {path}")
    try:
        if fmt == "csv":
            rows: Any = _csv_rows(path, text)
        elif fmt == "json":
            rows = json.loads(text)
        else:
            rows = yaml.safe_load(text)
    except InvalidSiteFileError:
        raise
    except RecursionError:
        raise InvalidSiteFileError(f"{path}: not valid {fmt}: nested too deeply") from None
    except (ValueError, csv.Error, yaml.YAMLError) as exc:
        raise InvalidSiteFileError(f"{path}: not valid {fmt}: {one_line(exc)}") from exc
    if rows is None:  # a YAML file of comments only
        raise InvalidSiteFileError(f"no sites in {path}")
    if isinstance(rows, dict) and isinstance(rows.get("sites"), list):
        rows = rows["sites"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidSiteFileError(f"{path}: expected a list of rows with a 'url' column")
    if not rows:  # an empty list, a CSV header without rows: the same answer as an empty file
        raise InvalidSiteFileError(f"no sites in {path}")
    return rows


def _csv_rows(path: Path, text: str) -> list[dict[str, str]]:
    header = text.lstrip("\r\n").partition("\n")[0]
    delimiter = next((d for d in _DELIMITERS if d in header), ",")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    columns: list[str] | None = None
    rows: list[dict[str, str]] = []
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue  # blank lines, as csv.DictReader skips them
        if columns is None:
            columns = [f.strip() for f in fields]
            # A URL where a column name belongs: the file has no header line.
            if "url" not in columns and any("://" in c for c in columns):
                raise InvalidSiteFileError(
                    f"{path}: line {reader.line_num} is a row, not a header: a CSV site file "
                    "starts with its column names, e.g. url,name"
                )
            twice = sorted({c for c in columns if columns.count(c) > 1})
            if twice:
                raise InvalidSiteFileError(
                    f"{path}: column {twice[0]!r} appears twice in the header"
                )
            continue
        if len(fields) > len(columns):
            raise InvalidSiteFileError(
                f"{path}: row {len(rows) + 1} (line {reader.line_num}) has {len(fields)} fields "
                f"but the header has {len(columns)}"
            )
        # An empty cell is kept: on an existing site it resets the column to its default.
        rows.append(dict(zip(columns, fields, strict=False)))
    return rows
