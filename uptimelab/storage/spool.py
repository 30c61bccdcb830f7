"""The spool: cycles that could not be stored yet, kept durably on local disk.

Each cycle is one segment file in the spool folder of its database's local state
(``<data dir>/databases/<identity>/spool``): written to a temporary name, flushed and fsynced,
then renamed (and the directory fsynced), so a segment is either whole or absent, even after
SIGKILL or a power cut. Names sort in time order and carry the cycle's id, so several collectors
of one database on one box write segments of their own; replay takes the oldest first under a
lock between processes and deletes a segment only after its transaction committed. A segment
that can never be stored (damaged, or refused by the database for its data) is moved to
``quarantine/`` and is loud in health; it never blocks the segments after it. Reaching the size
cap is a loud error, never a silent drop. Files are private (0600 in 0700 folders).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.pings import PING_COLUMNS
from ..errors import StoreError
from .local_state import exclusive, fsync_directory, private_dir, stale_partials, write_private

if TYPE_CHECKING:
    from .models import MonitoringCycle

log = logging.getLogger("uptimelab.spool")

PingRow = tuple[Any, ...]
_WIDTH = len(PING_COLUMNS)
_CERT_AT = PING_COLUMNS.index("cert_expires_at")


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
            "quarantined": self.quarantined(),
        }

    def append(self, cycle: MonitoringCycle | None, rows: Sequence[PingRow]) -> Segment:
        """Durably keep one cycle, or a batch of pings (``cycle`` None). Raises SpoolFullError
        (and logs it) at the size cap."""
        head = None if cycle is None else cycle.model_dump(mode="json")
        lines = [json.dumps({"cycle": head})]
        what = "a batch" if cycle is None else f"cycle {cycle.id}"
        lines += [json.dumps([_encode(v) for v in row]) for row in rows]
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            used = sum(s.bytes for s in self.segments())
            if used + len(data) > self.max_bytes:
                self.dropped_pings += len(rows)
                if self.full_since is None:
                    self.full_since = dt.datetime.now(dt.UTC)
                log.error(
                    "spool full (%d of %d bytes): %d pings of %s are NOT stored",
                    used,
                    self.max_bytes,
                    len(rows),
                    what,
                    extra={"component": "spool", "category": "full"},
                )
                raise SpoolFullError(
                    f"the spool is full ({used} of {self.max_bytes} bytes); "
                    f"{len(rows)} pings were dropped"
                )
            self.full_since = None
            private_dir(self.directory)
            at = dt.datetime.now(dt.UTC) if cycle is None else cycle.started_at
            stamp = at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
            final = self.directory / f"{stamp}-{uuid.uuid4() if cycle is None else cycle.id}.spool"
            write_private(final, data, durable=True)
        log.warning(
            "spooled %d pings of %s (%d bytes)",
            len(rows),
            what,
            len(data),
            extra={"component": "spool", "category": "append"},
        )
        return Segment(final, len(data))

    @staticmethod
    def read(segment: Segment) -> tuple[MonitoringCycle | None, list[PingRow]] | None:
        """The cycle and ping rows of a segment; None when it is gone (another collector of the
        same database replayed it). Raises StoreError for a damaged one."""
        # Imported here: `uptimelab status` counts the spool without loading SQLModel.
        from .models import MonitoringCycle

        try:
            with open(segment.path, encoding="utf-8") as handle:
                head = json.loads(handle.readline())
                cycle = (
                    None if head["cycle"] is None else MonitoringCycle.model_validate(head["cycle"])
                )
                rows = []
                for line in handle:
                    site_id, at, *rest = json.loads(line)
                    # A segment spooled before the rows grew has fewer fields: NULL the rest.
                    rest += [None] * (_WIDTH - 2 - len(rest))
                    if rest[_CERT_AT - 2] is not None:
                        rest[_CERT_AT - 2] = dt.datetime.fromisoformat(rest[_CERT_AT - 2])
                    rows.append((uuid.UUID(site_id), dt.datetime.fromisoformat(at), *rest))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"spool segment {segment.path.name} is damaged: {exc}") from exc
        return cycle, rows

    def remove(self, segment: Segment) -> None:
        """Delete a segment once its cycle is committed."""
        segment.path.unlink(missing_ok=True)
        fsync_directory(self.directory)

    def quarantine(self, segment: Segment, reason: str) -> None:
        """Move a segment that can never be stored aside (kept for a human, counted in health),
        so that replay goes on with the segments after it."""
        target = self.quarantine_dir
        private_dir(target)
        with contextlib.suppress(FileNotFoundError):  # another collector moved it first
            os.replace(segment.path, target / segment.path.name)
            write_private(target / f"{segment.path.stem}.reason", reason.encode())
        log.error(
            "quarantined spool segment %s in %s: %s",
            segment.path.name,
            target,
            reason,
            extra={"component": "spool", "category": "quarantined"},
        )

    @property
    def quarantine_dir(self) -> Path:
        return self.directory / "quarantine"

    def quarantined(self) -> int:
        """How many segments wait in quarantine."""
        if not self.quarantine_dir.is_dir():
            return 0
        return sum(1 for _ in self.quarantine_dir.glob("*.spool"))

    def replay_lock(self) -> contextlib.AbstractContextManager[bool]:
        """Held while replaying: between collectors of the same database on one box, one
        replays at a time (the others go on spooling). Yields whether it was taken."""
        private_dir(self.directory)
        return exclusive(self.directory / ".replay.lock", wait=False)

    def clean_partials(self) -> None:
        """Remove temporary files left by a crash in the middle of an append."""
        if self.directory.is_dir():
            for part in stale_partials(self.directory):
                part.unlink(missing_ok=True)
