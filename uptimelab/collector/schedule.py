"""When each site is due: per-site cadence on a stable grid, spread evenly over the interval.

A site with interval I is due at the points ``phase + k * I`` of a grid whose phase comes from its
id (the same in every process, so collectors that hand a site over keep its cadence). After a
probe at time t the next due point is the first grid point at or after ``t + I / 2``: a late
probe never makes the next one come sooner than half an interval, missed points are skipped
rather than stacked, and the site is back on its grid after one probe (once, after a first
probe or a catch-up off the grid, that gap is up to 1.5 intervals; stepping back by half an
interval instead was tried: it costs an extra probe of half the fleet after every start, and
probes half an interval apart). While a site's latest ping
is down and it has a retry interval R, it is due again at ``t + R``. A site never probed is due
at once; so is one whose due point passed: under overload the most overdue go first.

Times here are wall-clock seconds since the epoch (grids are shared across machines).
"""

from __future__ import annotations

import heapq
import math
import uuid
from collections.abc import Iterable, Mapping

from ..domain.sites import ActiveSite

_TOLERANCE_S = 0.001


def phase_of(site_id: uuid.UUID, interval_s: float) -> float:
    """The site's offset in its interval (seconds): stable, and uniform over the interval."""
    interval_ms = max(1, round(interval_s * 1000))
    return (site_id.int % interval_ms) / 1000


def next_due(site_id: uuid.UUID, interval_s: float, probed_at: float) -> float:
    """The first grid point of the site at or after ``probed_at + interval_s / 2``."""
    phase = phase_of(site_id, interval_s)
    # A grid point within a millisecond of the bound counts as at it: floating point at epoch
    # seconds would otherwise push an exact half-interval step to the grid point after.
    k = math.ceil((probed_at + interval_s / 2 - phase - _TOLERANCE_S) / interval_s)
    return phase + k * interval_s


class Schedule:
    """The sites this collector holds and when each is due (a heap, lazily cleaned)."""

    def __init__(self, default_interval_s: float) -> None:
        self.default_interval_s = default_interval_s
        self._sites: dict[uuid.UUID, ActiveSite] = {}
        self._due: dict[uuid.UUID, float] = {}
        # (due, site): ties are rare and uuids compare, so no counter (36 B a site less).
        self._heap: list[tuple[float, uuid.UUID]] = []
        self._in_flight: set[uuid.UUID] = set()
        # The newest ping of each site, and the few sites whose newest ping is down (a tuple
        # (at, down) per site cost 56 B more).
        self._last: dict[uuid.UUID, float] = {}
        self._down: set[uuid.UUID] = set()
        self.wake_at = float("inf")  # when the dispatcher's wait ends by itself (see due_sooner)

    def __len__(self) -> int:
        return len(self._sites)

    def __contains__(self, site_id: object) -> bool:
        return site_id in self._sites

    def interval_s(self, site: ActiveSite) -> float:
        return site.interval_ms / 1000 if site.interval_ms else self.default_interval_s

    def hold(
        self,
        sites: Iterable[ActiveSite],
        last: Mapping[uuid.UUID, tuple[float, bool]],
        now: float,
    ) -> None:
        """Hold exactly ``sites`` from now on. A site already held keeps its due time (unless its
        interval changed); a new one is due by its latest ping (``last``: probed at, down) or at
        once. Sites no longer held are dropped (a probe in flight finishes)."""
        wanted = {s.id: s for s in sites}
        for site_id in list(self._sites):
            if site_id not in wanted:
                del self._sites[site_id]
                self._due.pop(site_id, None)
                self._forget(site_id)
        for site_id, site in wanted.items():
            old = self._sites.get(site_id)
            if old == site:  # keep the object held: a reload would otherwise copy every site
                site = old
            self._sites[site_id] = site
            if site_id in self._in_flight:
                continue
            if old is not None and old.interval_ms == site.interval_ms and site_id in self._due:
                continue
            seen = self._newest(last.get(site_id), site_id)
            if seen is None:
                self._set(site_id, now)
            else:
                self._forget(site_id)
                self.probed(site_id, seen[0], down=seen[1])

    def probed(self, site_id: uuid.UUID, at: float, *, down: bool, elsewhere: bool = False) -> None:
        """A ping of the site was taken at ``at`` (by this collector, or ``elsewhere``: another
        collector, a trigger): the site is due again by the cadence of its newest ping. A ping
        from elsewhere that is no newer changes nothing, and one that arrives while this
        collector's probe of the site is in flight waits for that probe to end."""
        if not elsewhere:
            self._in_flight.discard(site_id)
        site = self._sites.get(site_id)
        if site is None:
            return
        known = self._last.get(site_id)
        if known is None or at > known:
            self._last[site_id] = at
            if down:
                self._down.add(site_id)
            else:
                self._down.discard(site_id)
        elif elsewhere:
            return
        if site_id in self._in_flight:
            return
        newest = self._last[site_id]
        if site_id in self._down and site.retry_interval_ms:
            self._set(site_id, newest + site.retry_interval_ms / 1000)
        else:
            self._set(site_id, next_due(site_id, self.interval_s(site), newest))

    def lost(self, site_id: uuid.UUID, now: float) -> None:
        """A probe that gave no ping (a collector fault): the site is due again by its cadence
        from now, so a fault does not make it hammer the site."""
        self._in_flight.discard(site_id)
        site = self._sites.get(site_id)
        if site is not None:
            self._set(site_id, next_due(site_id, self.interval_s(site), now))

    def next_due_at(self) -> float | None:
        """When the earliest site is due; None when nothing is held."""
        while self._heap:
            due, site_id = self._heap[0]
            if self._due.get(site_id) == due:
                return due
            heapq.heappop(self._heap)
        return None

    def due_sooner(self) -> bool:
        """Whether a site is now due before ``wake_at``, when the dispatcher's wait ends by
        itself (then ``wake_at`` moves to it): with every site in flight the dispatcher slept a
        minute, woken only by probes learnt from elsewhere, which fails with the database away."""
        next_at = self.next_due_at()
        if next_at is not None and next_at < self.wake_at:
            self.wake_at = next_at
            return True
        return False

    def pop_due(self, now: float) -> tuple[ActiveSite, float] | None:
        """The most overdue site that is due by ``now``, and its due time; it is in flight until
        :meth:`probed` or :meth:`lost`."""
        due = self.next_due_at()
        if due is None or due > now:
            return None
        _, site_id = heapq.heappop(self._heap)
        del self._due[site_id]
        self._in_flight.add(site_id)
        return self._sites[site_id], due

    def late_s(self, now: float) -> float:
        """How late the most overdue site is (0 when none is)."""
        due = self.next_due_at()
        return 0.0 if due is None else max(0.0, now - due)

    def _set(self, site_id: uuid.UUID, due: float) -> None:
        self._due[site_id] = due
        heapq.heappush(self._heap, (due, site_id))

    def _newest(
        self, given: tuple[float, bool] | None, site_id: uuid.UUID
    ) -> tuple[float, bool] | None:
        """The newer of ``given`` (probed at, down) and the newest ping known here."""
        mine = self._last.get(site_id)
        if mine is not None and (given is None or mine > given[0]):
            return mine, site_id in self._down
        return given

    def _forget(self, site_id: uuid.UUID) -> None:
        self._last.pop(site_id, None)
        self._down.discard(site_id)
