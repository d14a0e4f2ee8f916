"""Background work through Django's tasks API (django-tasks): the immediate backend runs it in
the web process, the database backend in `manage.py db_worker` processes."""

from django_tasks import task
from django_tasks.base import DEFAULT_TASK_PRIORITY, TASK_MIN_PRIORITY

from uploads import services
from uploads.models import UploadedFile


@task()
def read_file(file_id: int) -> None:
    services.file_read(file_id=file_id)


@task()
async def read_file_with_kimi(file_id: int) -> None:
    await services.file_read_with_kimi(file_id=file_id)


def read_file_enqueue(file_id: int) -> None:
    """Queue the reading of a file fairly: behind the first waiting file of every other user,
    so that one user's many (or heavy) files never hold every reader while another's wait.
    A user's n-th waiting file is queued with priority -n where the backend keeps priorities
    (the database's, read by `manage.py db_worker`); in the web process (the immediate
    backend) each user has one reader at a time (uploads/reader.py)."""
    queued = read_file
    if queued.get_backend().supports_priority:
        file = UploadedFile.objects.get(pk=file_id)
        waiting = UploadedFile.objects.filter(
            owner_id=file.owner_id, status=UploadedFile.Status.PROCESSING, pk__lt=file_id
        ).count()
        queued = queued.using(priority=max(TASK_MIN_PRIORITY, DEFAULT_TASK_PRIORITY - waiting))
    queued.enqueue(file_id)
