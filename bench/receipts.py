"""Receipts under load: consent posts per second, and a large export.

1. ``POST /consent`` per second under gunicorn (one gthread worker with
   as many threads as wrk has connections, bound to 127.0.0.1) and wrk,
   with receipts kept in SQLite, in PostgreSQL (a
   role and schema made for the run and dropped after it), and with
   receipts off. Every request is a real form post, "Accept all" with a
   valid CSRF token and its cookie and no consent cookie: a new visitor, so
   every request writes one receipt, committed (SQLite ``synchronous=FULL``,
   PostgreSQL ``synchronous_commit`` as configured) before the 303 answers.
   The three servers run side by side; each round loads each of them once,
   in an order rotated from round to round. Ratios are medians of the
   per-round ratios to receipts off. Afterwards the stores are checked to
   hold at least one receipt per completed request, and no spool is left.
2. ``flask consent export`` of 1,000,000 receipts from SQLite to a CSV
   file, in a subprocess: wall time, peak RSS (``/usr/bin/time``) and RSS
   sampled every 0.2 s, which shows whether memory stays flat. The receipts are
   written straight into the store's table with ``executemany`` in batches,
   one year of them in time order, then read back through the store.

Run it alone with ``python -m bench.receipts`` from the repository root.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

from flask import Flask

from consent.flask import Consent
from consent.receipts import Receipt
from consent.receipts import SQLiteReceiptStore

from .common import ROOT
from .common import SECRET_KEY
from .common import at_least
from .common import bench_policy
from .common import goal
from .common import gunicorn
from .common import judged
from .common import median
from .common import print_goals
from .common import round_ratios
from .common import round_spreads
from .common import wrk

if t.TYPE_CHECKING:
    import sqlalchemy as sa

ROUNDS = int(os.environ.get("BENCH_RECEIPTS_ROUNDS", "6"))
DURATION = int(os.environ.get("BENCH_RECEIPTS_SECONDS", "5"))
WARMUP = 1
CONNECTIONS = 8
EXPORT_RECEIPTS = int(os.environ.get("BENCH_RECEIPTS_EXPORT", "1000000"))
EXPORT_TIMEOUT = 120
INSERT_BATCH = 50_000
GOAL_RATIO = 0.80
GOAL_RSS_MB = 100.0
#: "Flat": the peak stays within this of the RSS once the export is running.
GOAL_GROWTH_MB = 10.0
PG_ADMIN_URL = os.environ.get(
    "BENCH_RECEIPTS_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

BIN = Path(sys.executable).parent
CONTENDERS = {
    "off": "receipts off",
    "sqlite": "receipts in SQLite",
    "postgresql": "receipts in PostgreSQL",
}
_CSRF_COOKIE = "consent_csrf"


def create(kind: str = "off") -> Flask:
    """The app of ``kind`` (a gunicorn and ``flask --app`` factory).

    ``off`` keeps no receipts; ``sqlite`` and ``export`` keep them in the
    instance folder ``$BENCH_RECEIPTS_INSTANCE``; ``postgresql`` in
    ``$BENCH_RECEIPTS_URL``.
    """
    urls = {
        "off": None,
        "sqlite": "sqlite",
        "export": "sqlite",
        "postgresql": os.environ.get("BENCH_RECEIPTS_URL"),
    }
    if kind not in urls:
        raise ValueError(f"kind must be one of {', '.join(urls)}, not {kind!r}")
    instance = os.environ.get("BENCH_RECEIPTS_INSTANCE") or tempfile.mkdtemp()
    app = Flask(__name__, instance_path=instance)
    app.secret_key = SECRET_KEY
    app.config["CONSENT_RECEIPTS_URL"] = urls[kind]
    # Every post comes from 127.0.0.1: the per-client limit would answer
    # 429 to nearly all of them.
    app.config["CONSENT_RATE_LIMIT"] = None
    Consent(app, bench_policy())

    @app.get("/")
    def index() -> str:
        return "<!doctype html><title>Bench</title><p>Home</p>"

    return app


def form_post() -> tuple[str, str]:
    """A CSRF cookie and the body of an "Accept all" form post that it makes
    valid: what a visitor's browser sends after loading the banner."""
    app = create("off")
    csrf = app.extensions["consent"].site(app).csrf
    nonce = csrf.new_nonce()
    body = urllib.parse.urlencode(
        {"action": "accept_all", "csrf_token": csrf.token(nonce)}
    )
    return f"{_CSRF_COOKIE}={nonce}", body


