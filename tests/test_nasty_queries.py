"""The nasty-query corpus (``nasty_queries``) against a real server: every request is refused
(4xx) or cut off (503), the server stays up, and a simple query sent again and again while
the corpus runs is answered every time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
from conftest import HOSTILE_BODY_CAP_MB
from nasty_queries import REFUSED_OR_CUT_OFF, corpus


def test_every_nasty_request_is_refused_or_cut_off_and_the_server_stays_responsive(hostile_server):
    server = hostile_server
    done = threading.Event()
    probes: list[int] = []

    def probe() -> None:
        while not done.is_set():
            probes.append(httpx.post(server.endpoint, data={"query": "ASK {}"}, timeout=60).status_code)

    def send(nasty) -> tuple[str, int]:
        headers = {"content-type": nasty.content_type}
        answer = httpx.post(server.endpoint, content=nasty.content(), headers=headers, timeout=60)
        return nasty.name, answer.status_code

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            statuses = dict(pool.map(send, corpus(HOSTILE_BODY_CAP_MB * 1024 * 1024)))
    finally:
        done.set()
        prober.join()
    wrong = {name: status for name, status in statuses.items() if status not in REFUSED_OR_CUT_OFF}
    assert not wrong, f"answered other than 4xx/503: {wrong}"
    assert probes and set(probes) == {200}, "a simple query failed while the corpus ran"
    assert server.process.poll() is None
    assert "Traceback" not in server.log.read_text()
