"""Run the demo site and the map provider: ``python -m examples.hangzhou_demo``.

The site listens on http://127.0.0.1:5000/ and the map provider on
http://localhost:5001/; ``DEMO_PORT`` and ``MAP_PORT`` change the ports.
Two host names make two sites in the browser's eyes, so the map is a real
third-party embed. ``--asgi`` serves the site's ASGI twin (FastAPI) with
uvicorn instead of the Flask app. Ctrl-C stops both.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import threading
import types

from werkzeug.serving import BaseWSGIServer
from werkzeug.serving import make_server

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


def _check_free(port: int, variable: str) -> None:
    """Exit with one clear line when ``port`` is taken."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
            raise SystemExit(
                f"Port {port} is already in use: set {variable} to a free port,"
                f" for example {variable}={port + 10} make demo."
            ) from None


def _serve_in_thread(server: BaseWSGIServer, name: str) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return thread


def start_servers(
    site_port: int, map_port: int
) -> tuple[list[BaseWSGIServer], list[threading.Thread]]:
    """Start the Flask site and the map provider, each in its own thread.

    :param site_port: The port of the site, on 127.0.0.1.
    :param map_port: The port of the map provider, reached as ``localhost``.
    """
    from . import create_app

    site = create_app({"MAP_ORIGIN": f"http://localhost:{map_port}"})
    servers = [
        make_server(HOST, site_port, site, threaded=True),
        _map_server(site_port, map_port),
    ]
    threads = [
        _serve_in_thread(s, n) for s, n in zip(servers, ("site", "map"), strict=True)
    ]
    return servers, threads


def _map_server(site_port: int, map_port: int) -> BaseWSGIServer:
    site_origin = f"http://{HOST}:{site_port}"
    maps = create_map_app(site_origins=(site_origin, f"http://localhost:{site_port}"))
    return make_server(HOST, map_port, maps, threaded=True)


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


def _serve_asgi(site_port: int, map_port: int) -> None:
    import uvicorn

    from .asgi import create_asgi_app

    maps = _map_server(site_port, map_port)
    thread = _serve_in_thread(maps, "map")
    app = create_asgi_app(map_origin=f"http://localhost:{map_port}")
    try:
        uvicorn.run(app, host=HOST, port=site_port, log_level="warning")
    finally:
        stop_servers([maps], [thread])


def main(argv: list[str] | None = None) -> None:
    """Serve both apps until Ctrl-C (or SIGTERM)."""
    parser = argparse.ArgumentParser(prog="python -m examples.hangzhou_demo")
    parser.add_argument(
        "--asgi", action="store_true", help="serve the FastAPI twin with uvicorn"
    )
    args = parser.parse_args(argv)
    site_port = _port("DEMO_PORT", 5000)
    map_port = _port("MAP_PORT", 5001)
    _check_free(site_port, "DEMO_PORT")
    _check_free(map_port, "MAP_PORT")
    kind = "FastAPI and uvicorn" if args.asgi else "Flask"
    print(f"Hangzhou Digital (the site, {kind}): http://{HOST}:{site_port}/")
    print(f"West Lake Maps (the provider):   http://localhost:{map_port}/map/west-lake")
    print("Press Ctrl-C to stop.", flush=True)
    if args.asgi:
        # uvicorn handles Ctrl-C and SIGTERM itself.
        _serve_asgi(site_port, map_port)
        return
    signal.signal(signal.SIGTERM, _interrupt)
    servers, threads = start_servers(site_port, map_port)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nStopping.", flush=True)
    finally:
        stop_servers(servers, threads)


if __name__ == "__main__":
    main()
