"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the e-mails
KimiChat sends: password resets, approvals, verification links."""

import asyncio
import contextlib
import email
import email.policy
import queue
import re
import socket
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self) -> None:
        self.received: queue.Queue[EmailMessage] = queue.Queue()
        self.controller = Controller(self, hostname="127.0.0.1", port=_free_port())
        # Open: each message is answered at once. Shut (`slow`): the server takes a message
        # and holds it, unanswered, until it opens again.
        self.gate = threading.Event()
        self.gate.set()
        self.held: queue.Queue[str] = queue.Queue()  # the recipients of each message held

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        if not self.gate.is_set():
            self.held.put(str(message["To"]))
            # Bounded, so that a sender that waits for the answer fails its test, not hangs.
            await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 60)
        self.received.put(message)  # type: ignore[arg-type]
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    def settings(self) -> dict:
        """Django's e-mail settings for this server, as EMAIL_URL=self.url gives them."""
        return {
            "EMAIL_BACKEND": "kimichat.mail.BackgroundEmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": self.controller.port,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_TIMEOUT": 10.0,
        }

    def next(self, timeout: float = 20) -> EmailMessage:
        """The next e-mail to arrive (waits for it)."""
        return self.received.get(timeout=timeout)

    @contextlib.contextmanager
    def slow(self):
        """A mail server that answers no message until the block ends."""
        self.gate.clear()
        try:
            yield
        finally:
            self.gate.set()

    def empty(self) -> bool:
        return self.received.empty()

    def __enter__(self) -> "Mailbox":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def link(message: EmailMessage, contains: str) -> str:
    """The first link in the e-mail's text that contains `contains`."""
    links = re.findall(r"https?://\S+", body(message))
    found = [u for u in links if contains in u]
    assert found, f"no link with {contains!r} in:\n{body(message)}"
    return found[0]
