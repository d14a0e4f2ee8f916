"""The life of a serving process: who it is (an answer's lease names it), its start and its
stop.

When the server starts serving it calls `serve` (the apps' background work starts). On
SIGTERM it calls `drain`: from then on `draining()` is true, so no new answer starts here,
and the hooks the apps registered finish or hand over what runs. The hooks live with the apps
(conversations/resume.py); this module only holds them, so that the server, at the bottom of
the layers, never imports an app."""

import os
import secrets
import socket
from collections.abc import Awaitable, Callable

# This process, as answers' leases name it: unique even where two hosts share a pid.
PROCESS = f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"

DrainHook = Callable[[float], Awaitable[None]]
ServeHook = Callable[[], None]

_draining = False
_hooks: list[DrainHook] = []
_serve_hooks: list[ServeHook] = []


def on_serve(hook: ServeHook) -> None:
    """Call `hook()` on the server's event loop once it serves (kimichat.serve only: a test's
    application runs no background work behind its back)."""
    if hook not in _serve_hooks:
        _serve_hooks.append(hook)


def serve() -> None:
    for hook in list(_serve_hooks):
        hook()


def draining() -> bool:
    """True once this process has been told to stop: it takes no new answers."""
    return _draining


def on_drain(hook: DrainHook) -> None:
    """Run `hook(grace)` when the process stops (once, however often it is registered)."""
    if hook not in _hooks:
        _hooks.append(hook)


async def drain(grace: float) -> None:
    """Stop taking answers, and give the hooks up to `grace` seconds to finish their work."""
    global _draining
    _draining = True
    for hook in list(_hooks):
        await hook(grace)


def forget() -> None:
    """Back to serving (tests: each starts with a process that takes answers)."""
    global _draining
    _draining = False
