"""Background work through Django's tasks API (django-tasks): the immediate backend runs it in
the web process, the database backend in `manage.py db_worker` processes."""

from django_tasks import task

from uploads import services


@task()
def read_file(file_id: int) -> None:
    services.file_read(file_id=file_id)


@task()
async def read_file_with_kimi(file_id: int) -> None:
    await services.file_read_with_kimi(file_id=file_id)
