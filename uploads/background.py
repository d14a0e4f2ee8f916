"""Starting tasks from a request without making it wait, and without holding the thread that
every database call of the event loop shares."""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import connections

_running: set[asyncio.Task] = set()
# Tasks' own threads: a task waiting its turn (files are read a few at a time) must not take
# a thread of the pool that other work of the event loop shares.
_threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="kimichat-task")


def start(enqueue: Callable[..., object], *args) -> None:
    """Call `enqueue` (a task's `enqueue`, or a function that enqueues one) on a worker thread
    of its own. With the immediate backend the task runs there; with the database backend it
    is only queued. Call from the event loop."""
    call = sync_to_async(_enqueue, thread_sensitive=False, executor=_threads)
    job = asyncio.create_task(call(enqueue, args))
    _running.add(job)
    job.add_done_callback(_running.discard)


def _enqueue(enqueue: Callable[..., object], args: tuple) -> None:
    try:
        enqueue(*args)
    finally:
        # A pool thread is not a request: nothing else closes its connections.
        connections.close_all()


async def idle() -> None:
    """Wait for every task started here (tests, benchmarks)."""
    while _running:
        await asyncio.gather(*_running, return_exceptions=True)
