"""Load benchmark of ``lbp-imaging serve`` (prints figures; not a test).

    .venv/bin/python benchmarks/load.py                      # 32 clients for 20 s
    .venv/bin/python benchmarks/load.py --clients 8 --duration 10 --mix named=1

It starts the server in a subprocess with the example cases stored (or uses ``--url``),
then runs N closed-loop clients (asyncio + httpx: each sends its next request as soon as
its last one is answered, so the load is as high as the server allows) for a fixed time
over a weighted mix of three kinds of request:

* ``named``: the named queries of ``queries/``, through ``GET /api/{name}`` when the
  server has that API (a required ``case`` parameter is given a stored case's IRI), else
  their text through ``POST /sparql``;
* ``adhoc``: a few structural SPARQL queries sent to ``/sparql`` (counts, a lookup in one
  case's graph, DESCRIBE, ASK);
* ``cases``: the bundled Turtle example cases posted again to ``POST /cases``, each
  replacing its stored record (so the store keeps its size), when the server has it.

The first ``--warmup`` seconds are not counted. It prints per kind (and per named query)
the requests, throughput, p50/p99/max latency and errors, the CPU time the server and
the clients used, and whether the target is met: no errors, and p99 under 100 ms for
named queries at 32 clients. The clients share the machine with the server: their own
CPU time is printed so that it can be taken into account.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "cases"
RESULTS_JSON = "application/sparql-results+json"
TOKEN = os.environ.get("LBP_IMAGING_TOKEN", "load-benchmark-token")
"""Replacing a stored case needs the bearer token: the server started here is given it
(for ``--url``, set the server's token with ``LBP_IMAGING_TOKEN``)."""
UPDATES = ("--allow-update", "--token", TOKEN)
TARGET_CLIENTS = 32
TARGET_P99_MS = 100.0
CASE_IRI = re.compile(r"<(https://example\.org/case/[^>]+)>")
ADHOC = {
    "class-counts": "SELECT ?class (COUNT(?x) AS ?n) WHERE { ?x a ?class } GROUP BY ?class "
    "ORDER BY DESC(?n) LIMIT 20",
    "graph-sizes": "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    "case-graph": "SELECT ?p ?o WHERE { GRAPH <{case}> { <{case}> ?p ?o } }",
    "describe-case": "DESCRIBE <{case}>",
    "ask-labels": "ASK { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?label }",
}
"""Ad-hoc queries: structural, about no clinical concept; ``{case}`` is a stored case IRI."""


@dataclass(frozen=True)
class Call:
    """One request to send, with the label it is counted under."""

    label: str
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Plan:
    """What each kind of request may be, found out from the server's OpenAPI document."""

    named: list[tuple[str, str, list[str]]]
    """(name, text, required parameters) for each named query that can be sent."""
    use_api: bool
    case_iris: list[str]
    case_bodies: list[bytes]
    notes: list[str] = field(default_factory=list)

    def call(self, kind: str, rng: random.Random) -> Call:
        case = rng.choice(self.case_iris)
        if kind == "named":
            name, text, required = rng.choice(self.named)
            if self.use_api:
                params = dict.fromkeys(required, case)
                return Call(name, "GET", f"/api/{name}", params, headers={"Accept": RESULTS_JSON})
            return Call(name, "POST", "/sparql", data={"query": text}, headers={"Accept": RESULTS_JSON})
        if kind == "adhoc":
            label, text = rng.choice(list(ADHOC.items()))
            query = text.replace("{case}", case)
            accept = "text/turtle" if query.startswith("DESCRIBE") else RESULTS_JSON
            return Call(label, "POST", "/sparql", data={"query": query}, headers={"Accept": accept})
        body = rng.choice(self.case_bodies)
        headers = {"Content-Type": "text/turtle", "Authorization": f"Bearer {TOKEN}"}
        return Call("post-case", "POST", "/cases", body=body, headers=headers)


# -- the server ---------------------------------------------------------------------------
def _executable() -> Path:
    beside = Path(sys.executable).parent / "lbp-imaging"
    return beside if beside.is_file() else ROOT / ".venv" / "bin" / "lbp-imaging"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, log: Path) -> subprocess.Popen:
    """``lbp-imaging serve`` with the example cases stored, once it answers."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(_executable()), "serve", "--port", str(port), "--cases", str(EXAMPLES), *UPDATES],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode}: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/sparql", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    sys.exit(f"the server did not answer within 120 s: see {log}")


def machine_busy_seconds() -> float:
    """CPU time all cores of the machine have spent busy so far (Linux ``/proc/stat``)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/{pid}/stat`` after the command name (Linux)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time so far of a process and the processes it started (the
    server's case workers), as far as they are still running (Linux ``/proc``)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                children[int(_stat(int(entry.name))[1])].append(int(entry.name))
        except OSError:
            continue  # ended meanwhile
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        pending += children.get(current, [])
        try:
            fields = _stat(current)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# -- finding out what to send -------------------------------------------------------------
def _named_queries() -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted((ROOT / "queries").glob("*.rq"))}


