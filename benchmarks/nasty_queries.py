"""The nasty-query corpus against a running server, measured (prints figures; not a test).

    .venv/bin/python benchmarks/nasty_queries.py                 # 3 rounds, 4 clients
    .venv/bin/python benchmarks/nasty_queries.py --rounds 5 --clients 8

It starts ``lbp-imaging serve`` with the example cases and its default limits (or uses
``--url``), then sends the corpus of ``tests/nasty_queries.py`` ``--rounds`` times from
``--clients`` concurrent clients while one more client sends a simple query (``ASK {}``)
every 50 ms and times each answer, and samples the memory of the server and every process
it started (query processes, case workers) every 50 ms. It prints: the statuses, requests
answered other than 4xx/503, whether the server crashed, the simple query's latency
(median, p99, max) and how many took over a second (stalls), and the peak memory (the
server's own process and the whole tree) beside the configured per-query limit.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from load import free_port, start_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from nasty_queries import REFUSED_OR_CUT_OFF, corpus

PAGE = 4096


def _tree(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [root], {root}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier}
        found.extend(frontier)
    return found


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def _pss(pid: int) -> int:
    """The process's proportional share of memory (pages shared with its parent after a
    fork counted once in all, not once per process), in bytes; its RSS where unknown."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return _rss(pid)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    port = free_port()
    process = start_server(port, Path("/tmp/lbp-imaging-nasty.log"))
    url = f"http://127.0.0.1:{port}/sparql"
    done = threading.Event()
    latencies: list[float] = []
    probe_failures: Counter = Counter()
    peak = {"server": 0, "tree": 0, "processes": 0}

    def probe() -> None:
        with httpx.Client(timeout=60) as client:
            while not done.is_set():
                start = time.perf_counter()
                status = client.post(url, data={"query": "ASK {}"}).status_code
                latencies.append(time.perf_counter() - start)
                if status != 200:
                    probe_failures[status] += 1
                time.sleep(0.05)

    def sample() -> None:
        while not done.is_set():
            tree = _tree(process.pid)
            peak["server"] = max(peak["server"], _rss(process.pid))
            peak["tree"] = max(peak["tree"], sum(_pss(p) for p in tree))
            peak["processes"] = max(peak["processes"], len(tree))
            time.sleep(0.05)

    def send(nasty) -> tuple[str, int | str]:
        try:
            answer = httpx.post(
                url, content=nasty.content(), headers={"content-type": nasty.content_type}, timeout=120
            )
            return nasty.name, answer.status_code
        except httpx.HTTPError as exc:
            return nasty.name, type(exc).__name__

    baseline = sum(_pss(p) for p in _tree(process.pid))
    threads = [threading.Thread(target=probe), threading.Thread(target=sample)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(send, corpus() * args.rounds))
    finally:
        done.set()
        for thread in threads:
            thread.join()
    elapsed = time.perf_counter() - started
    crashed = process.poll() is not None
    process.terminate()
    process.wait(30)
    statuses = Counter(status for _, status in results)
    wrong = sorted({name for name, status in results if status not in REFUSED_OR_CUT_OFF})
    ordered = sorted(latencies)
    mib = 1024 * 1024
    print(
        f"corpus: {len(corpus())} requests x {args.rounds} rounds = {len(results)}, {args.clients} clients, "
        f"{elapsed:.1f} s"
    )
    print(f"statuses: {dict(sorted(statuses.items(), key=str))}")
    print(f"answered other than 4xx/503: {len(wrong)} {wrong if wrong else ''}")
    print(f"server crashed: {'yes' if crashed else 'no'}")
    print(
        f"simple query (ASK {{}}) while the corpus ran: {len(ordered)} sent, {sum(probe_failures.values())} "
        f"failed, median {ordered[len(ordered) // 2] * 1000:.0f} ms, "
        f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms, "
        f"over 1 s (stalls): {sum(1 for v in ordered if v > 1)}"
    )
    print(
        f"memory: server process peak RSS {peak['server'] / mib:.0f} MiB; server and its "
        f"{peak['processes'] - 1} processes (PSS, shared pages counted once): "
        f"before {baseline / mib:.0f} MiB, peak {peak['tree'] / mib:.0f} MiB; "
        "per-query limit 512 MiB (the server's default --max-query-memory-mb)"
    )


if __name__ == "__main__":
    main()
