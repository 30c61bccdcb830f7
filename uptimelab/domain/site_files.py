"""Site files: the rows of a CSV, JSON or YAML file, before validation."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml

from ..errors import InvalidSiteFileError
from ..text import one_line


def read_site_rows(path: Path, *, format: str | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV, JSON or YAML file (by ``format`` or the file's extension)."""
    fmt = (format or path.suffix.lstrip(".")).lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidSiteFileError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if fmt == "csv":
            rows: Any = [
                {k: v for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(io.StringIO(text))
            ]
        elif fmt == "json":
            rows = json.loads(text)
        elif fmt in ("yaml", "yml"):
            rows = yaml.safe_load(text)
        else:
            raise InvalidSiteFileError(f"{path}: unknown format {fmt!r} (use csv, json or yaml)")
    except (ValueError, csv.Error, yaml.YAMLError) as exc:
        raise InvalidSiteFileError(f"{path}: not valid {fmt}: {one_line(exc)}") from exc
    if isinstance(rows, dict) and isinstance(rows.get("sites"), list):
        rows = rows["sites"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidSiteFileError(f"{path}: expected a list of rows with a 'url' column")
    return rows
