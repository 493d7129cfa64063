"""Running the review app: uvicorn on one address, with the link the reviewer opens."""

from __future__ import annotations

import socket

import uvicorn

from catalog import Catalog
from catalog.settings import Settings
from review.app import create_app
from review.decisions import DecisionLog
from review.security import TOKEN_PARAMETER, check_exposure
from review.store import ReviewStore


def review_server(
    catalog: Catalog,
    settings: Settings,
    *,
    name: str,
    reviewer: str,
    host: str = "127.0.0.1",
    port: int = 8809,
    token: str | None = None,
    blind_only: bool = False,
) -> tuple[uvicorn.Server, socket.socket, str]:
    """A server ready to run (`server.run(sockets=[sock])`), its bound socket, and the link to open.

    The socket is bound here, so port 0 picks a free port and the link names the real one.
    """
    check_exposure(host, token)
    log = DecisionLog(settings.reviews_dir, reviewer, catalog)
    app = create_app(ReviewStore(catalog, settings, name), log, token=token, blind_only=blind_only)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    link = f"http://{shown}:{bound}/" + (f"?{TOKEN_PARAMETER}={token}" if token else "")
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config), sock, link
