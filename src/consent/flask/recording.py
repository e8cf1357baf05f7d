"""Receipts from the Flask extension: one per decision, kept durably.

A consent post answers success only once its receipt is committed to the
database or fsynced to this process's spool (GDPR Art. 7(1): the site must
be able to demonstrate consent). A grant whose receipt cannot be kept at all
is not given effect; a refusal always is.
"""

from __future__ import annotations

import atexit
import collections.abc as cabc
import dataclasses
import functools
import hashlib
import json
import os
import threading
import typing as t
from datetime import timedelta
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version

from flask import request

from ..exceptions import ConfigurationError
from ..i18n import Translator
from ..i18n import load_catalog
from ..model import DEFAULT_RETENTION

if t.TYPE_CHECKING:
    from flask import Flask

    from ..model import Policy
    from ..receipts import DurableRecorder
    from ..receipts import Receipt
    from ..receipts import ReceiptStore
    from ..state import ConsentState

_IP_MODES = ("truncate", "hash", "none")


def _library_version() -> str:
    try:
        return version("cookie-consent")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "0"


class ReceiptKeeper:
    """Receipts of one app: the store, this process's recorder, the hash of
    what was shown.

    The store and recorder open on first use, in the process that uses
    them: a server that forks workers after loading the app gives each
    worker its own connection and its own spool.
    """

    def __init__(self, app: Flask, policy: Policy) -> None:
        config = app.config
        self.url: str | None = config["CONSENT_RECEIPTS_URL"]
        self.instance_path = app.instance_path
        self.ip_mode = config["CONSENT_RECEIPTS_IP"]
        if self.ip_mode not in _IP_MODES:
            raise ConfigurationError(
                f"CONSENT_RECEIPTS_IP must be one of {', '.join(_IP_MODES)},"
                f" not {self.ip_mode!r}."
            )
        pepper = config["CONSENT_RECEIPTS_PEPPER"]
        if self.ip_mode == "hash" and not pepper:
            raise ConfigurationError(
                "CONSENT_RECEIPTS_IP='hash' needs CONSENT_RECEIPTS_PEPPER: a long"
                " random secret (a plain hash of an IPv4 address is reversible)."
            )
        self.pepper: bytes | None = (
            pepper.encode() if isinstance(pepper, str) else pepper
        )
        retention = config["CONSENT_RECEIPTS_RETENTION"]
        self.retention: timedelta = (
            retention if isinstance(retention, timedelta) else timedelta(days=retention)
        )
        self.timeout = float(config["CONSENT_RECEIPTS_TIMEOUT"])
        self.spool_dir = config["CONSENT_RECEIPTS_SPOOL_DIR"] or app.instance_path
        self.policy = policy
        self.texts = config["CONSENT_TEXTS"]
        self._lock = threading.Lock()
        self._store: ReceiptStore | None = None
        self._recorder: DurableRecorder | None = None
        self._pid = 0

    @property
    def is_enabled(self) -> bool:
        """False when ``CONSENT_RECEIPTS_URL`` is ``None``."""
        return self.url is not None

    def store(self) -> ReceiptStore:
        """The receipt store of this process (opened on first use)."""
        self._open()
        assert self._store is not None
        return self._store

    def recorder(self) -> DurableRecorder:
        """The durable recorder of this process (opened on first use)."""
        self._open()
        assert self._recorder is not None
        return self._recorder

    def _open(self) -> None:
        pid = os.getpid()
        if self._pid == pid and self._recorder is not None:
            return
        # The storage code loads here, on the first receipt, not at import:
        # an app pays for it only when it keeps receipts.
        from ..receipts import DurableRecorder
        from ..receipts import open_store

        with self._lock:
            if self._pid == pid and self._recorder is not None:
                return
            os.makedirs(self.instance_path, exist_ok=True)
            os.makedirs(self.spool_dir, exist_ok=True)
            store = open_store(self.url, instance_path=self.instance_path)
            assert store is not None
            spool = os.path.join(self.spool_dir, f"consent-spool-{pid}.jsonl")
            recorder = DurableRecorder(store, spool, timeout=self.timeout)
            self._store, self._recorder, self._pid = store, recorder, pid
            atexit.register(recorder.close)

    def close(self) -> None:
        """Stop the recorder and close the store (tests, shutdown)."""
        with self._lock:
            if self._recorder is not None:
                self._recorder.close()
            if self._store is not None:
                self._store.close()
            self._store = self._recorder = None
            self._pid = 0

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one keeper per app
    def texts_hash(self, language: str) -> str:
        """SHA-256 of what a visitor was shown: every text in ``language``,
        the declarations and the library version (CNIL: proof of the
        version of the consent interface)."""
        tr = Translator(language, self.texts)
        keys = sorted(set(load_catalog("en")) | set(self.texts.get(language, {})))
        shown = {
            "texts": {key: tr.get(key) for key in keys},
            "declarations": [dataclasses.asdict(c) for c in self.policy.categories],
            "revision": self.policy.revision,
            "library": _library_version(),
        }
        canonical = json.dumps(shown, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def receipt(self, state: ConsentState, *, language: str, path: str) -> Receipt:
        """The receipt of ``state``, decided in the current request."""
        from ..receipts import Receipt
        from ..receipts import anonymize_ip

        environ = request.environ
        return Receipt.from_state(
            state,
            self.policy,
            texts_hash=self.texts_hash(language),
            language=language,
            path=path,
            user_agent=environ.get("HTTP_USER_AGENT"),
            # What request.remote_addr reads, after any ProxyFix.
            ip=anonymize_ip(
                environ.get("REMOTE_ADDR"), self.ip_mode, pepper=self.pepper
            ),
        )

    def keep(self, state: ConsentState, *, language: str, path: str) -> Receipt:
        """Build and durably record the receipt of ``state``.

        :raises ReceiptNotKept: when neither the store nor the spool kept it.
        """
        receipt = self.receipt(state, language=language, path=path)
        self.recorder().record(receipt)
        return receipt


#: Settings of receipts, merged into the extension's defaults.
RECEIPT_DEFAULTS: dict[str, t.Any] = {
    # "sqlite" (a file in the instance folder), any SQLAlchemy URL such as
    # "postgresql+psycopg://user@host/db", or None to keep no receipts.
    "CONSENT_RECEIPTS_URL": "sqlite",
    # How IP addresses are kept: "truncate" (/24, /48), "hash" (HMAC with
    # CONSENT_RECEIPTS_PEPPER) or "none".
    "CONSENT_RECEIPTS_IP": "truncate",
    "CONSENT_RECEIPTS_PEPPER": None,
    # Days (or a timedelta) receipts are kept before `flask consent purge`.
    "CONSENT_RECEIPTS_RETENTION": DEFAULT_RETENTION,
    # Seconds a consent post waits for the database before spooling.
    "CONSENT_RECEIPTS_TIMEOUT": 2.0,
    # Where each process keeps its spool; None: the instance folder.
    "CONSENT_RECEIPTS_SPOOL_DIR": None,
}


def grants_anything(state: ConsentState, previous: ConsentState | None) -> bool:
    """True when ``state`` allows something ``previous`` did not."""
    before: cabc.Set[str] = previous.granted if previous is not None else frozenset()
    return bool(state.granted - before)
