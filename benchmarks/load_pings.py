"""Benchmark: ``load_pings`` against ADBC's own read, from the database and from the archive.

One run writes a synthetic history (``uptimelab.testing.history``, one ping per site every
``--every`` seconds) into a scratch database, archives every day of it to Parquet in the
archive's layout, and then, ``--repeat`` times, measures each way in turn in a fresh process
(its wall time and its peak memory above what the process held before loading):

    adbc arrow        ADBC's fetch_arrow_table() of the pings (the reference's first half)
    adbc pandas       the same, then Table.to_pandas(): the reference
    copy bytes        psycopg's binary COPY of the same query, reading the bytes only (a lower
                      bound of any binary-COPY parser built on it)
    copy parse        the same COPY parsed into Arrow arrays by a vectorised numpy parser
                      (copy_to_arrow below), the other candidate way in
    load_pings        uptimelab.stats.load_pings (ADBC, compact frame)
    old loader        the loader before ADBC (psycopg server-side cursor; --old)
    archive arrow     pyarrow dataset of the archive, to_table().to_pandas(): the archive's
                      reference
    archive loader    load_pings over the archive alone (a database without those days)

Times are printed as ratios to the reference of the same repetition (median, min, max), peaks as
multiples of the frame that load_pings returns.

    .venv/bin/python benchmarks/load_pings.py [--sites 50] [--days 7] [--every 60] [--repeat 3]
        [--old] [--url URL]   # URL: a server to make scratch databases on (default:
                              # UPTIMELAB_DATABASE_URL, else the embedded server)
    .venv/bin/python benchmarks/load_pings.py --reuse URL_OF_A_DATABASE_WITH_PINGS ...
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

METHODS = (
    "adbc arrow",
    "adbc pandas",
    "copy bytes",
    "copy parse",
    "load_pings",
    "old loader",
    "archive arrow",
    "archive loader",
)
REFERENCE = "adbc pandas"
ARCHIVE_REFERENCE = "archive arrow"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_bytes() -> int:
    """The process's peak resident memory since :func:`_reset_peak` (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> None:
    # Linux: writing 5 to clear_refs sets VmHWM back to the current RSS, so the peak measured is
    # the load's, not the imports'.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(method: str, url: str, archive: str, empty_url: str) -> dict[str, Any]:
    """One load by ``method`` in this (fresh) process."""
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg
    import pyarrow.dataset as ds

    from uptimelab import stats
    from uptimelab.domain.pings import PING_COLUMNS
    from uptimelab.storage.database import Database
    from uptimelab.storage.ping_batches import adbc_conninfo, pings_query

    query = pings_query(None, None, None)
    _reset_peak()
    before = _rss_bytes()
    started = time.perf_counter()
    rows: int
    size: int
    if method in ("adbc arrow", "adbc pandas"):
        with adbc.connect(adbc_conninfo(url)) as conn, conn.cursor() as cur:
            cur.execute(query)
            table = cur.fetch_arrow_table()
        rows, size = table.num_rows, table.nbytes
        if method == "adbc pandas":
            frame = table.to_pandas()
            del table
            size = int(frame.memory_usage(deep=True).sum())
    elif method == "copy bytes":
        rows = size = 0
        with (
            psycopg.connect(url) as conn,
            conn.cursor() as cur,
            cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy,
        ):
            while data := copy.read():
                rows += 1
                size += len(data)
        rows -= 1  # the trailer
    elif method == "copy parse":
        batches = copy_to_arrow(url, query)
        rows = sum(len(b[0]) for b in batches)
        size = sum(a.nbytes for b in batches for a in b)
    elif method in ("load_pings", "archive loader"):
        source = url if method == "load_pings" else empty_url
        frame = stats.load_pings(
            Database(url=source), archive_dir=archive if method == "archive loader" else None
        )
        rows, size = len(frame), int(frame.memory_usage(deep=True).sum())
    elif method == "old loader":
        frame = old_load_pings(url)
        rows, size = len(frame), int(frame.memory_usage(deep=True).sum())
    elif method == "archive arrow":
        dataset = ds.dataset(Path(archive) / "pings", format="parquet", partitioning="hive")
        frame = dataset.to_table(columns=list(PING_COLUMNS)).to_pandas()
        rows, size = len(frame), int(frame.memory_usage(deep=True).sum())
    else:
        raise SystemExit(f"error: unknown method {method!r}")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak": _peak_bytes() - before, "rows": rows, "bytes": size}


