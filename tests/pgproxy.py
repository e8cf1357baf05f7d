"""A TCP forwarder a test owns, to cut a database off without stopping it.

Stopping the shared PostgreSQL server would cut every other client on the
machine. A test points its store at a :class:`TCPProxy` instead, and
``cut()`` closes every connection through the proxy and refuses new ones,
until ``restore()``. Everything listens and connects on 127.0.0.1 only.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import typing as t

_CHUNK = 64 * 1024
# How long the proxy thread sleeps in select() at most, so that stop() is
# noticed within that time even if no wake-up arrives.
_TICK = 0.5


def _reset(sock: socket.socket) -> None:
    # A reset rather than an orderly close: the peer learns at once, as it
    # would when a server dies.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class TCPProxy:
    """Forward 127.0.0.1:<free port> to ``target`` in a thread of its own.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    :param target: Where connections go, ``(host, port)`` on loopback.
    """

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        assert target[0] in ("127.0.0.1", "localhost"), "loopback only"
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        #: The port the proxy listens on.
        self.port: int = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._peers: dict[socket.socket, socket.socket] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        self._is_cut = False
        self._cutting: threading.Event | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)
        #: Connections accepted and forwarded so far.
        self.connections = 0

    def __enter__(self) -> TCPProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start forwarding."""
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()

    def url(self, user: str = "postgres", database: str = "test") -> str:
        """A PostgreSQL URL through the proxy."""
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def cut(self, timeout: float = 10.0) -> None:
        """Close every open connection and refuse new ones (accepted, then
        reset at once), as a database that went away does."""
        done = threading.Event()
        with self._lock:
            self._is_cut = True
            self._cutting = done
        self._wake_w.send(b"x")
        if not done.wait(timeout):
            raise RuntimeError("The proxy did not cut its connections in time.")

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._is_cut = False

    def stop(self, timeout: float = 10.0) -> None:
        """Close everything and stop the thread."""
        self._stopping.set()
        self._wake_w.send(b"x")
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError("The proxy thread did not stop in time.")
        for sock in list(self._peers):
            _reset(sock)
        self._peers.clear()
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(_TICK):
                if key.data == "wake":
                    self._wake_r.recv(64)
                    self._after_wake()
                elif key.data == "accept":
                    self._accept()
                else:
                    self._forward(t.cast(socket.socket, key.fileobj))

    def _after_wake(self) -> None:
        with self._lock:
            cutting, self._cutting = self._cutting, None
        if cutting is None:
            return
        for sock in list(self._peers):
            self._drop(sock)
        cutting.set()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        with self._lock:
            is_cut = self._is_cut
        if is_cut:
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _reset(client)
            return
        for sock in (client, upstream):
            sock.settimeout(10)
        self._peers[client] = upstream
        self._peers[upstream] = client
        self._selector.register(client, selectors.EVENT_READ, "data")
        self._selector.register(upstream, selectors.EVENT_READ, "data")
        self.connections += 1

    def _forward(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        try:
            data = sock.recv(_CHUNK)
            if data:
                peer.sendall(data)
                return
        except OSError:
            pass
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        peer = self._peers.pop(sock, None)
        for one in (sock, peer):
            if one is None:
                continue
            self._peers.pop(one, None)
            try:
                self._selector.unregister(one)
            except (KeyError, ValueError):
                pass
            _reset(one)
