"""`python -m bench.cluster [levels…] [--crash]`: KimiChat as deployed (deploy/): nginx in
front of one, two and three `kimichat.serve` processes on one database and one Redis
(`--crash`: only part 2).

1. Streams held through nginx (200 tokens at 50 tokens/s each, sent at the same instant): a
   level is held when no token is lost and the p99 added latency of the first token is
   ≤ 100 ms and of the last ≤ 250 ms, as bench.capacity counts them. The scaling ratio is the
   most streams held by N processes over those held by one.
2. A crash: the process writing an answer is killed (`kill -9`); the time from the kill to
   the next words of that answer on a page watching through nginx (another process took it
   over and went on in Kimi's partial mode), with the lease at its default (6 s) and at 3 s.

The database is PostgreSQL where DATABASE_URL names one (a fresh database, dropped after),
else SQLite."""

import asyncio
import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.harness import ROOT, Server, percentile, run_stream, stub, stub_stats
from tests.e2e.cluster import Cluster, Redis, cluster_env, database

TOKENS, RATE = 200, 50.0
LEVELS = [int(n) for n in sys.argv[1:] if n.isdigit()] or [100, 200, 300]
SIZES = tuple(int(n) for n in os.environ.get("BENCH_SIZES", "1,2,3").split(","))
WARM_UP = 10  # streams run once through a fresh cluster first, not counted
CRASHES = 3
TOKEN = re.compile(r'hx-swap-oob="beforeend:#msg-\d+-body">')


def _env(tmp: Path, database_url: str, redis_url: str, stub_url: str, lease: float) -> dict:
    env = cluster_env(
        tmp, database_url=database_url, redis_url=redis_url, kimi_url=stub_url + "/v1", s3=""
    )
    for name in ("S3_BUCKET", "S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"):
        env.pop(name)
    env.update(TASKS_BACKEND="immediate", ANSWER_LEASE=str(lease), KIMI_MAX_RETRIES="0")
    return env