# The binary COPY format: a 19-byte header, then per row an int16 field count and per field an
# int32 length (-1: NULL) and the value, all big-endian; a trailer of int16 -1.
_KINDS = ("uuid", "ts", "text", "i4", "i4", "text", "text", "text", "text")
_KINDS += ("i4", "i4", "i4", "i4", "i4", "ts")
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970


def copy_to_arrow(url: str, query: str, rows_a_batch: int = 65_536) -> list[list[Any]]:
    """The pings of ``query`` by psycopg's binary COPY, parsed into Arrow arrays column by column
    with numpy (each read() is one row, so the row starts are known and every field of every row
    of a batch is found at once)."""
    import psycopg

    batches: list[list[Any]] = []
    chunks: list[bytes] = []
    lengths: list[int] = []
    first = True
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as copy,
    ):
        while data := copy.read():
            if first:
                data, first = bytes(data)[19:], False
            if len(data) == 2:  # the trailer
                continue
            chunks.append(data)
            lengths.append(len(data))
            if len(lengths) == rows_a_batch:
                batches.append(_parse(chunks, lengths))
                chunks, lengths = [], []
    if lengths:
        batches.append(_parse(chunks, lengths))
    return batches


def _parse(chunks: list[bytes], lengths: list[int]) -> list[Any]:
    import numpy as np
    import pyarrow as pa

    buf = np.frombuffer(b"".join(chunks), dtype=np.uint8)
    sizes = np.asarray(lengths, dtype=np.int64)
    pos = np.zeros(len(sizes), dtype=np.int64)
    np.cumsum(sizes[:-1], out=pos[1:])
    pos += 2  # the field count
    columns: list[Any] = []

    def gather(at: Any, width: int) -> Any:
        return buf[at[:, None] + np.arange(width)]

    for kind in _KINDS:
        flen = gather(pos, 4).copy().view(">i4").ravel().astype(np.int64)
        data = pos + 4
        null = flen < 0
        if kind == "i4":
            values = gather(data, 4).copy().view(">i4").ravel().astype(np.int32)
            columns.append(pa.array(values, mask=null))
        elif kind == "ts":
            micros = gather(data, 8).copy().view(">i8").ravel() + _PG_EPOCH_US
            columns.append(pa.array(micros, type=pa.timestamp("us", tz="UTC"), mask=null))
        elif kind == "uuid":
            raw = gather(data, 16).tobytes()
            columns.append(
                pa.Array.from_buffers(pa.binary(16), len(flen), [None, pa.py_buffer(raw)])
            )
        else:
            size = np.where(null, 0, flen)
            offsets = np.zeros(len(size) + 1, dtype=np.int32)
            np.cumsum(size, out=offsets[1:])
            at = np.repeat(data - offsets[:-1], size) + np.arange(int(offsets[-1]))
            validity = pa.array(~null).buffers()[1] if null.any() else None
            columns.append(
                pa.Array.from_buffers(
                    pa.string(),
                    len(size),
                    [validity, pa.py_buffer(offsets), pa.py_buffer(buf[at].tobytes())],
                )
            )
        pos = data + np.maximum(flen, 0)
    return columns