@contextlib.contextmanager
def serve(kind: str, env: dict[str, str], cookie: str, body: str) -> t.Iterator[str]:
    """Run gunicorn with the app ``kind``; yield its URL once a post works."""

    def ready(base: str) -> bool:
        status = _post(base, cookie, body)
        if status != 303:
            raise RuntimeError(f"POST {base}/consent answered {status}, not 303")
        return True

    # Threads let concurrent posts share one commit (group commit); a sync
    # worker serves one post at a time, and one fsync per post bounds
    # receipts-on to about half of off.
    options = ("--worker-class=gthread", f"--threads={CONNECTIONS}")
    with gunicorn(
        f"bench.receipts:create('{kind}')", ready, options=options, env=env
    ) as url:
        yield url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: t.Any, **kwargs: t.Any) -> None:
        return None


def _post(url: str, cookie: str, body: str) -> int:
    request = urllib.request.Request(
        url + "/consent",
        data=body.encode(),
        headers={
            "Cookie": cookie,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def post_load(url: str, script: Path, seconds: int) -> dict[str, t.Any]:
    """wrk sending the form post of ``script`` to ``url``/consent."""
    return wrk(url + "/consent", seconds, "-s", str(script), connections=CONNECTIONS)


def _lua(cookie: str, body: str) -> str:
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'wrk.headers["Cookie"] = {json.dumps(cookie)}\n'
    )


@contextlib.contextmanager
def postgres_role() -> t.Iterator[str]:
    """A database URL for a role made for this run, whose schema (of the
    same name: the default search path starts with "$user") gets the
    tables; both are dropped at the end."""
    import sqlalchemy as sa

    name = f"bench_receipts_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {name} LOGIN"))
        conn.execute(sa.text(f"CREATE SCHEMA {name} AUTHORIZATION {name}"))
        # Only its own schema: tables another app left in "public" are not
        # its tables.
        conn.execute(sa.text(f"ALTER ROLE {name} SET search_path = {name}"))
    url = admin.url.set(username=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        admin.dispose()
        _drop_role(admin, name)


def _drop_role(admin: sa.Engine, name: str) -> None:
    import sqlalchemy as sa

    # Other test suites may restart the server meanwhile: wait and retry.
    for attempt in range(30):
        try:
            with admin.begin() as conn:
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE usename = :name"
                    ),
                    {"name": name},
                )
                conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
                conn.execute(sa.text(f"DROP ROLE IF EXISTS {name}"))
            return
        except sa.exc.OperationalError:
            admin.dispose()
            if attempt == 29:
                raise
            time.sleep(1)
        finally:
            admin.dispose()


