"""`python -m kimichat.serve`: Daphne on HOST:PORT (what `make run` starts)."""

import os
import sys

import django


def main() -> None:
    # The event loop shares the GIL with the database thread; switching more often keeps
    # token latency low while that thread saves messages.
    sys.setswitchinterval(float(os.environ.get("KIMICHAT_SWITCH_INTERVAL", "0.001")))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kimichat.settings")
    django.setup()
    from daphne.cli import CommandLineInterface
    from django.conf import settings

    from conversations.models import Message
    from uploads.models import UploadedFile
    from uploads.services import bucket_create_missing

    # Answers that were streaming when the last process died can never finish now. Without
    # Redis this is the only process there is, so every one of them is orphaned; with Redis,
    # another process may still be writing some, and only the stale ones are.
    repaired = Message.objects.mark_interrupted(everything=not settings.REDIS_URL)
    if repaired:
        print(f"Marked {repaired} unfinished answer(s) as interrupted.")
    if not settings.REDIS_URL and settings.TASKS_BACKEND == "immediate":
        # Files were being read by this process when it stopped: the user uploads again.
        UploadedFile.objects.filter(status=UploadedFile.Status.PROCESSING).update(
            status=UploadedFile.Status.FAILED, error_code="interrupted"
        )
    if bucket_create_missing():
        print(f"Created the bucket {settings.S3_BUCKET}.")
    if not settings.MOONSHOT_API_KEY:
        print("Warning: MOONSHOT_API_KEY is not set; answers will fail until it is configured.")
    print(f"KimiChat on http://{settings.HOST}:{settings.PORT}/")
    args = [
        "-b",
        settings.HOST,
        "-p",
        str(settings.PORT),
        *sys.argv[1:],
        "kimichat.asgi:application",
    ]
    CommandLineInterface().run(args)


if __name__ == "__main__":
    main()
