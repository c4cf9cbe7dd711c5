"""The workspace dashboard: a static page (build_dashboard) and a local server for it (make_server / serve).

The server rebuilds the page from the workspace every `interval` seconds in a background thread and the page
reloads itself as often, so an open tab follows the workspace without anyone rebuilding by hand.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import tempfile
import threading
from pathlib import Path

from optbench.workspace.dashboard.builder import build_dashboard, collect, parse_markdown_tables
from optbench.workspace.storage import Workspace

__all__ = ["build_dashboard", "collect", "make_server", "parse_markdown_tables", "serve"]

HOST = "127.0.0.1"  # never another interface: the dashboard is for the local user


DEFAULT_INTERVAL = 30  # seconds between rebuilds (and page reloads)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the built folder (the rebuild thread keeps it current)."""

    def log_message(self, format, *args):  # noqa: A002 - quiet unless asked
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


class _DashboardServer(http.server.ThreadingHTTPServer):
    """Serves the build folder and rebuilds it every `interval` seconds until shutdown()."""

    def __init__(self, address, handler, rebuild, interval: float, verbose: bool):
        super().__init__(address, handler)
        self.verbose, self.interval, self._rebuild = verbose, interval, rebuild
        self._stop = threading.Event()
        self.rebuilds = 0
        self._thread = threading.Thread(target=self._loop, name="dashboard-rebuild", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._rebuild()
                self.rebuilds += 1
            except Exception as e:  # noqa: BLE001 - keep serving the last good build
                if self.verbose:
                    print(f"dashboard rebuild failed: {e}", flush=True)

    def shutdown(self) -> None:
        self._stop.set()
        super().shutdown()

    def server_close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        super().server_close()


def make_server(url: str | None, port: int = 8000, out: str | Path | None = None, verbose: bool = False,
                interval: float = DEFAULT_INTERVAL):
    """An HTTP server on 127.0.0.1:port serving the dashboard of the workspace at `url`, rebuilt every `interval`
    seconds (the page reloads as often).

    Returns (server, out_dir); the caller runs server.serve_forever() and later server.shutdown() +
    server.server_close(). Port 0 picks a free port (server.server_address[1]).
    """
    ws = Workspace(url)
    out = Path(out) if out else Path(tempfile.mkdtemp(prefix="optbench-dashboard-"))
    lock = threading.Lock()
    refresh = max(1, round(interval))

    def rebuild():
        with lock:
            build_dashboard(ws, out, refresh_s=refresh)

    rebuild()
    handler = functools.partial(_Handler, directory=str(out))
    return _DashboardServer((HOST, port), handler, rebuild, interval, verbose), out


def serve(url: str | None, port: int = 8000, out: str | Path | None = None, interval: float = DEFAULT_INTERVAL) -> None:
    """Serve the dashboard until interrupted (Ctrl-C), rebuilding it every `interval` seconds."""
    temp = out is None
    server, out = make_server(url, port, out, verbose=True, interval=interval)
    host, real_port = server.server_address[:2]
    print(f"optbench dashboard of {url or '.'} at http://{host}:{real_port}/ (built in {out}, rebuilt every "
          f"{interval:g} s); Ctrl-C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if temp:
            shutil.rmtree(out, ignore_errors=True)
