"""Receipts of one app, sans-IO: what every adapter calls on a decision.

:class:`ReceiptKeeper` is built from plain values (an adapter passes its
configuration) and :meth:`ReceiptKeeper.keep` from plain values too (the
adapter passes the User-Agent header and the client address of the
request). It never reads a request or a framework's globals.

A decision answers success only once its receipt is committed to the
database or fsynced to this process's spool (GDPR Art. 7(1): the site must
be able to demonstrate consent). A grant whose receipt cannot be kept at all
is not given effect; a refusal always is: see
:func:`consent.choice.grants_anything`.
"""

from __future__ import annotations

import atexit
import collections
import collections.abc as cabc
import dataclasses
import logging
import operator
import os
import threading
import typing as t
from datetime import timedelta

from ..exceptions import ConfigurationError
from ..exceptions import ReceiptNotKeptError
from ..model import DEFAULT_RETENTION
from ..settings import DEFAULTS
from .privacy import IP_MODES
from .privacy import anonymize_ip
from .record import Receipt
from .record import ShownTexts
from .record import canonical_json
from .record import hash_texts
from .spool import ADOPT_INTERVAL
from .spool import DurableRecorder
from .spoolfile import spool_name
from .store import is_store_error
from .urls import check_url
from .urls import open_store

if t.TYPE_CHECKING:
    import sqlalchemy as sa

    from ..model import Policy
    from ..state import ConsentState
    from .privacy import IPMode
    from .store import ReceiptStore

logger = logging.getLogger(__name__)

#: The receipt settings of an app, with their defaults; adapters merge them
#: into their own defaults, and :meth:`ReceiptKeeper.from_config` reads them.
RECEIPT_DEFAULTS: dict[str, t.Any] = {
    key: value for key, value in DEFAULTS.items() if key.startswith("CONSENT_RECEIPTS_")
}

#: How long an identical repeated decision is not receipted again.
DUPLICATE_WINDOW = timedelta(seconds=60)

#: How many consent ids a keeper remembers the last receipt of, per process.
DUPLICATE_MEMORY = 10_000

# A receipt as plain values (strings, a time, ``None``): its fields in the
# constructor's order, the choices written as "analytics -media" (keys
# cannot start with "-"). The garbage collector stops tracking such a tuple,
# where thousands of live receipts would lengthen every one of its passes.
_Plain = tuple[t.Any, ...]
_FIELDS = [field.name for field in dataclasses.fields(Receipt)]
_values = operator.attrgetter(*_FIELDS)
_CHOICES = _FIELDS.index("choices")
_CONSENT_ID = _FIELDS.index("consent_id")
_CREATED_AT = _FIELDS.index("created_at")
# What makes two decisions of one consent id the same one.
_same_decision = operator.itemgetter(
    *(_FIELDS.index(name) for name in ("revision", "choices", "method", "texts_hash"))
)


def _plain(receipt: Receipt) -> _Plain:
    values = list(_values(receipt))
    values[_CHOICES] = " ".join(
        key if granted else f"-{key}" for key, granted in receipt.choices
    )
    return tuple(values)


def _from_plain(plain: _Plain) -> Receipt:
    values = list(plain)
    values[_CHOICES] = tuple(
        (key.lstrip("-"), not key.startswith("-")) for key in plain[_CHOICES].split()
    )
    return Receipt(*values)


def _library_version() -> str:
    # Loaded here, with the first texts hashed: importlib.metadata is slow
    # to import, and an app pays for it only when it keeps receipts.
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version

    try:
        return version("cookie-consent")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "0"


