"""`python manage.py repair`: put right what a process that stopped mid-work left behind.

Run it after `migrate` and before the server starts: `make run` does, and a deployment that
starts plain `daphne` runs `manage.py migrate` and `manage.py repair` first.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from conversations.models import Message
from uploads.models import UploadedFile
from uploads.services import bucket_create_missing


class Command(BaseCommand):
    help = (
        "Mark answers and file readings left unfinished by a stopped process as interrupted, "
        "and create the S3 bucket if it is missing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        done = []
        # Answers that were streaming when the last process died can never finish now. Without
        # Redis there is only one process, and it is not running yet, so every one of them is
        # orphaned; with Redis, another process may still be writing some, and only the stale
        # ones are.
        answers = Message.objects.mark_interrupted(everything=not settings.REDIS_URL)
        if answers:
            done.append(f"Marked {answers} unfinished answer(s) as interrupted.")
        # Files were being read by the process that stopped (the immediate backend reads them
        # in the web process): the user uploads them again. Database-backed workers, or other
        # processes beside Redis, may still be reading theirs.
        if not settings.REDIS_URL and settings.TASKS_BACKEND == "immediate":
            files = UploadedFile.objects.filter(status=UploadedFile.Status.PROCESSING).update(
                status=UploadedFile.Status.FAILED, error_code="interrupted"
            )
            if files:
                done.append(f"Marked {files} file(s) left being read as failed (interrupted).")
        if bucket_create_missing():
            done.append(f"Created the bucket {settings.S3_BUCKET}.")
        self.stdout.write("\n".join(done) if done else "Nothing to repair.")