def _seed(env: dict, users: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "bench.seed", str(users)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _level(server: Server, stub_url: str, level: int, label: str) -> dict:
    start = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [
            asyncio.create_task(run_stream(session, server, i, f"{label}-{i}", start))
            for i in range(level)
        ]
        await asyncio.sleep(1.0)  # every socket connected before the simultaneous send
        start.set()
        streams = await asyncio.gather(*tasks, return_exceptions=True)
    chunks = (await stub_stats(stub_url))["chunks"]
    first, last, lost, errors = [], [], 0, []
    for stream in streams:
        if isinstance(stream, BaseException) or stream.first_token_at is None:
            lost += TOKENS
            errors.append(repr(stream) if isinstance(stream, BaseException) else "no token")
            continue
        if stream.error:
            errors.append(stream.error)
        lost += TOKENS - stream.text.count(" t")
        sent_first, sent_last = chunks[stream.marker][:2]
        first.append((stream.first_token_at - sent_first) * 1000)
        last.append((stream.last_token_at - sent_last) * 1000)
    p99 = (percentile(first, 99), percentile(last, 99))
    return {"level": level, "lost": lost, "p99": p99, "errors": errors}


def _held(first_ms: float, last_ms: float) -> bool:
    return first_ms <= 100 and last_ms <= 250


def streams_held(stub_url: str) -> dict[int, list[dict]]:
    results: dict[int, list[dict]] = {}
    for size in SIZES:
        with tempfile.TemporaryDirectory() as tmp_name, database(Path(tmp_name)) as url:
            tmp = Path(tmp_name)
            redis = Redis(tmp)
            redis.start()
            env = _env(tmp, url, redis.url, stub_url, lease=10)
            seeded = _seed(env, max(LEVELS) + WARM_UP)
            cluster = Cluster(tmp, env, size)
            cluster.start()
            try:
                server = Server(
                    cluster.url.removeprefix("http://"),
                    0,
                    seeded["cookies"],
                    seeded["conversations"],
                )
                # Each process's first answers pay for what is done once (connections,
                # templates, the Kimi client): not what this measures.
                asyncio.run(_level(server, stub_url, WARM_UP, f"warm{size}"))
                rows = []
                for level in LEVELS:
                    row = asyncio.run(_level(server, stub_url, level, f"n{size}-{level}"))
                    row["held"] = row["lost"] == 0 and _held(*row["p99"])
                    rows.append(row)
                results[size] = rows
            finally:
                cluster.stop()
                redis.stop()
    return results


def _writer(database_url: str, conversation: int) -> int:
    """The pid of the process writing the conversation's answer (its lease names it)."""
    sql = (
        "SELECT lease_owner FROM conversations_message "
        f"WHERE state = 'streaming' AND conversation_id = {conversation}"
    )
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            owner = db.execute(sql).fetchone()[0]
    else:
        import psycopg

        with psycopg.connect(database_url) as db:
            owner = db.execute(sql).fetchone()[0]  # type: ignore[index]
    return int(owner.split(":")[-2])


async def _crash(cluster: Cluster, server: Server, index: int) -> float:
    """Kill the process writing an answer that a page (through nginx) watches: seconds from
    the kill to the next words of the answer on that page."""
    url = f"ws://{server.url}/ws/conversations/{server.conversations[index]}/"
    headers = {"Origin": f"http://{server.url}", "Cookie": server.cookies[index]}
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(url, headers=headers, max_msg_size=0)
        await ws.send_str(json.dumps({"message": f"crash {index}", "client_id": f"c{index}"}))
        shown = 0
        while shown < 60:  # past the first save: a second of text
            msg = await ws.receive(30)
            shown += msg.data.count(" t") if TOKEN.search(msg.data) else 0
        pid = _writer(cluster.env["DATABASE_URL"], server.conversations[index])
        killed = cluster.index_of(pid)
        cluster.apps[killed].send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        killed_at = time.monotonic()
        # Frames the dead writer published just before it died may still arrive: the new
        # writer's words come after the answer as saved (the rewind), or on a new socket.
        rewound, took = False, 0.0
        while True:
            msg = await ws.receive(120)
            if msg.type != aiohttp.WSMsgType.TEXT:
                # Its socket was on the killed process: the page reconnects through nginx
                # (at once here; a browser waits up to a second, with jitter).
                ws = await session.ws_connect(url, headers=headers, max_msg_size=0)
                rewound = True
                continue
            if "<article" in msg.data and 'data-state="streaming"' in msg.data:
                rewound = True
            elif rewound and not took and TOKEN.search(msg.data):
                took = time.monotonic() - killed_at
            elif 'data-state="done"' in msg.data:
                break
        await ws.close()
    cluster.apps[killed].wait(10)  # type: ignore[union-attr]
    cluster.start_app(killed)
    return took


def crash_to_continue(stub_url: str, lease: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp_name, database(Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        redis = Redis(tmp)
        redis.start()
        env = _env(tmp, url, redis.url, stub_url, lease=lease)
        seeded = _seed(env, CRASHES)
        cluster = Cluster(tmp, env, 2)
        cluster.start()
        try:
            server = Server(
                cluster.url.removeprefix("http://"), 0, seeded["cookies"], seeded["conversations"]
            )
            return [asyncio.run(_crash(cluster, server, i)) for i in range(CRASHES)]
        finally:
            cluster.stop()
            redis.stop()


def main() -> None:
    with stub(tokens=TOKENS, rate=RATE) as stub_url:
        held = {} if "--crash" in sys.argv else streams_held(stub_url)
        crashes = {lease: crash_to_continue(stub_url, lease) for lease in (6.0, 3.0)}
    print(f"Streams through nginx, {TOKENS} tokens at {RATE:g} tokens/s each")
    print(f"{'processes':>9}{'streams':>9}{'lost':>7}{'first p99 ms':>14}{'last p99 ms':>13}  held")
    for size, rows in held.items():
        for r in rows:
            first, last = r["p99"]
            print(
                f"{size:>9}{r['level']:>9}{r['lost']:>7}{first:>14.1f}{last:>13.1f}  "
                f"{'yes' if r['held'] else 'no'}"
            )
    most = {
        size: max([r["level"] for r in rows if r["held"]], default=0) for size, rows in held.items()
    }
    for size, rows in held.items():
        for r in rows:
            if r["errors"]:
                failed = len(r["errors"])
                print(f"{size} process(es), {r['level']}: {failed} failed, e.g. {r['errors'][0]}")
    if most:
        base = most.get(1, 0)
        print(
            "Streams held: "
            + ", ".join(
                f"{size} process(es) {n}" + (f" ({n / base:.2f}x one's)" if base else "")
                for size, n in most.items()
            )
        )
    for lease, times in crashes.items():
        print(
            f"kill -9 of the writer -> its next words on the page (ANSWER_LEASE={lease:g} s): "
            f"median {statistics.median(times):.1f} s, max {max(times):.1f} s "
            f"({', '.join(f'{t:.1f}' for t in times)})"
        )


if __name__ == "__main__":
    main()
