"""The rules a message must pass before it is answered, and the one refusal they raise (with
the sentence for the page): the process is not stopping, the conversation is not removed, the
user is within their limits (accounts/admission.py), and every file referred to can be read by
the model picked."""

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from accounts import admission
from conversations.models import Conversation
from kimi import catalogue
from realtime import lifecycle
from uploads.models import UploadedFile


class Refused(Exception):
    """A message that may not be answered now; the text says why."""


def generation_check(*, user: User, conversation: Conversation | None) -> None:
    """Refuse a new answer while one is being written here, in a conversation a moderator
    removed, or past the user's limits (suspension, daily tokens, rate, concurrency), or in
    a process that is stopping (the page keeps the message; sent again, it goes to another)."""
    if lifecycle.draining():
        raise Refused(_("KimiChat is restarting. Try again in a moment."))
    if conversation is not None and conversation.is_hidden:
        raise Refused(_("A moderator removed this conversation. It cannot be continued."))
    standing = admission.standing(user.pk, conversation.pk if conversation else None)
    refused = admission.refusal(standing)
    if refused is not None:
        raise Refused(refused.message)


def files_check(*, files: list[UploadedFile], model: str) -> None:
    """Refuse files that cannot be read, and images for a model that cannot see them."""
    for file in files:
        if file.status == UploadedFile.Status.FAILED:
            raise Refused(
                _("“%(name)s” could not be read: %(reason)s")
                % {"name": file.name, "reason": file.error_text}
            )
        if file.is_image and not catalogue.accepts_images(model):
            vision = [m for m in catalogue.offered() if catalogue.accepts_images(m)]
            raise Refused(
                _(
                    "“%(name)s” is an image, and %(model)s cannot see images. Pick a model "
                    "that can: %(models)s."
                )
                % {"name": file.name, "model": model, "models": ", ".join(vision) or "—"}
            )
