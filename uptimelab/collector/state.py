"""The collector's published state: a small JSON file in the data directory, written after every
cycle, read by ``status`` and ``health`` (which may run in other processes)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any

STATE_FILE = "collector-state.json"


def write_collector_state(data_dir: Path, state: dict[str, Any]) -> None:
    """Publish a collector's status atomically in ``data_dir`` (best effort), for ``status`` and
    ``health``, which may run in other processes."""
    state = dict(state)
    state["pid"] = os.getpid()
    state["host"] = socket.gethostname()
    state["updated_at"] = dt.datetime.now(dt.UTC).isoformat()
    path = data_dir / STATE_FILE
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".part")
        temporary.write_text(json.dumps(state, default=str, indent=1))
        os.replace(temporary, path)
    except OSError:
        pass  # status is a convenience; the collector must not fail for it


def read_collector_state(data_dir: Path) -> dict[str, Any] | None:
    """The last state a collector published in ``data_dir``, or None."""
    try:
        state: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state
