"""A database outage under a real server with several workers, one of which
is killed: every answered consent post has its receipt in the database
afterwards, without anyone running a command.

PostgreSQL is reached through a proxy the test owns and cuts; the shared
server is never stopped.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from tests.pgproxy import TCPProxy
from tests.servers import DemoServer
from tests.servers import Visitor

pytestmark = pytest.mark.postgres

#: Consent posts made while the database is cut off.
POSTS = 24
#: How long the receipts may take to reach the database once it is back.
WAIT = 60.0


def receipts_in(role: str) -> int:
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test", autocommit=True
    ) as conn:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = 'consent_receipts'",
            (role,),
        ).fetchone()
        if not found or not found[0]:
            return 0
        row = conn.execute(f"SELECT count(*) FROM {role}.consent_receipts").fetchone()
    return int(row[0]) if row else 0


def spooled_lines(spool_dir: Path, pid: int) -> int:
    lines = 0
    for path in spool_dir.glob(f"consent-spool-{pid}.jsonl*"):
        if path.suffix in (".jsonl", ".replaying"):
            lines += path.read_bytes().count(b'"receipt_id"')
    return lines


def wait_for(condition, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.parametrize("adapter", ["flask", "asgi"])
def test_answered_receipts_survive_an_outage_and_a_killed_worker(
    adapter, pg_role, tmp_path
):
    spool_dir = tmp_path / "spool"
    with TCPProxy(("127.0.0.1", 5432)) as proxy:
        env = {
            "CONSENT_RECEIPTS_URL": proxy.url(user=pg_role),
            "CONSENT_RECEIPTS_SPOOL_DIR": str(spool_dir),
            "CONSENT_RECEIPTS_ADOPT_INTERVAL": "1",
            # Every visitor posts from 127.0.0.1.
            "CONSENT_RATE_LIMIT": "null",
        }
        with DemoServer(adapter, workers=3, env=env) as server:
            workers = server.worker_pids()
            assert len(workers) == 3
            # Each worker's recorder starts with its first request (Flask)
            # or when it starts (ASGI); visitors come until all have.
            visitors = 0
            while not all(
                (spool_dir / f"consent-spool-{pid}.jsonl.owner").exists()
                for pid in workers
            ):
                with Visitor(server.url) as visitor:
                    assert visitor.get("/")[0] == 200
                visitors += 1
                assert visitors < 500, "a worker never served a request"
            with Visitor(server.url) as visitor:
                assert visitor.choose() == 303
            assert wait_for(lambda: receipts_in(pg_role) == 1, WAIT)

            proxy.cut()
            answered = 1
            for n in range(POSTS):
                action = "accept_all" if n % 3 else "reject_all"
                with Visitor(server.url) as visitor:
                    # While the database is cut off: kept in the spool, and
                    # answered as usual, grants included.
                    assert visitor.choose(action) == 303
                    assert "consent" in visitor.cookies
                answered += 1
            assert receipts_in(pg_role) == 1
            # The worker with the most receipts in its spool dies.
            victim = max(workers, key=lambda pid: spooled_lines(spool_dir, pid))
            assert spooled_lines(spool_dir, victim) > 0
            os.kill(victim, signal.SIGKILL)
            proxy.restore()
            # No command, no more visitors: the survivors replay their own
            # spools and adopt the dead worker's.
            assert wait_for(lambda: receipts_in(pg_role) == answered, WAIT), (
                f"{receipts_in(pg_role)} receipts for {answered} answered posts"
            )
            assert wait_for(
                lambda: not list(spool_dir.glob(f"consent-spool-{victim}.*")), WAIT
            )
    assert receipts_in(pg_role) == answered
