"""The spool: cycles that could not be stored yet, kept durably on local disk.

Each cycle is one segment file in ``<data dir>/spool``: written to a temporary name, flushed and
fsynced, then renamed (and the directory fsynced), so a segment is either whole or absent, even
after SIGKILL or a power cut. Names sort in time order; replay takes the oldest first and deletes
a segment only after its transaction committed. Reaching the size cap is a loud error, never a
silent drop.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .models import MonitoringCycle

log = logging.getLogger("uptimelab.spool")

PingRow = tuple[Any, ...]


class SpoolFullError(StoreError):
    """The spool reached its size cap: the cycle's pings could not be kept."""


@dataclass(frozen=True)
class Segment:
    """One spooled cycle on disk."""

    path: Path
    bytes: int


def _encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


class Spool:
    """A directory of segment files, one per cycle. Safe to use from several threads."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.dropped_pings = 0
        self.full_since: dt.datetime | None = None
        self._lock = threading.Lock()

    def segments(self) -> list[Segment]:
        """The spooled cycles, oldest first (partial temporary files are not segments)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.glob("*.spool")):
            try:
                found.append(Segment(path, path.stat().st_size))
            except FileNotFoundError:  # replayed meanwhile
                continue
        return found

    def backlog(self) -> dict[str, Any]:
        """Segments, bytes and whether the cap was hit, for status and health."""
        segments = self.segments()
        return {
            "segments": len(segments),
            "bytes": sum(s.bytes for s in segments),
            "max_bytes": self.max_bytes,
            "full": self.full_since is not None,
            "full_since": None if self.full_since is None else self.full_since.isoformat(),
            "dropped_pings": self.dropped_pings,
        }

    def append(self, cycle: MonitoringCycle, rows: Sequence[PingRow]) -> Segment:
        """Durably keep one cycle. Raises SpoolFullError (and logs it) at the size cap."""
        lines = [json.dumps({"cycle": cycle.model_dump(mode="json")})]
        lines += [json.dumps([_encode(v) for v in row]) for row in rows]
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            used = sum(s.bytes for s in self.segments())
            if used + len(data) > self.max_bytes:
                self.dropped_pings += len(rows)
                if self.full_since is None:
                    self.full_since = dt.datetime.now(dt.UTC)
                log.error(
                    "spool full (%d of %d bytes): %d pings of cycle %s are NOT stored",
                    used,
                    self.max_bytes,
                    len(rows),
                    cycle.id,
                    extra={"component": "spool", "category": "full"},
                )
                raise SpoolFullError(
                    f"the spool is full ({used} of {self.max_bytes} bytes); "
                    f"{len(rows)} pings were dropped"
                )
            self.full_since = None
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = cycle.started_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            final = self.directory / f"{stamp}-{cycle.id}.spool"
            temporary = final.with_suffix(".part")
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, final)
            _fsync_directory(self.directory)
        log.warning(
            "spooled %d pings of cycle %s (%d bytes)",
            len(rows),
            cycle.id,
            len(data),
            extra={"component": "spool", "category": "append"},
        )
        return Segment(final, len(data))

    @staticmethod
    def read(segment: Segment) -> tuple[MonitoringCycle, list[PingRow]]:
        """The cycle and ping rows of a segment. Raises StoreError for a damaged one."""
        try:
            with open(segment.path, encoding="utf-8") as handle:
                head = json.loads(handle.readline())
                cycle = MonitoringCycle.model_validate(head["cycle"])
                rows = []
                for line in handle:
                    site_id, at, *rest = json.loads(line)
                    rows.append((uuid.UUID(site_id), dt.datetime.fromisoformat(at), *rest))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"spool segment {segment.path.name} is damaged: {exc}") from exc
        return cycle, rows

    def remove(self, segment: Segment) -> None:
        """Delete a segment once its cycle is committed."""
        segment.path.unlink(missing_ok=True)
        _fsync_directory(self.directory)

    def quarantine(self, segment: Segment) -> None:
        """Move a damaged segment aside (kept for a human), so replay can go on."""
        target = self.directory / "damaged"
        target.mkdir(exist_ok=True)
        os.replace(segment.path, target / segment.path.name)
        log.error(
            "moved damaged spool segment %s to %s",
            segment.path.name,
            target,
            extra={"component": "spool", "category": "damaged"},
        )

    def clean_partials(self) -> None:
        """Remove temporary files left by a crash in the middle of an append."""
        if self.directory.is_dir():
            for part in self.directory.glob("*.part"):
                part.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
