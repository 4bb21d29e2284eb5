"""The quota check as a broker sees it, in Python: one process, one connection, 256 concurrent callers each making
its next check when the last is answered, 64 principals (the twin of the repository's bench/broker-path.ts).

    rivven           AsyncBrokerQuotas.request (default options) against `node bin/rivven serve`
    rivven-blocking  BrokerQuotas.request from 256 threads sharing one QuotaClient
    incr             redis-py asyncio INCR on one connection (a floor with no quota logic: a command per round trip)
    incr-pipelined   redis-py asyncio INCR, pipelined by hand: the INCRs of one loop iteration go as one pipeline

redis-py has no auto-pipelining, so the pipelined row batches like the rivven client does (one write per loop
iteration). redis-py runs with hiredis, its C reply parser. Prints one JSON line per row. Run:

    .venv/bin/python bench/broker_path.py [--measure 5 --warmup 2 --deadline 0.025 --rows rivven,incr]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis

from rivven import AsyncBrokerQuotas, AsyncQuotaClient, BrokerQuotas, QuotaClient

REPO = Path(__file__).resolve().parents[3]
CALLERS = 256
PRINCIPALS = 64


def percentile(sorted_ms: list[float], p: float) -> float:
    return round(sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * p))], 3) if sorted_ms else 0.0


def report(name: str, lat: list[float], seconds: float, **extra: Any) -> dict[str, Any]:
    lat.sort()
    row = {"row": name, "checks_per_s": round(len(lat) / seconds), "p50_ms": percentile(lat, 0.5)}
    row |= {"p99_ms": percentile(lat, 0.99), **extra}
    print(json.dumps(row), flush=True)
    return row


async def drive(
    check: Callable[[int], Awaitable[object]], warmup: float, measure: float, failures: Callable[[], int] = lambda: 0
) -> tuple[list[float], int]:
    """CALLERS loops of ``check`` for warmup + measure seconds: the latencies (ms) of the measured part, and the
    failures (answered 0 without the sidecar) counted during it."""
    lat: list[float] = []
    start = time.perf_counter()
    begin, end = start + warmup, start + warmup + measure
    loop = asyncio.get_running_loop()
    marks: list[int] = []
    loop.call_later(warmup, lambda: marks.append(failures()))

    async def caller(c: int) -> None:
        i = c
        while True:
            t0 = time.perf_counter()
            if t0 >= end:
                return
            await check(i % PRINCIPALS)
            i += 1
            if t0 >= begin:
                lat.append((time.perf_counter() - t0) * 1000)
            # Yield to the loop between checks, as a broker's checks arrive from socket events: a check answered
            # at once (breaker open) must not let one caller spin and starve the loop's I/O. The same for every row.
            await asyncio.sleep(0)

    await asyncio.gather(*(caller(c) for c in range(CALLERS)))
    return lat, failures() - (marks[0] if marks else 0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_sidecar(tmp: str) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIVVEN_")} | {"RIVVEN_METRICS_PORT": "0"}
    argv = ["node", str(REPO / "bin" / "rivven"), "serve", "--port", "0", "--data-dir", tmp]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True, cwd=tmp)
    assert proc.stdout is not None
    for line in proc.stdout:
        if '"rivven listening"' in line:
            port = int(json.loads(line)["address"].rsplit(":", 1)[1])
            threading.Thread(target=lambda: [None for _ in proc.stdout or []], daemon=True).start()
            return proc, port
    raise RuntimeError("the sidecar did not start")


def start_redis(tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, cwd=tmp, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


async def bench_rivven(port: int, warmup: float, measure: float, deadline: float) -> None:
    async with AsyncQuotaClient(port=port, client_name="bench") as client:
        quotas = AsyncBrokerQuotas(client, record_deadline=deadline)
        users = [f"user-{i}" for i in range(PRINCIPALS)]
        lat, failed = await drive(lambda p: quotas.request(users[p], "bench"), warmup, measure, lambda: quotas.failures)
        extra = {"answered_per_s": round((len(lat) - failed) / measure), "failed_open_in_window": failed}
        extra |= {"failed_open_total": quotas.failures, "short_circuited_total": quotas.short_circuited}
        report(f"rivven AsyncBrokerQuotas.request (deadline {deadline * 1000:g} ms)", lat, measure, **extra)


def bench_rivven_blocking(port: int, warmup: float, measure: float, deadline: float, callers: int) -> None:
    with QuotaClient(port=port, client_name="bench-blocking") as client:
        quotas = BrokerQuotas(client, record_deadline=deadline)
        users = [f"user-{i}" for i in range(PRINCIPALS)]
        lats: list[list[float]] = [[] for _ in range(callers)]
        start = time.perf_counter()
        begin, end = start + warmup, start + warmup + measure

        def caller(c: int) -> None:
            i, lat = c, lats[c]
            while (t0 := time.perf_counter()) < end:
                quotas.request(users[i % PRINCIPALS], "bench")
                i += 1
                if t0 >= begin:
                    lat.append((time.perf_counter() - t0) * 1000)
                time.sleep(0)  # yield the GIL between checks, as the async callers yield the loop

        marks: list[int] = []
        timer = threading.Timer(warmup, lambda: marks.append(quotas.failures))
        timer.start()
        threads = [threading.Thread(target=caller, args=(c,)) for c in range(callers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        failed = quotas.failures - (marks[0] if marks else 0)
        measured = sum(len(lat) for lat in lats)
        extra = {"answered_per_s": round((measured - failed) / measure), "failed_open_in_window": failed}
        extra |= {"failed_open_total": quotas.failures, "short_circuited_total": quotas.short_circuited}
        name = f"rivven BrokerQuotas.request, {callers} threads (deadline {deadline * 1000:g} ms)"
        report(name, [x for lat in lats for x in lat], measure, **extra)


async def bench_incr(port: int, warmup: float, measure: float) -> None:
    pool = aredis.BlockingConnectionPool(host="127.0.0.1", port=port, max_connections=1)
    r = aredis.Redis(connection_pool=pool)
    keys = [f"bench:{i}" for i in range(PRINCIPALS)]
    lat, _ = await drive(lambda p: r.incr(keys[p]), warmup, measure)
    report(f"redis-py {redis.__version__} INCR, one connection", lat, measure)
    await r.aclose()
    await pool.aclose()


class Batcher:
    """INCRs of one loop iteration go out as one pipeline (transaction off) on the one connection."""

    def __init__(self, r: aredis.Redis) -> None:
        self.r = r
        self.queue: list[tuple[str, asyncio.Future[int]]] = []
        self.lock = asyncio.Lock()  # one pipeline in flight at a time: the connection is not multiplexed

    def incr(self, key: str) -> asyncio.Future[int]:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if not self.queue:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.flush()))
        self.queue.append((key, fut))
        return fut

    async def flush(self) -> None:
        async with self.lock:
            batch, self.queue = self.queue, []
            if not batch:
                return
            pipe = self.r.pipeline(transaction=False)
            for key, _ in batch:
                pipe.incr(key)
            for (_, fut), value in zip(batch, await pipe.execute(), strict=True):
                fut.set_result(value)


async def bench_incr_pipelined(port: int, warmup: float, measure: float) -> None:
    pool = aredis.BlockingConnectionPool(host="127.0.0.1", port=port, max_connections=1)
    r = aredis.Redis(connection_pool=pool)
    b = Batcher(r)
    keys = [f"bench:{i}" for i in range(PRINCIPALS)]
    lat, _ = await drive(lambda p: b.incr(keys[p]), warmup, measure)
    report(f"redis-py {redis.__version__} INCR, pipelined by hand", lat, measure)
    await r.aclose()
    await pool.aclose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--measure", type=float, default=5.0)
    ap.add_argument("--deadline", type=float, default=0.025, help="record_deadline of the rivven rows, seconds")
    ap.add_argument("--threads", type=int, default=CALLERS, help="callers of the rivven-blocking row")
    ap.add_argument("--rows", default="rivven,rivven-blocking,incr,incr-pipelined")
    a = ap.parse_args()
    rows = a.rows.split(",")
    tmp = tempfile.mkdtemp(prefix="rivven-py-bench-")
    sidecar, sport = start_sidecar(tmp)
    rds, rport = start_redis(tmp)
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), "load": os.getloadavg()}))
    try:
        if "rivven" in rows:
            asyncio.run(bench_rivven(sport, a.warmup, a.measure, a.deadline))
        if "rivven-blocking" in rows:
            bench_rivven_blocking(sport, a.warmup, a.measure, a.deadline, a.threads)
        if "incr" in rows:
            asyncio.run(bench_incr(rport, a.warmup, a.measure))
        if "incr-pipelined" in rows:
            asyncio.run(bench_incr_pipelined(rport, a.warmup, a.measure))
    finally:
        for p in (sidecar, rds):
            p.send_signal(signal.SIGTERM)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
