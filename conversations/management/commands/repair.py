"""`python manage.py repair`: put right what a process that stopped mid-work left behind.

Run it after `migrate` and before the server starts: `make run` does, and a deployment that
starts plain `daphne` runs `manage.py migrate` and `manage.py repair` first.
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from conversations.models import Message, live_answers
from uploads.models import UploadedFile
from uploads.services import bucket_create_missing


class Command(BaseCommand):
    help = (
        "Leave answers left unfinished by a stopped process to be resumed by the server (or "
        "mark them interrupted where they cannot be), mark file readings left unfinished as "
        "failed, and create the S3 bucket if it is missing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        done = []
        # Answers left streaming by a process that stopped. Without Redis there is only one
        # process, and it is not running yet, so every one of them is orphaned; with Redis,
        # another process may still be writing some, and only those whose lease lapsed are.
        orphans = Message.objects.filter(state=Message.State.STREAMING)
        if settings.REDIS_URL:
            orphans = orphans.exclude(live_answers())
        if settings.MOONSHOT_API_KEY:
            # Given up now, so the server takes each over as soon as it starts and goes on
            # with it (conversations/resume.py). Their writer stays named: it did not count
            # the tokens it was sent.
            resumable = orphans.filter(resumes__lt=settings.ANSWER_MAX_RESUMES)
            resumed = resumable.update(lease_expires=timezone.now())
            if resumed:
                done.append(f"Left {resumed} unfinished answer(s) for the server to resume.")
            orphans = orphans.filter(resumes__gte=settings.ANSWER_MAX_RESUMES)
        answers = orphans.update(state=Message.State.INTERRUPTED, updated_at=timezone.now())
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