def old_load_pings(url: str) -> Any:
    """The loader as it was before ADBC (the frame it made is the contract): a server-side cursor,
    200 000 rows a chunk turned into typed columns, the chunks concatenated."""
    import pandas as pd
    import psycopg
    from pandas.api.types import union_categoricals
    from psycopg.rows import tuple_row

    from uptimelab.analytics.frames import ERROR_DTYPE, STATUS_DTYPE
    from uptimelab.domain.pings import PHASES, PING_COLUMNS

    phases = [f"{p}_ms" for p in PHASES]
    query = (
        "SELECT site_id::text, checked_at, status, status_code, response_time_ms,"
        " error_category, error_message, location, region_code,"
        " dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms, cert_expires_at FROM pings"
    )

    def typed(rows: list[tuple[Any, ...]]) -> dict[str, Any]:
        cols = list(zip(*rows, strict=True))
        return {
            "site_id": pd.Categorical(cols[0]),
            "checked_at": pd.DatetimeIndex(pd.to_datetime(list(cols[1]), utc=True)).as_unit("us"),
            "status": pd.Categorical(cols[2], dtype=STATUS_DTYPE),
            "status_code": pd.array(cols[3], dtype="Int32"),
            "response_time_ms": pd.array(cols[4], dtype="Int32"),
            "error_category": pd.Categorical(cols[5], dtype=ERROR_DTYPE),
            "error_message": pd.array(cols[6], dtype="str"),
            "location": pd.Categorical(cols[7]),
            "region_code": pd.Categorical(cols[8]),
            **{name: pd.array(cols[k], dtype="Int32") for k, name in enumerate(phases, 9)},
            "cert_expires_at": pd.DatetimeIndex(pd.to_datetime(list(cols[14]), utc=True)).as_unit(
                "us"
            ),
        }

    chunks = []
    with psycopg.connect(url) as conn, conn.transaction():
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        with conn.cursor(name="bench_old_loader", row_factory=tuple_row) as cur:
            cur.itersize = 200_000
            cur.execute(query)
            while rows := cur.fetchmany(200_000):
                chunks.append(typed(rows))
    columns: dict[str, Any] = {}
    for name in PING_COLUMNS:
        parts = [chunk.pop(name) for chunk in chunks]
        if name in ("site_id", "location", "region_code"):
            columns[name] = union_categoricals(parts, sort_categories=True)
        elif name in ("checked_at", "cert_expires_at"):
            columns[name] = parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]
        else:
            columns[name] = pd.concat([pd.Series(p) for p in parts], ignore_index=True).array
    return pd.DataFrame({k: v.array if isinstance(v, pd.Index) else v for k, v in columns.items()})


def write_archive(url: str, archive: Path) -> int:
    """Every day of the database's pings to ``archive`` in the archive's layout, one file a day
    (through the archive's own writer when it is there). Returns the rows written."""
    import psycopg
    import pyarrow.parquet as pq

    with psycopg.connect(url) as conn:
        parts = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'pings'::regclass AND c.relname ~ '^pings_[0-9]{8}$'"
            " ORDER BY 1"
        ).fetchall()
        total = 0
        for (name,) in parts:
            day = dt.datetime.strptime(name[6:], "%Y%m%d").date()
            try:
                from uptimelab.storage import archive as archiving

                total += archiving.write_day(conn, name, archive, day, 0).pings
            except ImportError:
                import adbc_driver_postgresql.dbapi as adbc

                from uptimelab.storage.ping_batches import adbc_conninfo

                with adbc.connect(adbc_conninfo(url)) as aconn, aconn.cursor() as cur:
                    cur.execute(f"SELECT * FROM {name}")  # noqa: S608 - a partition's name
                    table = cur.fetch_arrow_table()
                folder = archive / "pings" / f"date={day.isoformat()}"
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(table, folder / "part-0.parquet", compression="zstd")
                total += table.num_rows
    return total


