"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the e-mails
KimiChat sends: password resets, approvals, verification links."""

import email
import email.policy
import queue
import re
import socket
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

    async def handle_DATA(self, server, session, envelope) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.put(message)  # type: ignore[arg-type]
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    def settings(self) -> dict:
        """Django's e-mail settings for this server, as EMAIL_URL=self.url gives them."""
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
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