def _example_cases() -> list[tuple[str, bytes]]:
    """(case IRI, Turtle) of each bundled example file that holds exactly one case."""
    found = []
    for path in sorted(EXAMPLES.glob("*.ttl")):
        text = path.read_text(encoding="utf-8")
        iris = set(CASE_IRI.findall(text))
        if len(iris) == 1:
            found.append((iris.pop(), text.encode("utf-8")))
    return found


def plan(client: httpx.Client, only: set[str], skip: set[str]) -> Plan:
    paths = client.get("/openapi.json").json()["paths"]
    examples = _example_cases()
    named, notes = [], []
    use_api = any(p.startswith("/api/") for p in paths)
    for name, text in _named_queries().items():
        if (only and name not in only) or name in skip:
            continue
        if not use_api:
            named.append((name, text, []))
            continue
        operation = paths.get(f"/api/{name}", {}).get("get")
        if operation is None:
            notes.append(f"named query {name}: no GET /api/{name}, left out")
            continue
        required = [p["name"] for p in operation.get("parameters", []) if p.get("required")]
        if set(required) - {"case"}:
            notes.append(f"named query {name}: required parameters {required} unknown here, left out")
            continue
        named.append((name, text, required))
    if not use_api:
        notes.append("no /api/{name} on this server: named queries go to /sparql as text")
    bodies = []
    if "post" in paths.get("/cases", {}):
        for _, body in examples:
            headers = {"Content-Type": "text/turtle", "Authorization": f"Bearer {TOKEN}"}
            answer = client.post("/cases", content=body, headers=headers)
            if answer.status_code in (200, 201):
                bodies.append(body)
        notes.append(f"cases: {len(bodies)} example Turtle files re-posted (each replaces its record)")
    else:
        notes.append("no POST /cases on this server: the case-submission mix is skipped")
    return Plan(named, use_api, [iri for iri, _ in examples], bodies, notes)


# -- running the clients ------------------------------------------------------------------
@dataclass
class Tally:
    latencies: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))


