"""`manage.py repair`: what a stopped process left unfinished is put right before serving."""

import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from conversations.models import Conversation, Message
from tests.helpers.chat import add_thread
from uploads.models import UploadedFile


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, model="kimi-k2.6", title="Trip plans")


@pytest.fixture
def file_being_read(alice):
    return UploadedFile.objects.create(
        owner=alice,
        name="manual.txt",
        size=12,
        sha256="0" * 64,
        kind="text",
        content_type="text/plain",
        file=SimpleUploadedFile("manual.txt", b"Read me soon"),
    )


def repair() -> str:
    out = io.StringIO()
    call_command("repair", stdout=out)
    return out.getvalue()


def test_a_lone_process_marks_every_unfinished_answer_and_file_interrupted(
    settings, conversation, file_being_read
):
    settings.REDIS_URL = ""
    settings.TASKS_BACKEND = "immediate"
    (answer,) = add_thread(
        conversation, {"role": "assistant", "state": "streaming", "content": "Half an"}
    )
    output = repair()
    answer.refresh_from_db()
    file_being_read.refresh_from_db()
    assert answer.state == "interrupted" and answer.content == "Half an"
    assert file_being_read.status == "failed"
    assert file_being_read.error_code == "interrupted"
    assert "Marked 1 unfinished answer(s) as interrupted." in output
    assert "Marked 1 file(s) left being read as failed (interrupted)." in output


def test_beside_redis_only_stale_answers_are_interrupted_and_files_are_left(
    settings, conversation, file_being_read
):
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"  # another process may be writing
    fresh, stale = add_thread(
        conversation,
        {"role": "assistant", "state": "streaming", "content": "Being written"},
        {"role": "assistant", "state": "streaming", "content": "Abandoned"},
    )
    Message.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    output = repair()
    fresh.refresh_from_db()
    stale.refresh_from_db()
    file_being_read.refresh_from_db()
    assert (fresh.state, stale.state) == ("streaming", "interrupted")
    assert file_being_read.status == "processing"
    assert output.strip() == "Marked 1 unfinished answer(s) as interrupted."


def test_with_nothing_left_unfinished_it_says_so(settings, conversation):
    settings.REDIS_URL = ""
    add_thread(conversation, {"role": "assistant", "state": "done", "content": "Whole"})
    assert repair().strip() == "Nothing to repair."
    assert Message.objects.get().state == "done"
