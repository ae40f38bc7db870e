"""Start a real ``lbp-imaging serve`` process for the HTTP tests, and stop it.

The tests talk to the server over a socket, as clients do, so that what they check is
what uvicorn, the protocol handling and the worker threads do together, not a
framework's in-process test client.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases"
TOKEN = "test-token-not-secret"


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    @property
    def endpoint(self) -> str:
        return self.url + "/sparql"


def _executable() -> Path:
    beside = Path(sys.executable).parent / "lbp-imaging"
    return beside if beside.is_file() else ROOT / ".venv" / "bin" / "lbp-imaging"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], log_dir: Path, env: dict[str, str] | None = None, wait: float = 60) -> Server:
    """Start ``lbp-imaging serve ARGS`` on a free port; return once it answers."""
    port = free_port()
    log = log_dir / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(_executable()), "serve", "--port", str(port), *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(server.endpoint, timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.05)
    stop(server)
    raise RuntimeError(f"the server did not answer within {wait} s:\n{log.read_text()}")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def running(args: list[str], log_dir: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    server = start(args, log_dir, env)
    try:
        yield server
    finally:
        stop(server)