def _count_postgres(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        for attempt in range(30):
            try:
                with engine.connect() as conn:
                    query = sa.text("SELECT count(*) FROM consent_receipts")
                    return int(conn.execute(query).scalar_one())
            except sa.exc.OperationalError:
                if attempt == 29:
                    raise
                engine.dispose()
                time.sleep(1)
        raise AssertionError("unreachable")
    finally:
        engine.dispose()


def _count_sqlite(instance: Path) -> int:
    store = SQLiteReceiptStore(instance / "consent-receipts.db")
    try:
        return store.count()
    finally:
        store.close()


def _spooled(instance: Path) -> int:
    lines = 0
    for spool in instance.glob("consent-spool-*.jsonl*"):
        if spool.suffix in (".jsonl", ".replaying"):
            lines += spool.read_bytes().count(b"\n")
    return lines


def fdatasync_ms(directory: Path, count: int = 200) -> float:
    """Milliseconds one small append and ``fdatasync`` take on the disk of
    ``directory``: the floor of every durable commit there."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        began = time.perf_counter()
        for _ in range(count):
            os.write(fd, b"x" * 300 + b"\n")
            os.fdatasync(fd)
        return (time.perf_counter() - began) / count * 1e3
    finally:
        os.close(fd)
        path.unlink()


def post_throughput() -> dict[str, t.Any]:
    """Requests per second of consent posts, each contender side by side."""
    cookie, body = form_post()
    kinds = list(CONTENDERS)
    runs: dict[str, list[dict[str, t.Any]]] = {k: [] for k in kinds}
    # Every completed request wrote a receipt: the warm-up, the readiness
    # post, the rounds.
    sent = {k: 1 for k in kinds}
    print(
        f"  {ROUNDS} rounds × {len(kinds)} apps, wrk -t1 -c{CONNECTIONS}"
        f" -d{DURATION}s each (after a {WARMUP} s warm-up); gunicorn --workers 1"
        f" --threads {CONNECTIONS} (gthread) per app; every request an Accept all"
        " form post"
    )
    with contextlib.ExitStack() as outer:
        work = Path(outer.enter_context(tempfile.TemporaryDirectory(dir=ROOT)))
        script = work / "post.lua"
        script.write_text(_lua(cookie, body))
        pg_url = outer.enter_context(postgres_role())
        sync_ms = fdatasync_ms(work)
        print(f"  this disk: append + fdatasync {sync_ms:.2f} ms")
        instances = {kind: work / kind for kind in kinds}
        with contextlib.ExitStack() as servers:
            urls = {
                kind: servers.enter_context(
                    serve(
                        kind,
                        {
                            "BENCH_RECEIPTS_INSTANCE": str(instances[kind]),
                            "BENCH_RECEIPTS_URL": pg_url,
                        },
                        cookie,
                        body,
                    )
                )
                for kind in kinds
            }
            for kind in kinds:
                sent[kind] += post_load(urls[kind], script, WARMUP)["requests"]
            for round_ in range(ROUNDS):
                shift = round_ % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:
                    result = post_load(urls[kind], script, DURATION)
                    if result["non_2xx_3xx"]:
                        raise RuntimeError(
                            f"{kind}: {result['non_2xx_3xx']} responses were"
                            " neither 2xx nor 3xx"
                        )
                    runs[kind].append(result)
                    sent[kind] += result["requests"]
                line = "  ".join(f"{k}={runs[k][-1]['rps']:7.1f}" for k in kinds)
                print(f"  round {round_ + 1}: req/s {line}")
        # The servers are stopped: every receipt is written by now.
        kept = {
            "sqlite": _count_sqlite(instances["sqlite"]),
            "postgresql": _count_postgres(pg_url),
        }
        spooled = {k: _spooled(instances[k]) for k in ("sqlite", "postgresql")}
    for kind, count in kept.items():
        # A request still in flight when wrk stopped may have been answered
        # after wrk stopped counting: at most one per connection and run.
        slack = CONNECTIONS * (ROUNDS + 1)
        if not sent[kind] <= count + spooled[kind] <= sent[kind] + slack:
            raise RuntimeError(
                f"{kind}: {sent[kind]} posts answered but {count} receipts kept"
                f" and {spooled[kind]} spooled"
            )
    rps = {k: [r["rps"] for r in runs[k]] for k in kinds}
    spreads = round_spreads("receipts", rps)
    per_round = {k: round_ratios(rps, k, "off") for k in kinds}
    ratios = {k: median(per_round[k]) for k in kinds}
    for kind, what in CONTENDERS.items():
        per_request = 1e6 / median(rps[kind])
        print(
            f"  {what:<24} {median(rps[kind]):7.1f} req/s  {per_request:6.0f} µs/req"
            f"   {ratios[kind]:5.3f}× receipts off"
        )
    print(
        "  receipts kept: "
        + ", ".join(
            f"{k} {kept[k]} (spooled {spooled[k]}) for {sent[k]} posts" for k in kept
        )
    )
    return {
        "rounds": ROUNDS,
        "seconds": DURATION,
        "connections": CONNECTIONS,
        "spreads": spreads,
        "fdatasync_ms": sync_ms,
        "runs": runs,
        "median_rps": {k: median(v) for k, v in rps.items()},
        "ratio_to_off": ratios,
        "round_ratios": per_round,
        "posts_answered": sent,
        "receipts_kept": kept,
        "receipts_spooled": spooled,
    }


def _fill(path: Path, count: int) -> tuple[float, Receipt]:
    """Write ``count`` receipts into the store at ``path``: one year of them,
    oldest first, with ``executemany`` in batches. Returns the seconds taken
    and the last receipt, as the store must give it back."""
    store = SQLiteReceiptStore(path)
    store.count()  # creates the tables
    store.close()
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    step = timedelta(days=365) / count
    choices = [
        '{"analytics":true,"marketing":false,"media":true}',
        '{"analytics":false,"marketing":false,"media":false}',
        '{"analytics":true,"marketing":true,"media":true}',
    ]
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
    # Ids in insertion order keep the primary key index append-only, and a
    # setup step needs no fsync: filling then takes seconds, not minutes.
    # Neither changes what an export reads.
    prefix = uuid.uuid4().hex[:12]
    began = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-131072")
    for first in range(0, count, INSERT_BATCH):
        rows = []
        for n in range(first, min(first + INSERT_BATCH, count)):
            at = (start + step * n).replace(tzinfo=None)
            rows.append(
                (
                    f"{prefix}{n:020x}",
                    uuid.uuid4().hex[:22],
                    at.isoformat(sep=" ", timespec="microseconds"),
                    "a1B2c3D4",
                    "5e" * 32,
                    choices[n % 3],
                    "banner" if n % 10 else "preferences",
                    "en",
                    "/",
                    agent,
                    "203.0.113.0/24",
                )
            )
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO consent_receipts (receipt_id, consent_id, created_at,"
            " revision, texts_hash, choices, method, language, path, user_agent,"
            " ip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    seconds = time.perf_counter() - began
    last = rows[-1]
    store = SQLiteReceiptStore(path)
    try:
        kept = store.get(last[0])
        if store.count() != count or kept is None:
            raise RuntimeError("the store does not read back what was written")
    finally:
        store.close()
    return seconds, kept


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except OSError:
        return []


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def export_million() -> dict[str, t.Any]:
    """Time and memory of ``flask consent export`` over a large store."""
    with tempfile.TemporaryDirectory(dir=ROOT) as work:
        instance = Path(work) / "instance"
        instance.mkdir()
        db = instance / "consent-receipts.db"
        insert_seconds, last = _fill(db, EXPORT_RECEIPTS)
        size_mb = sum(p.stat().st_size for p in instance.iterdir()) / 2**20
        print(
            f"  {EXPORT_RECEIPTS:,} receipts written in {insert_seconds:.1f} s"
            f" (executemany, {INSERT_BATCH:,} a batch); database {size_mb:.0f} MB"
        )
        output = Path(work) / "receipts.csv"
        env = {
            **os.environ,
            "FLASK_APP": "bench.receipts:create('export')",
            "BENCH_RECEIPTS_INSTANCE": str(instance),
        }
        peak_file = Path(work) / "peak-rss"
        # /usr/bin/time reports the peak RSS of the command alone; wait4 on a
        # child of this process would also count the copy of this process
        # made by fork before exec.
        began = time.perf_counter()
        proc = subprocess.Popen(
            [
                "/usr/bin/time",
                "-f",
                "%M",
                "-o",
                str(peak_file),
                str(BIN / "flask"),
                "consent",
                "export",
                "--format",
                "csv",
                "--output",
                str(output),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        samples: list[tuple[float, float]] = []
        while proc.poll() is None:
            for pid in _children(proc.pid):
                rss = _rss_mb(pid)
                if rss is not None:
                    samples.append((time.perf_counter() - began, rss))
            if time.perf_counter() - began > EXPORT_TIMEOUT:
                proc.kill()
                raise RuntimeError(f"the export took over {EXPORT_TIMEOUT} s")
            time.sleep(0.2)
        seconds = time.perf_counter() - began
        assert proc.stderr is not None
        errors = proc.stderr.read().decode()
        proc.stderr.close()
        if proc.returncode != 0:
            raise RuntimeError(f"flask consent export failed:\n{errors}")
        peak_mb = int(peak_file.read_text().split()[-1]) / 1024
        lines = 0
        with open(output, "rb") as exported:
            while chunk := exported.read(1 << 20):
                lines += chunk.count(b"\n")
            exported.seek(-1024, os.SEEK_END)
            tail = exported.read().decode()
        file_mb = output.stat().st_size / 2**20
        if lines != EXPORT_RECEIPTS + 1 or last.receipt_id not in tail:
            raise RuntimeError(
                f"the export has {lines} lines, not {EXPORT_RECEIPTS + 1} with the"
                " last receipt at the end"
            )
    # After start-up (imports, first page) memory should stay where it is.
    settled = [rss for at, rss in samples if at >= min(2.0, seconds / 4)]
    early = settled[0] if settled else peak_mb
    late = settled[-1] if settled else peak_mb
    print(
        f"  flask consent export --format csv: {seconds:.1f} s"
        f" ({EXPORT_RECEIPTS / seconds:,.0f} receipts/s), {file_mb:.0f} MB of CSV"
    )
    print(
        f"  RSS: {early:.1f} MB after start-up, {late:.1f} MB at the end,"
        f" peak {peak_mb:.1f} MB ({len(samples)} samples)"
    )
    return {
        "receipts": EXPORT_RECEIPTS,
        "insert_seconds": insert_seconds,
        "database_mb": size_mb,
        "export_seconds": seconds,
        "receipts_per_second": EXPORT_RECEIPTS / seconds,
        "csv_mb": file_mb,
        "peak_rss_mb": peak_mb,
        "rss_after_startup_mb": early,
        "rss_at_end_mb": late,
        "rss_samples_mb": samples,
    }


def run() -> dict[str, t.Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    if not os.path.exists("/usr/bin/time"):
        raise RuntimeError("/usr/bin/time is not installed (apt-get install time)")
    posts = post_throughput()
    export = export_million()
    spreads = posts["spreads"]
    goals = [
        judged(
            at_least(
                f"consent POST/s, {store} / off",
                posts["ratio_to_off"][kind],
                GOAL_RATIO,
                fmt=".3f",
                unit="×",
            ),
            max(spreads["off"], spreads[kind]),
            posts["round_ratios"][kind],
        )
        for kind, store in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL"))
    ]
    goals += [
        goal(
            f"export of {EXPORT_RECEIPTS:,} receipts, peak RSS",
            export["peak_rss_mb"],
            GOAL_RSS_MB,
            fmt=".1f",
            unit=" MB",
        ),
        goal(
            "export RSS growth after start-up",
            export["peak_rss_mb"] - export["rss_after_startup_mb"],
            GOAL_GROWTH_MB,
            fmt=".1f",
            unit=" MB",
        ),
    ]
    print_goals(goals)
    return {"posts": posts, "export": export, "goals": goals}


if __name__ == "__main__":
    run()
