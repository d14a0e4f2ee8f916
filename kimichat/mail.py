"""E-mail is sent after the response, never during it: a page that sends mail (a password
reset, a sign-up's verification link) answers as fast for an address that has an account as
for one that has none, however slow the mail server, so its timing tells nobody which
addresses are known. A message that cannot be sent is logged."""

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

log = logging.getLogger(__name__)

# One at a time, in the order they were written: a flood of requests queues its mail here
# rather than opening connections to the mail server.
_outbox = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kimichat-mail")


class BackgroundEmailBackend(BaseEmailBackend):
    """Django's SMTP backend (EMAIL_HOST, EMAIL_PORT…), on threads of its own."""

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        messages = list(email_messages)
        for message in messages:
            _outbox.submit(_send, message)
        return len(messages)


def _send(message: EmailMessage) -> None:
    try:
        SmtpBackend(fail_silently=False).send_messages([message])
    except Exception:
        log.exception("An e-mail (%s) could not be sent", message.subject)