@contextlib.contextmanager
def history_database(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """The URL of a database holding the history, and of an empty one on the same server."""
    from uptimelab.storage.database import connect
    from uptimelab.testing.bench import scratch_database
    from uptimelab.testing.history import write_history

    server = connect(args.url or os.environ.get("UPTIMELAB_DATABASE_URL"), migrate=False)
    with scratch_database(server) as empty:
        if args.reuse:
            yield args.reuse, empty.url
            return
        with scratch_database(server) as db:
            started = time.perf_counter()
            summary = write_history(
                db, dt.timedelta(days=args.days), sites=args.sites, every=f"{args.every}s"
            )
            print(
                f"wrote {summary.pings} pings of {args.sites} sites over {args.days} days "
                f"in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            with db.connect(autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE pings")
            yield db.url, empty.url


def same_frames(url: str, archive: str, empty_url: str, *, old: bool) -> str:
    """Whether load_pings gives the old loader's frame, and the same frame from the archive."""
    import pandas as pd

    from uptimelab import stats
    from uptimelab.storage.database import Database

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        keys = pd.DataFrame({"s": frame["site_id"].astype(str), "t": frame["checked_at"]})
        keys["l"] = frame["location"].astype(str)
        return frame.loc[keys.sort_values(["s", "t", "l"]).index].reset_index(drop=True)

    def equal(a: pd.DataFrame, b: pd.DataFrame) -> str:
        try:
            pd.testing.assert_frame_equal(a, b)
        except AssertionError as exc:
            return "NO (" + str(exc).splitlines()[0] + ")"
        return "yes"

    new = ordered(stats.load_pings(Database(url=url), archive_dir=archive))
    told = []
    if old:
        told.append(f"same frame as the old loader: {equal(new, ordered(old_load_pings(url)))}")
    archived = ordered(stats.load_pings(Database(url=empty_url), archive_dir=archive))
    told.append(f"same frame from the archive: {equal(new, archived)}")
    return "; ".join(told)


def run_one(method: str, url: str, archive: str, empty_url: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", method, url, archive, empty_url],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"error: {method} failed:\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--every", type=int, default=60, help="seconds between a site's pings")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old", action="store_true", help="measure the loader before ADBC too")
    parser.add_argument("--url", help="a server to make the scratch databases on")
    parser.add_argument("--reuse", help="a database that holds pings already (nothing written)")
    parser.add_argument(
        "--methods",
        help="a comma-separated subset of: " + ", ".join(METHODS) + " (the references are kept)",
    )
    parser.add_argument("--measure", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return

    methods = [m for m in METHODS if args.old or m != "old loader"]
    if args.methods:
        wanted = {m.strip() for m in args.methods.split(",")}
        unknown = wanted - set(METHODS)
        if unknown:
            raise SystemExit(f"error: unknown method(s): {', '.join(sorted(unknown))}")
        archive_too = any(m.startswith("archive") for m in wanted)
        keep = wanted | {REFERENCE} | ({ARCHIVE_REFERENCE} if archive_too else set())
        methods = [m for m in METHODS if m in keep]
    with history_database(args) as (url, empty_url), tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        archived = write_archive(url, Path(tmp))
        print(f"archived {archived} pings in {time.perf_counter() - started:.0f} s", flush=True)
        results: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
        for _ in range(args.repeat):
            for method in methods:
                results[method].append(run_one(method, url, tmp, empty_url))
        loadavg = os.getloadavg()
        same = same_frames(url, tmp, empty_url, old=args.old)

    frame_of = "load_pings" if "load_pings" in results else "archive loader"
    frame_bytes = statistics.median(r["bytes"] for r in results.get(frame_of, results[REFERENCE]))
    rows = results[REFERENCE][0]["rows"]
    print(
        f"{rows} pings; the loaded frame {frame_bytes / 2**20:.0f} MiB; {args.repeat} repetitions;"
        f" load average {loadavg[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"{'':16} {'seconds':>22} {'x reference':>22} {'peak / frame':>22} {'rows':>9}")
    for method in methods:
        ref = ARCHIVE_REFERENCE if method.startswith("archive") else REFERENCE
        runs = results[method]
        seconds = [r["seconds"] for r in runs]
        ratios = [r["seconds"] / b["seconds"] for r, b in zip(runs, results[ref], strict=True)]
        peaks = [r["peak"] / frame_bytes for r in runs]
        print(
            f"{method:16} {spread(seconds):>22} {spread(ratios):>22} {spread(peaks):>22}"
            f" {runs[0]['rows']:>9}"
        )
    print(f"reference: '{REFERENCE}' (from the database), '{ARCHIVE_REFERENCE}' (the archive)")
    print(same)


if __name__ == "__main__":
    main()
