"""The workspace dashboard: a static page (build_dashboard) and a local server for it (make_server / serve)."""

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


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the built folder; a request for the page rebuilds it first (fresh data on every reload)."""

    rebuild = None  # set per server

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.path.split("?", 1)[0] in ("/", "/index.html") and self.rebuild is not None:
            try:
                self.rebuild()
            except Exception as e:  # noqa: BLE001 - keep serving the last good build
                self.log_message("rebuild failed: %s", e)
        super().do_GET()

    def log_message(self, format, *args):  # noqa: A002 - quiet unless asked
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


def make_server(url: str | None, port: int = 8000, out: str | Path | None = None, verbose: bool = False):
    """An HTTP server on 127.0.0.1:port serving a freshly built dashboard of the workspace at `url`.

    Returns (server, out_dir); the caller runs server.serve_forever() and later server.shutdown() +
    server.server_close(). Port 0 picks a free port (server.server_address[1]).
    """
    ws = Workspace(url)
    out = Path(out) if out else Path(tempfile.mkdtemp(prefix="optbench-dashboard-"))
    lock = threading.Lock()

    def rebuild():
        with lock:
            build_dashboard(ws, out)

    rebuild()
    handler = type("DashboardHandler", (_Handler,), {"rebuild": staticmethod(rebuild)})
    server = http.server.ThreadingHTTPServer((HOST, port), functools.partial(handler, directory=str(out)))
    server.verbose = verbose
    return server, out


def serve(url: str | None, port: int = 8000, out: str | Path | None = None) -> None:
    """Serve the dashboard until interrupted (Ctrl-C)."""
    temp = out is None
    server, out = make_server(url, port, out, verbose=True)
    host, real_port = server.server_address[:2]
    print(f"optbench dashboard of {url or '.'} at http://{host}:{real_port}/ (built in {out}); Ctrl-C to stop")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if temp:
            shutil.rmtree(out, ignore_errors=True)
