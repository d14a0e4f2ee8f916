"""The answer pipeline without a socket: what is saved, what would be sent to Kimi, and the
sentence a refusal gives the page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations import services, writer
from conversations.checks import Refused
from conversations.models import Conversation, Message
from tests.helpers.chat import add_thread
from uploads import services as files
from uploads.models import UploadedFile

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(alice) -> Conversation:
    conversation = Conversation.objects.create(owner=alice, model="kimi-k2.6")
    add_thread(
        conversation,
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "model": "kimi-k2.6"},
    )
    return conversation


def _file(owner, name: str, text: bytes, *, read: bool = True) -> UploadedFile:
    saved = files.file_create(owner=owner, upload=SimpleUploadedFile(name, text))
    if read:
        files.file_read(file_id=saved.file.pk)
    return UploadedFile.objects.get(pk=saved.file.pk)


def test_a_first_message_starts_a_conversation_with_its_answer_streaming(alice, settings):
    settings.KIMI_AUTO_TITLE = True
    answering = services.answer_request(
        user=alice,
        conversation=None,
        text="  What is Kimi?  ",
        client_id="c1",
        options={"system_prompt": "Be brief.", "temperature": "0.3", "model": "kimi-k2.6"},
    )
    assert answering is not None
    conversation = Conversation.objects.get()
    question, answer = conversation.messages.order_by("id")
    assert (conversation.title, conversation.leaf_id) == ("What is Kimi?", answer.pk)
    assert (question.content, answer.state, answer.parent_id) == (
        "What is Kimi?",
        Message.State.STREAMING,
        question.pk,
    )
    assert answering.request is not None
    assert answering.request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is Kimi?"},
    ]
    # kimi-k2.6 fixes its sampling: the temperature is kept, not sent; the cache key is.
    assert answering.params == {"prompt_cache_key": f"kimichat-conversation-{conversation.pk}"}
    assert conversation.temperature == 0.3
    assert answering.title_wanted


def test_a_replayed_send_is_taken_once(alice, chat):
    first = services.answer_request(user=alice, conversation=chat, text="Again", client_id="c9")
    assert first is not None
    writer.answer_finish(answer=first.answer, fields={"state": "done"}, usage=None)
    again = services.answer_request(user=alice, conversation=chat, text="Again", client_id="c9")
    assert again is None
    assert chat.messages.filter(content="Again").count() == 1


def test_the_request_carries_the_thread_up_to_the_new_question(alice, chat):
    answering = services.answer_request(user=alice, conversation=chat, text="And you?")
    assert answering is not None and answering.request is not None
    assert [m["content"] for m in answering.request.messages] == ["Hi", "Hello!", "And you?"]
    assert not answering.title_wanted  # not the first question


@pytest.mark.parametrize(
    ("text", "options", "refusal"),
    [
        ("x" * 100_001, {}, "The message is too long (at most 100,000 characters)."),
        ("Hi", {"temperature": "7"}, "Temperature: Ensure this value is less than or equal to 1."),
        ("Read @nothing.pdf", {}, "There is no file “file-"),
    ],
)
def test_refusals_say_why_and_save_nothing(alice, chat, text, options, refusal):
    before = Message.objects.count()
    with pytest.raises(Refused) as refused:
        services.answer_request(user=alice, conversation=chat, text=text, options=options)
    assert str(refused.value).startswith(refusal.split("“")[0])
    assert Message.objects.count() == before


def test_someone_elses_file_is_refused_like_a_missing_one(alice, bob, chat):
    theirs = _file(bob, "secret.txt", b"Bob's secret")
    with pytest.raises(Refused, match="There is no file"):
        services.answer_request(user=alice, conversation=chat, text="?", attached=[theirs.pk])


def test_no_second_answer_while_one_is_being_written(alice, chat):
    assert services.answer_request(user=alice, conversation=chat, text="One") is not None
    with pytest.raises(Refused, match="Kimi is still answering"):
        services.answer_request(user=alice, conversation=chat, text="Two")
    # Neither a regenerate nor an edit applies meanwhile (their buttons are hidden).
    answer = chat.messages.filter(role="assistant").first()
    assert services.answer_regenerate(user=alice, conversation=chat, message_id=answer.pk) is None


def test_a_hidden_conversation_cannot_be_continued(alice, chat):
    Conversation.objects.filter(pk=chat.pk).update(hidden_at="2026-01-01T00:00Z")
    with pytest.raises(Refused, match="A moderator removed this conversation"):
        services.answer_request(user=alice, conversation=chat, text="Still there?")


def test_a_file_still_being_read_is_waited_for(alice, chat):
    report = _file(alice, "report.txt", b"Q3 numbers", read=False)
    answering = services.answer_request(user=alice, conversation=chat, text="Sum up @report.txt")
    assert answering is not None
    assert (answering.request, answering.waiting) == (None, [report])
    assert services.request_when_ready(answer=answering.answer) is None

    files.file_read(file_id=report.pk)
    request = services.request_when_ready(answer=answering.answer)
    assert request is not None
    assert "Q3 numbers" in request.messages[0]["content"]


def test_regenerate_makes_a_new_version_of_the_answer(alice, chat):
    old = chat.messages.get(role="assistant")
    answering = services.answer_regenerate(
        user=alice, conversation=chat, message_id=old.pk, options={"model": "kimi-k3"}
    )
    assert answering is not None and answering.request is not None
    new = answering.answer
    assert (new.parent_id, new.model, new.is_streaming) == (old.parent_id, "kimi-k3", True)
    assert answering.request.messages == [{"role": "user", "content": "Hi"}]
    assert [m.pk for m in Message.objects.filter(parent=old.parent)] == [old.pk, new.pk]
    assert Conversation.objects.get(pk=chat.pk).model == "kimi-k3"


def test_an_edited_question_is_a_new_version_with_the_files_it_had(alice, chat):
    notes = _file(alice, "notes.txt", b"Remember the milk")
    old = chat.messages.get(role="user")
    old.files.add(notes)
    answering = services.question_edit(
        user=alice, conversation=chat, message_id=old.pk, text="Hi there", client_id="e1"
    )
    assert answering is not None and answering.request is not None
    question = answering.exchange.question
    assert question is not None
    assert (question.content, question.parent_id) == ("Hi there", None)
    assert list(question.files.all()) == [notes]
    assert answering.request.messages[-1] == {"role": "user", "content": "Hi there"}
    assert "Remember the milk" in answering.request.messages[0]["content"]
    assert Message.objects.filter(pk=old.pk).exists()


def test_showing_another_version_moves_the_thread_there(alice, chat):
    old = chat.messages.get(role="assistant")
    answering = services.answer_regenerate(user=alice, conversation=chat, message_id=old.pk)
    assert answering is not None
    writer.answer_finish(answer=answering.answer, fields={"state": "done"}, usage=None)

    shown = services.version_show(conversation=chat, message_id=old.pk)
    assert shown is not None and shown.thread().ids[-1] == old.pk
    assert services.version_show(conversation=chat, message_id=10**9) is None
