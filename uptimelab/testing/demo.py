"""The demo: a zoo of about fifty sites of mixed health, three cycles, and what they found.

Runs offline on a fresh machine: the sites are simulated on loopback by the zoo, and the pings go
to the configured database (the embedded PostgreSQL by default). The demo's sites are disabled at
the end, since their zoo is gone; running the demo again re-enables them.

``uptimelab demo --history 7d`` writes a synthetic week instead (``uptimelab.history``), for the
notebooks and the report.
"""

from __future__ import annotations

import dataclasses
import ssl
from typing import Any

from ..collector import Collector, Reporter
from ..config import Settings
from ..domain.sites import SiteSpec
from ..storage.database import Database
from ..storage.site_import import upsert_sites
from .zoo import Zoo, ZooSpec, open_zoo, realistic_spec

DEMO_PORT = 18_080  # a stable port keeps the demo's URLs, and so its sites, the same across runs
DEMO_PREFIX = "demo-"


def demo_spec(sites: int = 40, *, seed: int = 7) -> ZooSpec:
    """``sites`` realistic targets plus one of every failure mode, on the demo's port."""
    realistic = realistic_spec(sites, median_ms=120, sigma=0.7, seed=seed)
    every = ZooSpec.every_failure()
    return dataclasses.replace(
        realistic, targets=realistic.targets + every.targets, port=DEMO_PORT, duration_s=600
    )


def register_zoo(zoo: Zoo, db: Database, *, prefix: str = DEMO_PREFIX) -> dict[str, str]:
    """Add (or re-enable) a site per zoo target; returns URL -> target name."""
    specs = [
        (
            SiteSpec(url=t.url, name=prefix + t.name, is_active=True),
            frozenset({"url", "name", "is_active"}),
        )
        for t in zoo.targets
    ]
    upsert_sites(specs, db=db)
    return {t.url: t.name for t in zoo.targets}


def latest_results(db: Database, urls: list[str]) -> list[dict[str, Any]]:
    """Each site's latest ping: URL, status, response time, error category (by URL)."""
    with db.connect() as conn:
        return conn.execute(
            """
            SELECT s.url, s.name, p.status, p.status_code, p.response_time_ms, p.error_category
              FROM sites s
              LEFT JOIN LATERAL (SELECT * FROM pings WHERE site_id = s.id
                                  ORDER BY checked_at DESC LIMIT 1) p ON true
             WHERE s.url = ANY(%s)
             ORDER BY p.status DESC NULLS LAST, p.error_category NULLS FIRST, s.name
            """,
            (urls,),
        ).fetchall()


async def run_demo(
    db: Database,
    *,
    cycles: int = 3,
    sites: int = 40,
    seed: int = 7,
    reporter: Reporter | None = None,
    verify: ssl.SSLContext | bool = True,
) -> list[dict[str, Any]]:
    """Serve a zoo of ``sites`` realistic targets (latencies drawn with ``seed``) plus one per
    failure mode, register them, run ``cycles`` cycles, and return the latest results."""
    settings = Settings.load(
        database_url=db.url,
        monitoring_interval_ms=60_000,
        ping_timeout_ms=2_000,
        max_concurrent_pings=25,
        monitoring_location="demo",
        monitoring_region_code="ZZ",
    )
    async with open_zoo(demo_spec(sites, seed=seed)) as zoo:
        urls = register_zoo(zoo, db)
        collector = Collector(db, settings, reporter=reporter, verify=verify)
        for _ in range(cycles):
            await collector.cycle()
    results = latest_results(db, list(urls))
    with db.connect() as conn:
        conn.execute(
            "UPDATE sites SET is_active = false, updated_at = now() WHERE url = ANY(%s)",
            (list(urls),),
        )
    return results
