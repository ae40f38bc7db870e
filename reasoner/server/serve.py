"""Start the server: the application, optionally some cases assessed into it, on uvicorn.

Kept out of ``cli`` so that the command only parses options, and so that everything
the server imports (FastAPI, uvicorn, the engine) loads only when it starts.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import uvicorn

from ..knowledge import KnowledgeBase
from .app import create_app
from .cases.graphs import assess_into
from .settings import ServerSettings

SHUTDOWN_GRACE = 3
"""Seconds a stopping server waits for the requests under way (see ``serve``)."""


def serve(
    kb: KnowledgeBase,
    settings: ServerSettings,
    store_path: Path | None,
    host: str,
    port: int,
    case_paths: list[Path],
) -> None:
    """Run until interrupted. Cases at ``case_paths`` are assessed and stored first;
    invalid ones are reported on stderr and left out."""
    handler = logging.StreamHandler()  # stderr, beside uvicorn's own log
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("lbp_imaging")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    app = create_app(kb, store_path, settings)
    if case_paths:
        state = app.state.lbp
        run, stored = assess_into(state.store, state.assessor, case_paths)
        for warning in run.input_warnings:
            print(f"lbp-imaging: warning: {warning}", file=sys.stderr)
        for error in run.input_errors:
            print(f"lbp-imaging: {error}", file=sys.stderr)
        for result in run.invalid:
            for line in result.error_lines():
                print(f"lbp-imaging: {line}", file=sys.stderr)
        print(f"lbp-imaging: stored {len(stored)} assessed case(s)", file=sys.stderr)
    # httptools parses HTTP in C (h11, uvicorn's pure-Python parser, cost about a quarter
    # of the server's time under load); "auto" runs the event loop on uvloop where it is
    # installed (not on Windows). On a stop, requests under way get SHUTDOWN_GRACE seconds
    # to finish: a query still computing then is cut off (its process is killed) rather
    # than holding the stop until its deadline.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        http="httptools",
        loop="auto",
        timeout_graceful_shutdown=SHUTDOWN_GRACE,
    )