class ReceiptKeeper:
    """Receipts of one app: the store, this process's spool, what was shown,
    and which decisions are repeats.

    The store and the recorder open on first use, in the process that uses
    them: a server that forks workers after loading the app gives each
    worker its own connection and its own spool,
    ``consent-spool-<pid>.jsonl`` in ``spool_dir``.

    Everything that can be checked without opening the store is checked
    here, when the app starts: a URL whose extra is not installed raises
    :class:`~consent.exceptions.ConfigurationError` saying what to
    ``pip install``, not on the first visitor's post.

    :param policy: The policy decisions are made under; ``None`` for a
        keeper that only manages receipts (the ``consent receipts``
        command), which cannot :meth:`keep` new ones.
    :param url: ``"sqlite"`` (a file in ``folder``), a SQLite or other
        SQLAlchemy URL, an SQLAlchemy engine (which stays yours: it is
        never disposed of), or ``None`` to keep no receipts
        (``CONSENT_RECEIPTS_URL``); see :func:`~consent.receipts.open_store`.
    :param folder: The receipts' home, such as the Flask instance folder:
        a relative SQLite file goes there, and so does the spool unless
        ``spool_dir`` is given.
    :param spool_dir: Where this process's spool goes
        (``CONSENT_RECEIPTS_SPOOL_DIR``); ``folder`` when ``None``.
    :param ip_mode: ``"truncate"``, ``"hash"`` or ``"none"``
        (``CONSENT_RECEIPTS_IP``); see
        :func:`~consent.receipts.anonymize_ip`.
    :param pepper: The secret for ``"hash"`` (``CONSENT_RECEIPTS_PEPPER``).
    :param retention: How long receipts are kept, in days or as a
        timedelta (``CONSENT_RECEIPTS_RETENTION``).
    :param timeout: Seconds a receipt waits for the store when the spool
        cannot be written, and :meth:`store` waits for receipts just
        answered (``CONSENT_RECEIPTS_TIMEOUT``).
    :param texts: The app's text overrides, ``{language: {key: text}}``
        (``CONSENT_TEXTS``), part of what was shown.
    :param schema: The PostgreSQL schema of the tables
        (``CONSENT_RECEIPTS_SCHEMA``).
    :param duplicate_window: How long an identical repeated decision of one
        consent id is not receipted again (see :meth:`keep`); zero turns
        this off.
    :param adopt_interval: Seconds between two looks for spools of dead
        processes to replay (``CONSENT_RECEIPTS_ADOPT_INTERVAL``).
    :raises ConfigurationError: for a setting that cannot work.

    .. versionchanged:: 0.1
        Moved from the Flask extension to the core, and built from plain
        values rather than a Flask app.
    """

    def __init__(
        self,
        policy: Policy | None,
        *,
        url: str | sa.Engine | None = "sqlite",
        folder: str | os.PathLike[str],
        spool_dir: str | os.PathLike[str] | None = None,
        ip_mode: IPMode = "truncate",
        pepper: str | bytes | None = None,
        retention: int | float | timedelta = DEFAULT_RETENTION,
        timeout: float = 2.0,
        texts: cabc.Mapping[str, cabc.Mapping[str, str]] | None = None,
        schema: str | None = None,
        duplicate_window: float | timedelta = DUPLICATE_WINDOW,
        adopt_interval: float = ADOPT_INTERVAL,
    ) -> None:
        if ip_mode not in IP_MODES:
            raise ConfigurationError(
                f"CONSENT_RECEIPTS_IP (ip_mode) must be one of"
                f" {', '.join(IP_MODES)}, not {ip_mode!r}."
            )
        if ip_mode == "hash" and not pepper:
            raise ConfigurationError(
                "CONSENT_RECEIPTS_IP='hash' needs CONSENT_RECEIPTS_PEPPER (pepper):"
                " a long random secret (a plain hash of an IPv4 address is"
                " reversible)."
            )
        if not isinstance(retention, timedelta):
            retention = timedelta(days=retention)
        if retention <= timedelta(0):
            raise ConfigurationError(
                "CONSENT_RECEIPTS_RETENTION (retention) must be a positive number"
                f" of days or timedelta, not {retention!r}."
            )
        if not timeout > 0:
            raise ConfigurationError(
                f"CONSENT_RECEIPTS_TIMEOUT (timeout) must be positive, not {timeout!r}."
            )
        if not isinstance(duplicate_window, timedelta):
            duplicate_window = timedelta(seconds=duplicate_window)
        check_url(url, folder=folder, schema=schema)
        #: The policy, or ``None`` for a keeper that only manages receipts.
        self.policy = policy
        #: Where receipts are kept (a URL, an engine, or ``None``).
        self.url = url
        #: The receipts' home folder.
        self.folder = os.fspath(folder)
        #: Where this process's spool goes.
        self.spool_dir = os.fspath(spool_dir) if spool_dir else self.folder
        #: How IP addresses are reduced.
        self.ip_mode: IPMode = ip_mode
        self.pepper: bytes | None = (
            pepper.encode() if isinstance(pepper, str) else pepper
        )
        #: How long receipts are kept.
        self.retention = retention
        #: Seconds a decision waits for the store.
        self.timeout = float(timeout)
        #: The PostgreSQL schema of the tables.
        self.schema = schema
        #: How long an identical repeated decision is not receipted again.
        self.duplicate_window = duplicate_window
        #: Seconds between two looks for spools of dead processes.
        self.adopt_interval = float(adopt_interval)
        self.texts: cabc.Mapping[str, cabc.Mapping[str, str]] = texts or {}
        self._lock = threading.Lock()
        self._store: ReceiptStore | None = None
        self._recorder: DurableRecorder | None = None
        self._pid = 0
        self._shown: dict[str, tuple[str, str]] = {}
        # The last receipt of each consent id, as plain values.
        self._last: collections.OrderedDict[str, _Plain] = collections.OrderedDict()
        self._reported: set[tuple[str, str]] = set()
        self._started = 0

    @classmethod
    def from_config(
        cls,
        policy: Policy | None,
        config: cabc.Mapping[str, t.Any],
        *,
        folder: str | os.PathLike[str],
    ) -> ReceiptKeeper:
        """Build a keeper from ``CONSENT_RECEIPTS_*`` settings (and
        ``CONSENT_TEXTS``); a missing key takes its
        :data:`RECEIPT_DEFAULTS` value.

        :param policy: The app's policy.
        :param config: The app's settings, such as Flask's ``app.config``.
        :param folder: The receipts' home, such as the instance folder.
        """

        def get(key: str) -> t.Any:
            return config.get(key, RECEIPT_DEFAULTS[key])

        return cls(
            policy,
            url=get("CONSENT_RECEIPTS_URL"),
            folder=folder,
            spool_dir=get("CONSENT_RECEIPTS_SPOOL_DIR"),
            ip_mode=get("CONSENT_RECEIPTS_IP"),
            pepper=get("CONSENT_RECEIPTS_PEPPER"),
            retention=get("CONSENT_RECEIPTS_RETENTION"),
            timeout=float(get("CONSENT_RECEIPTS_TIMEOUT")),
            texts=config.get("CONSENT_TEXTS") or {},
            schema=get("CONSENT_RECEIPTS_SCHEMA"),
            adopt_interval=float(get("CONSENT_RECEIPTS_ADOPT_INTERVAL")),
        )

    def __repr__(self) -> str:
        return f"<ReceiptKeeper {self.url!r} folder={self.folder!r}>"

    @property
    def is_enabled(self) -> bool:
        """False when the keeper keeps no receipts (``url`` is ``None``)."""
        return self.url is not None

    def store(self) -> ReceiptStore:
        """The receipt store of this process (opened on first use), holding
        every receipt this process has answered.

        Receipts reach the store a moment after their answer (see
        :class:`~consent.receipts.DurableRecorder`): this waits up to
        :attr:`timeout` seconds for those this process recorded, so that a
        reader here (the dashboard, a test) sees them all.

        :raises ConfigurationError: when receipts are off.
        :raises OSError: when the folder of a SQLite file cannot be created.

        .. versionchanged:: 0.2
            Waits for the receipts this process recorded.
        """
        recorder = self._recorder
        if recorder is not None and self._pid == os.getpid():
            recorder.sync(self.timeout)
        return self._open_store()

    def _open_store(self) -> ReceiptStore:
        pid = os.getpid()
        store = self._store
        if store is not None and self._pid == pid:
            return store
        with self._lock:
            if self._store is None or self._pid != pid:
                store = open_store(self.url, folder=self.folder, schema=self.schema)
                if store is None:
                    raise ConfigurationError(
                        "Receipts are off (CONSENT_RECEIPTS_URL is None)."
                    )
                self._store, self._recorder, self._pid = store, None, pid
            return self._store

    def recorder(self) -> DurableRecorder:
        """The durable recorder of this process (opened on first use).

        :raises OSError: when the folder of a SQLite file cannot be created.
        """
        recorder = self._recorder
        if recorder is not None and self._pid == os.getpid():
            return recorder
        store = self._open_store()
        with self._lock:
            if self._recorder is None:
                try:
                    os.makedirs(self.spool_dir, exist_ok=True)
                except OSError as err:
                    # The store may still answer: receipts are kept while it
                    # does, and refused (not lost) when it does not.
                    self._report(
                        self.spool_dir,
                        err,
                        "receipts are kept only while the database answers."
                        " Create it, writable by the user the app runs as, or"
                        " set CONSENT_RECEIPTS_SPOOL_DIR",
                    )
                spool = os.path.join(self.spool_dir, spool_name(os.getpid()))
                recorder = DurableRecorder(
                    store,
                    spool,
                    timeout=self.timeout,
                    adopt_interval=self.adopt_interval,
                )
                self._recorder = recorder
                atexit.register(recorder.close)
            return self._recorder

    @property
    def is_started(self) -> bool:
        """True once :meth:`start` ran in this process (or receipts are off)."""
        return self.url is None or self._started == os.getpid()

    def start(self) -> None:
        """Open this process's recorder now, if it is not open yet.

        A recorder replays the spools of dead processes in its folder when
        it opens and every :attr:`adopt_interval` seconds after that, so
        that a worker killed during an outage leaves no receipt waiting for
        a person. The adapters call this on the first request each process
        serves (and the ASGI adapter on ``lifespan`` startup); a server hook
        that runs when a worker starts (gunicorn's ``post_worker_init``) may
        call it too. It never raises: trouble is logged, and a receipt that
        cannot be kept is refused when it comes.

        .. versionadded:: 0.2
        """
        if self.url is None or self._started == os.getpid():
            return
        self._started = os.getpid()
        try:
            self.recorder()
        except Exception as err:
            if not is_store_error(err):
                raise
            logger.error(
                "The receipt recorder could not start (%s); it starts again with"
                " the next receipt.",
                type(err).__name__,
            )

    def close(self) -> None:
        """Stop the recorder and close the store (tests, shutdown); both
        open again when used."""
        with self._lock:
            if self._recorder is not None:
                self._recorder.close()
            if self._store is not None:
                self._store.close()
            self._store = self._recorder = None
            self._pid = 0

    def _report(self, folder: str, err: OSError, advice: str) -> None:
        """Log, once per folder and trouble, which folder to fix and why."""
        if (folder, advice) in self._reported:
            return
        self._reported.add((folder, advice))
        reason = err.strerror or type(err).__name__
        logger.error(
            "The receipts folder %s cannot be used (%s): %s.", folder, reason, advice
        )

    def shown_texts(self, language: str) -> tuple[str, str]:
        """The hash and canonical JSON of what a visitor was shown in
        ``language``: every text (with the app's overrides), the
        declarations, the revision and the library version (CNIL: proof of
        the version of the consent interface).

        :raises ConfigurationError: for a keeper without a policy.
        """
        shown = self._shown.get(language)
        if shown is not None:
            return shown
        policy = self._require_policy()
        # The catalogues load on the first receipt of each language.
        from ..i18n import Translator
        from ..i18n import load_catalog

        tr = Translator(language, self.texts)
        keys = sorted(set(load_catalog("en")) | set(self.texts.get(language, {})))
        content = {
            "texts": {key: tr.get(key) for key in keys},
            "declarations": [dataclasses.asdict(c) for c in policy.categories],
            "revision": policy.revision,
            "library": _library_version(),
        }
        canonical = canonical_json(content)
        shown = (hash_texts(canonical), canonical)
        if len(self._shown) < 256:
            self._shown[language] = shown
        return shown

    def texts_hash(self, language: str) -> str:
        """SHA-256 of what a visitor was shown in ``language``
        (:meth:`shown_texts`)."""
        return self.shown_texts(language)[0]

    def _require_policy(self) -> Policy:
        if self.policy is None:
            raise ConfigurationError(
                "This receipt keeper has no policy, so it cannot make receipts:"
                " pass the app's policy."
            )
        return self.policy

    def receipt(
        self,
        state: ConsentState,
        *,
        language: str,
        path: str,
        user_agent: str | None,
        remote_addr: str | None,
    ) -> Receipt:
        """The receipt of ``state``, without keeping it.

        :param state: The decision.
        :param language: The language the texts were shown in.
        :param path: The page the decision was made on; its query string
            and fragment are cut, and it is bounded to 2 KB.
        :param user_agent: The request's User-Agent header, raw; it is
            reduced to browser and system families.
        :param remote_addr: The client address, raw (after any trusted
            proxy handling); it is reduced as ``ip_mode`` says.
        """
        return Receipt.from_state(
            state,
            self._require_policy(),
            texts_hash=self.texts_hash(language),
            language=language,
            path=path,
            user_agent=user_agent,
            ip=anonymize_ip(remote_addr, self.ip_mode, pepper=self.pepper),
        )

    def keep(
        self,
        state: ConsentState,
        *,
        language: str,
        path: str,
        user_agent: str | None,
        remote_addr: str | None,
    ) -> Receipt | None:
        """Build and durably record the receipt of ``state``.

        Returns once the receipt is committed to the store or fsynced to the
        spool, with the texts its hash names kept alongside the first
        receipt that needs them.

        A decision identical to the last one kept for the same consent id
        (same revision, choices, method and texts) within
        :attr:`duplicate_window` of it is not receipted again: one client
        posting the same choice in a loop would otherwise fill the database.
        That earlier receipt is returned instead, so the caller treats a
        repeat as kept. The memory of last receipts is per process and
        bounded (:data:`DUPLICATE_MEMORY` consent ids, the least recent
        forgotten first), so another process, or one that forgot, may write
        one more receipt of the same decision.

        :param state: The decision.
        :param language: The language the texts were shown in.
        :param path: The page the decision was made on (query string cut).
        :param user_agent: The raw User-Agent header, or ``None``.
        :param remote_addr: The raw client address, or ``None``.
        :return: The receipt that proves the decision: the new one, or the
            earlier one of a repeat; ``None`` when receipts are off.
        :raises ReceiptNotKeptError: when neither the store nor the spool
            could keep it. The adapter then honours a refusal and refuses a
            grant (:func:`consent.choice.grants_anything`).
        """
        if self.url is None:
            return None
        receipt = self.receipt(
            state,
            language=language,
            path=path,
            user_agent=user_agent,
            remote_addr=remote_addr,
        )
        plain = _plain(receipt)
        earlier = self._repeat_of(plain)
        if earlier is not None:
            return earlier
        try:
            recorder = self.recorder()
        except OSError as err:
            self._report(
                self.folder,
                err,
                "no receipt can be kept, so grants are refused. Create it,"
                " writable by the user the app runs as, or set"
                " CONSENT_RECEIPTS_URL elsewhere",
            )
            raise ReceiptNotKeptError(
                f"The receipts folder {self.folder!r} cannot be created."
            ) from err
        texts_hash, canonical = self.shown_texts(language)
        texts = None
        if not recorder.knows_texts(texts_hash):
            texts = ShownTexts(
                texts_hash=texts_hash,
                canonical=canonical,
                first_seen=receipt.created_at,
            )
        try:
            recorder.record(receipt, texts)
        except ReceiptNotKeptError as err:
            if isinstance(err.__cause__, OSError):
                self._report(
                    os.path.dirname(recorder.spool_path),
                    err.__cause__,
                    "the receipt store failed and the spool cannot be written"
                    " there either, so grants are refused. Make it writable, or"
                    " set CONSENT_RECEIPTS_SPOOL_DIR",
                )
            raise
        self._remember(plain)
        return receipt

    def _repeat_of(self, plain: _Plain) -> Receipt | None:
        if not self.duplicate_window:
            return None
        consent_id = plain[_CONSENT_ID]
        with self._lock:
            last = self._last.get(consent_id)
        if last is None or _same_decision(last) != _same_decision(plain):
            return None
        earlier = _from_plain(last)
        elapsed = plain[_CREATED_AT] - earlier.created_at
        if timedelta(0) <= elapsed < self.duplicate_window:
            return earlier
        return None

    def _remember(self, plain: _Plain) -> None:
        if not self.duplicate_window:
            return
        consent_id = plain[_CONSENT_ID]
        with self._lock:
            self._last[consent_id] = plain
            self._last.move_to_end(consent_id)
            while len(self._last) > DUPLICATE_MEMORY:
                self._last.popitem(last=False)
