"""Run the demo site and the map provider: ``python -m examples.hangzhou_demo``.

The site listens on http://127.0.0.1:5000/ and the map provider on
http://localhost:5001/; ``DEMO_PORT`` and ``MAP_PORT`` change the ports.
Two host names make two sites in the browser's eyes, so the map is a real
third-party embed. Ctrl-C stops both.
"""

from __future__ import annotations

import os
import signal
import threading
import types

from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

from . import create_app
from .mapapp import create_map_app

HOST = "127.0.0.1"


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        port = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a port number, not {value!r}.") from None
    if not 0 < port < 65536:
        raise SystemExit(f"{name} must be between 1 and 65535, not {port}.")
    return port


def start_servers(
    site_port: int, map_port: int
) -> tuple[list[BaseWSGIServer], list[threading.Thread]]:
    """Start the site and the map provider, each in its own thread.

    :param site_port: The port of the site, on 127.0.0.1.
    :param map_port: The port of the map provider, reached as ``localhost``.
    """
    site_origin = f"http://{HOST}:{site_port}"
    map_origin = f"http://localhost:{map_port}"
    site = create_app({"MAP_ORIGIN": map_origin})
    maps = create_map_app(site_origins=(site_origin, f"http://localhost:{site_port}"))
    servers = [
        make_server(HOST, site_port, site, threaded=True),
        make_server(HOST, map_port, maps, threaded=True),
    ]
    threads = [
        threading.Thread(target=server.serve_forever, name=name, daemon=True)
        for server, name in zip(servers, ("site", "map"), strict=True)
    ]
    for thread in threads:
        thread.start()
    return servers, threads


def stop_servers(
    servers: list[BaseWSGIServer], threads: list[threading.Thread]
) -> None:
    """Stop the servers started by :func:`start_servers` and wait for them."""
    for server in servers:
        server.shutdown()
    for thread in threads:
        thread.join()
    for server in servers:
        server.server_close()


def _interrupt(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Serve both apps until Ctrl-C (or SIGTERM)."""
    signal.signal(signal.SIGTERM, _interrupt)
    site_port = _port("DEMO_PORT", 5000)
    map_port = _port("MAP_PORT", 5001)
    servers, threads = start_servers(site_port, map_port)
    print(f"Hangzhou Digital (the site):   http://{HOST}:{site_port}/")
    print(f"West Lake Maps (the provider): http://localhost:{map_port}/map/west-lake")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nStopping.", flush=True)
    finally:
        stop_servers(servers, threads)


if __name__ == "__main__":
    main()
