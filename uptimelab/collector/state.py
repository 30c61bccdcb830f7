"""The collector's published state: a small JSON file in the data directory, written after every
cycle, read by ``status`` and ``health`` (which may run in other processes).

Its shape is :class:`~uptimelab.domain.state.CollectorState`.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..domain.state import CollectorState
from ..storage.local_state import private_dir, write_private

STATE_FILE = "collector-state.json"


def write_collector_state(
    data_dir: Path, state: CollectorState | Mapping[str, Any]
) -> CollectorState:
    """Publish a collector's state atomically in ``data_dir`` (best effort: a failed write is
    not an error), stamped with this process and the time. Returns what was published."""
    published = CollectorState.model_validate(state).model_copy(
        update={
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "updated_at": dt.datetime.now(dt.UTC),
        }
    )
    path = data_dir / STATE_FILE
    try:
        private_dir(path.parent)
        write_private(path, published.model_dump_json(indent=1).encode())
    except OSError:
        pass  # status is a convenience; the collector must not fail for it
    return published


def read_collector_state(data_dir: Path) -> CollectorState | None:
    """The last state a collector published in ``data_dir``; None when there is none or it
    cannot be read."""
    try:
        return CollectorState.model_validate_json((data_dir / STATE_FILE).read_bytes())
    except (OSError, ValidationError):
        return None