async def _client(
    seed: int,
    url: str,
    plan_: Plan,
    kinds: list[str],
    weights: list[float],
    counted_from: float,
    until: float,
    tally: Tally,
) -> None:
    """One client: its own connection (kept alive), one request at a time until ``until``.

    Each client has its own ``AsyncClient`` rather than all sharing one pool: a shared
    httpx pool of 32 connections costs the load generator several times more CPU per
    request and adds its own waits to the latencies measured."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        await _requests(seed, http, plan_, kinds, weights, counted_from, until, tally)


async def _requests(
    seed: int,
    http: httpx.AsyncClient,
    plan_: Plan,
    kinds: list[str],
    weights: list[float],
    counted_from: float,
    until: float,
    tally: Tally,
) -> None:
    rng = random.Random(seed)
    while (started := time.perf_counter()) < until:
        kind = rng.choices(kinds, weights)[0]
        call = plan_.call(kind, rng)
        error = None
        try:
            answer = await http.request(
                call.method,
                call.path,
                params=call.params,
                data=call.data,
                content=call.body,
                headers=call.headers,
            )
            if answer.status_code >= 300:
                error = f"{answer.status_code}: {answer.text[:120]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if started >= counted_from:
            key = (kind, call.label)
            tally.latencies[key].append(time.perf_counter() - started)
            if error:
                tally.errors[key].append(error)


async def run_load(
    url: str, plan_: Plan, mix: dict[str, float], clients: int, duration: float, warmup: float
) -> Tally:
    kinds = [k for k, w in mix.items() if w > 0 and (k != "cases" or plan_.case_bodies)]
    weights = [mix[k] for k in kinds]
    tally = Tally()
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _client(i, url, plan_, kinds, weights, start + warmup, start + warmup + duration, tally)
            for i in range(clients)
        )
    )
    return tally


# -- the report -----------------------------------------------------------------------------
def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _row(name: str, values: list[float], errors: int, duration: float) -> str:
    ms = sorted(v * 1000 for v in values)
    return (
        f"{name:<36} {len(ms):>8} {len(ms) / duration:>9.1f} {percentile(ms, 50):>8.1f} "
        f"{percentile(ms, 99):>8.1f} {ms[-1]:>8.1f} {errors:>7}"
    )


def report(tally: Tally, duration: float, clients: int) -> None:
    """Print the figures and whether the target is met."""
    columns = ("requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors")
    widths = (8, 9, 8, 8, 8, 7)
    print(f"{'kind / request':<36} " + " ".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
    by_kind: dict[str, list[float]] = defaultdict(list)
    errors_by_kind: dict[str, int] = defaultdict(int)
    for (kind, _), values in tally.latencies.items():
        by_kind[kind] += values
    for (kind, _), errors in tally.errors.items():
        errors_by_kind[kind] += len(errors)
    everything = [v for values in by_kind.values() for v in values]
    for kind in sorted(by_kind):
        print(_row(kind, by_kind[kind], errors_by_kind[kind], duration))
    print(_row("all", everything, sum(errors_by_kind.values()), duration))
    print()
    for (kind, label), values in sorted(tally.latencies.items()):
        print(_row(f"  {kind}: {label}", values, len(tally.errors.get((kind, label), [])), duration))
    for (kind, label), errors in sorted(tally.errors.items()):
        print(f"errors in {kind} {label} (first of {len(errors)}): {errors[0]}")
    named = sorted(by_kind.get("named", []))
    named_p99 = percentile(named, 99) * 1000 if named else float("inf")
    met = clients >= TARGET_CLIENTS and not tally.errors and named_p99 < TARGET_P99_MS
    print(
        f"\ntarget (0 errors, named-query p99 < {TARGET_P99_MS:g} ms at {TARGET_CLIENTS} clients): "
        f"{'MET' if met else 'NOT MET'} ({sum(errors_by_kind.values())} errors, named p99 "
        f"{named_p99:.1f} ms at {clients} clients)"
    )


def _mix(text: str) -> dict[str, float]:
    mix = {"named": 0.0, "adhoc": 0.0, "cases": 0.0}
    for part in text.split(","):
        kind, _, weight = part.partition("=")
        if kind not in mix:
            raise argparse.ArgumentTypeError(f"unknown kind {kind!r}: use named, adhoc, cases")
        mix[kind] = float(weight or 1)
    return mix


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds counted (default 20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds first, not counted (default 2)")
    parser.add_argument(
        "--mix",
        type=_mix,
        default=_mix("named=6,adhoc=3,cases=1"),
        help="weights of the kinds of request (default named=6,adhoc=3,cases=1)",
    )
    parser.add_argument("--only", default="", help="comma-separated named queries to send (default all)")
    parser.add_argument("--skip", default="", help="comma-separated named queries not to send")
    parser.add_argument("--url", help="use this running server instead of starting one")
    parser.add_argument(
        "--port", type=int, default=0, help="port for the server started here (default: a free one)"
    )
    args = parser.parse_args()

    process = None
    url = args.url
    if url is None:
        port = args.port or free_port()
        process = start_server(port, Path(os.environ.get("TMPDIR", "/tmp")) / "lbp-imaging-load.log")
        url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            plan_ = plan(
                client, set(filter(None, args.only.split(","))), set(filter(None, args.skip.split(",")))
            )
        print(
            f"server {url}; {args.clients} clients for {args.duration:g} s after {args.warmup:g} s warm-up; "
            f"mix {', '.join(f'{k}={w:g}' for k, w in args.mix.items())}; {os.cpu_count()} cores"
        )
        for note in plan_.notes:
            print(f"note: {note}")
        server_cpu = cpu_seconds(process.pid) if process else 0.0
        own_cpu, busy = time.process_time(), machine_busy_seconds()
        tally = asyncio.run(run_load(url, plan_, args.mix, args.clients, args.duration, args.warmup))
        elapsed = args.duration + args.warmup
        used = cpu_seconds(process.pid) - server_cpu if process else 0.0
        own = time.process_time() - own_cpu
        others = machine_busy_seconds() - busy - used - own
        if process:
            share = f"{used:.1f} s in {elapsed:g} s ({used / elapsed:.2f} cores)"
            print(f"server CPU (with its case workers): {share}")
        print(f"client CPU: {own:.1f} s in {elapsed:g} s ({own / elapsed:.2f} cores)")
        print(
            f"other processes on the machine: {others / elapsed:.2f} cores (competing for the same cores)\n"
        )
        report(tally, args.duration, args.clients)
    finally:
        if process:
            process.terminate()
            process.wait(timeout=20)


if __name__ == "__main__":
    main()
