"""Moderation in the admin: who may read and act, hiding, reports, suspension, usage and
quotas, and what the owner of a conversation sees of it."""

import asyncio
import importlib
import re

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.utils import timezone

from accounts.models import TokenQuota, Usage
from conversations import generation
from conversations.models import Conversation, Message
from moderation.models import ModerationAction, Report
from tests.helpers.chat import add_thread, connect, frames_until_final, open_chat, streamed_text

CHANGELIST = "/admin/conversations/conversation/"
USERS = "/admin/auth/user/"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def moderator(db) -> User:
    user = User.objects.create_user("mod", password="password", is_staff=True)
    user.groups.add(Group.objects.get(name="Moderators"))
    return user


@pytest.fixture
def staff(db) -> User:
    """Staff without the Moderators group, allowed to list conversations and nothing more."""
    user = User.objects.create_user("staff", password="password", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    return user


@pytest.fixture
def root(db) -> User:
    return User.objects.create_superuser("root", password="password")


@pytest.fixture
def chat(alice) -> Conversation:
    conversation = Conversation.objects.create(
        owner=alice, model="kimi-k2.6", title="Holiday plans"
    )
    add_thread(
        conversation,
        {"role": "user", "content": "Where do zebras sleep?"},
        {
            "role": "assistant",
            "content": "Standing up, mostly.",
            "prompt_tokens": 12,
            "completion_tokens": 5,
        },
    )
    return conversation


def act(client: Client, action: str, ids: list[int], reason: str = "", url: str = CHANGELIST):
    data = {"action": action, "_selected_action": ids, "index": 0, "reason": reason}
    return client.post(url, data, follow=True)


# Who may read what


def test_moderators_group_is_made_by_a_migration(db):
    codenames = set(
        Group.objects.get(name="Moderators").permissions.values_list("codename", flat=True)
    )
    assert {"read_transcript", "hide_conversation", "suspend_user", "view_report"} <= codenames


@pytest.mark.parametrize("who", ["moderator", "root"])
def test_moderators_and_superusers_read_the_whole_transcript(who, request, chat):
    client = logged_in(request.getfixturevalue(who))
    page = client.get(f"{CHANGELIST}{chat.pk}/change/").content.decode()
    assert "Where do zebras sleep?" in page
    assert "Standing up, mostly." in page
    assert "12 + 5 tokens" in page
    assert page.index("Where do zebras") < page.index("Standing up")
    assert 'name="_save"' not in page  # read-only


def test_staff_outside_the_group_cannot_read_transcripts(staff, chat):
    client = logged_in(staff)
    assert client.get(CHANGELIST).status_code == 200
    page = client.get(f"{CHANGELIST}{chat.pk}/change/").content.decode()
    assert "Only moderators may read transcripts." in page
    assert "zebras" not in page and "Holiday plans" not in page
    # Nor find them by their words, nor act on them.
    assert "Holiday plans" not in client.get(CHANGELIST, {"q": "zebras"}).content.decode()
    act(client, "hide", [chat.pk])
    chat.refresh_from_db()
    assert not chat.is_hidden


def test_staff_without_permissions_are_kept_out(db, chat):
    client = logged_in(User.objects.create_user("intern", password="password", is_staff=True))
    for url in (CHANGELIST, f"{CHANGELIST}{chat.pk}/change/", "/admin/moderation/report/"):
        assert client.get(url).status_code == 403


def test_people_who_are_not_staff_never_reach_the_admin(alice, chat):
    response = logged_in(alice).get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_transcripts_can_be_turned_off_for_everyone(settings, root, chat, alice):
    settings.MODERATION_TRANSCRIPTS = False
    report = Report.objects.create(
        message=chat.messages.last(), reporter=alice, reason="Rude about zebras"
    )
    client = logged_in(root)
    page = client.get(f"{CHANGELIST}{chat.pk}/change/").content.decode()
    assert "Transcripts are turned off" in page and "Standing up" not in page
    assert "Holiday plans" not in client.get(CHANGELIST, {"q": "zebras"}).content.decode()
    # The report still shows the message reported.
    page = client.get(f"/admin/moderation/report/{report.pk}/change/").content.decode()
    assert "Standing up, mostly." in page and "Rude about zebras" in page


# Finding conversations


def test_search_by_message_text_title_and_owner(moderator, chat, bob):
    other = Conversation.objects.create(owner=bob, model="kimi-k2.6", title="Taxes")
    add_thread(other, {"role": "user", "content": "Deductions for 2025"})
    client = logged_in(moderator)

    def found(query: str) -> set[str]:
        page = client.get(CHANGELIST, {"q": query}).content.decode()
        return {t for t in ("Holiday plans", "Taxes") if t in page}

    assert found("zebras sleep") == {"Holiday plans"}
    assert found("deductions") == {"Taxes"}
    assert found("bob") == {"Taxes"}
    assert found("holiday") == {"Holiday plans"}
    assert found("zebras deductions") == set()


def test_filters_flagged_and_hidden(moderator, chat, bob):
    quiet = Conversation.objects.create(owner=bob, model="kimi-k2.6", title="Quiet one")
    Report.objects.create(message=chat.messages.first(), reporter=bob, reason="spam")
    client = logged_in(moderator)
    page = client.get(CHANGELIST, {"flagged": "yes"}).content.decode()
    assert "Holiday plans" in page and "Quiet one" not in page
    page = client.get(CHANGELIST, {"flagged": "no"}).content.decode()
    assert "Holiday plans" not in page and "Quiet one" in page
    quiet.hidden_at = timezone.now()
    quiet.save()
    page = client.get(CHANGELIST, {"hidden": "yes"}).content.decode()
    assert "Holiday plans" not in page and "Quiet one" in page


# Hiding


def test_hide_removes_the_conversation_from_its_owner_and_logs_why(moderator, chat, alice):
    response = act(logged_in(moderator), "hide", [chat.pk], reason="Harassment")
    assert "1 conversation hidden." in response.content.decode()
    chat.refresh_from_db()
    assert chat.is_hidden
    logged = ModerationAction.objects.get()
    assert (logged.actor, logged.kind, logged.target_id, logged.reason) == (
        moderator,
        "hide",
        chat.pk,
        "Harassment",
    )

    owner = logged_in(alice)
    page = owner.get(f"/c/{chat.pk}/").content.decode()
    assert "A moderator removed this conversation" in page
    assert "zebras" not in page and "Standing up" not in page and "Holiday plans" not in page
    assert 'name="message"' not in page  # no composer
    assert "Removed by a moderator" in owner.get("/").content.decode()
    assert owner.get(f"/c/{chat.pk}/export.md").status_code == 404
    assert owner.get(f"/c/{chat.pk}/messages/", {"before": 10**6}).status_code == 404
    assert "Holiday plans" not in owner.get("/search/", {"q": "zebras"}).content.decode()
    # Its owner may still delete it.
    assert owner.post(f"/c/{chat.pk}/delete/").status_code == 302
    assert not Conversation.objects.filter(pk=chat.pk).exists()


def test_unhide_gives_it_back(moderator, chat, alice):
    client = logged_in(moderator)
    act(client, "hide", [chat.pk])
    response = act(client, "unhide", [chat.pk], reason="Appeal accepted")
    assert "1 conversation shown again." in response.content.decode()
    assert "Standing up, mostly." in logged_in(alice).get(f"/c/{chat.pk}/").content.decode()
    assert list(ModerationAction.objects.values_list("kind", flat=True)) == ["unhide", "hide"]


def test_hide_from_the_transcript_page(moderator, chat):
    client = logged_in(moderator)
    page = client.get(f"{CHANGELIST}{chat.pk}/change/").content.decode()
    assert "Hide this conversation" in page
    act(client, "hide", [chat.pk], reason="From the transcript")
    chat.refresh_from_db()
    assert chat.is_hidden
    page = client.get(f"{CHANGELIST}{chat.pk}/change/").content.decode()
    assert "Unhide this conversation" in page


def test_delete_is_logged(moderator, chat):
    client = logged_in(moderator)
    response = client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [chat.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert not Conversation.objects.filter(pk=chat.pk).exists()
    logged = ModerationAction.objects.get()
    # By number: the log outlives the conversation, and its title was its owner's words.
    assert (logged.kind, logged.target) == ("delete", f"Conversation {chat.pk}")
    page = client.get("/admin/moderation/moderationaction/").content.decode()
    assert "deleted a conversation" in page and f"Conversation {chat.pk}" in page


live = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_kimi_clients")]


def _moderator() -> User:
    # Transactional tests empty the database after them, the migration's group too: made
    # again the migration's way.
    migration = importlib.import_module("moderation.migrations.0002_moderators_group")
    migration.create_group(apps, None)
    user = User.objects.create_user("mod", password="password", is_staff=True)
    user.groups.add(Group.objects.get(name="Moderators"))
    return user


async def act_as(user: User, *args, **kwargs):
    """A moderator's action in the admin, from a test's event loop."""
    return await sync_to_async(lambda: act(logged_in(user), *args, **kwargs))()


@live[0]
@live[1]
async def test_hiding_closes_the_owners_page_and_nothing_more_goes_upstream(kimi, alice):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    moderator = await sync_to_async(_moderator)()
    page = await open_chat(alice, conversation)
    await act_as(moderator, "hide", [conversation.pk])
    frame = await page.receive_from(30)
    assert "A moderator removed this conversation" in frame
    assert (await page.receive_output(30))["type"] == "websocket.close"
    # Coming back finds it closed; nothing is sent to Kimi.
    again = await connect(alice, f"/ws/conversations/{conversation.pk}/")
    connected, code = await again.connect(30)
    assert not connected and code == 4404
    assert kimi.requests == []


# Reports


@live[0]
@live[1]
async def test_a_hidden_conversation_is_never_continued_even_by_a_page_left_open(kimi, alice):
    conversation = await Conversation.objects.acreate(owner=alice, model="kimi-k2.6")
    page = await open_chat(alice, conversation)
    # Hidden without the page hearing of it (say, the event was lost between processes).
    await Conversation.objects.filter(pk=conversation.pk).aupdate(hidden_at=timezone.now())
    await page.send_json_to({"message": "Still there?", "client_id": "h1"})
    frame = await page.receive_from(30)
    assert "A moderator removed this conversation. It cannot be continued." in frame
    assert kimi.requests == []
    assert not await Message.objects.aexists()


def test_a_user_reports_a_message_with_a_reason(alice, chat):
    answer = chat.messages.last()
    client = logged_in(alice)
    page = client.get(f"/c/{chat.pk}/").content.decode()
    assert page.count(">Report</button>") == 1  # the answer; never one's own question
    response = client.post("/report/", {"message": answer.pk, "reason": "Makes things up"})
    assert "A moderator will look at this message" in response["HX-Trigger"]
    report = Report.objects.get()
    assert (report.message, report.reporter, report.reason, report.status) == (
        answer,
        alice,
        "Makes things up",
        "open",
    )
    # After a reload the button still says so.
    page = client.get(f"/c/{chat.pk}/").content.decode()
    assert ">Report</button>" not in page
    assert 'class="report" disabled>Reported</button>' in page


def test_one_does_not_report_ones_own_words(alice, chat):
    question = chat.messages.first()
    page = logged_in(alice).post("/report/", {"message": question.pk, "reason": "Oops"})
    assert "This message cannot be reported" in page.content.decode()
    assert not Report.objects.exists()


def test_a_report_needs_a_reason_and_a_message_one_can_read(alice, bob, chat):
    answer = chat.messages.last()
    page = logged_in(alice).post("/report/", {"message": answer.pk, "reason": " "})
    assert "Say what is wrong with the message." in page.content.decode()
    page = logged_in(bob).post("/report/", {"message": answer.pk, "reason": "Peeking"})
    assert "This message cannot be reported" in page.content.decode()
    assert not Report.objects.exists()


def test_reports_queue_and_resolution_with_a_note(moderator, alice, chat):
    answer = chat.messages.last()
    report = Report.objects.create(message=answer, reporter=alice, reason="Wrong facts")
    client = logged_in(moderator)
    page = client.get("/admin/moderation/report/", {"status": "open"}).content.decode()
    assert "Wrong facts" in page and "Standing up, mostly." in page
    assert f"/admin/conversations/conversation/{chat.pk}/change/#msg-{answer.pk}" in page

    url = "/admin/moderation/report/"
    response = act(client, "resolve", [report.pk], reason="Checked: fine", url=url)
    assert "1 report resolved." in response.content.decode()
    report.refresh_from_db()
    assert (report.status, report.resolution, report.resolved_by) == (
        "resolved",
        "Checked: fine",
        moderator,
    )
    assert ModerationAction.objects.get().kind == "resolve"
    # The transcript shows the report beside the message.
    page = client.get(f"{CHANGELIST}{chat.pk}/change/").content.decode()
    assert "Reported by alice (resolved)" in page


def test_resolving_in_the_report_page_is_logged(moderator, alice, chat):
    report = Report.objects.create(message=chat.messages.last(), reporter=alice, reason="Odd")
    client = logged_in(moderator)
    url = f"/admin/moderation/report/{report.pk}/change/"
    client.post(url, {"status": "resolved", "resolution": "Talked to the user"})
    report.refresh_from_db()
    assert (report.status, report.resolution) == ("resolved", "Talked to the user")
    assert ModerationAction.objects.get().reason == "Talked to the user"


# Suspension


def test_suspended_users_are_logged_out_and_told_why_at_log_in(moderator, alice, chat):
    owner = logged_in(alice)
    response = act(logged_in(moderator), "suspend", [alice.pk], reason="Abuse", url=USERS)
    assert "1 user suspended." in response.content.decode()
    assert owner.get("/").status_code == 302  # the session no longer works
    page = Client().post("/accounts/login/", {"username": "alice", "password": "password"})
    assert "This account is suspended." in page.content.decode()
    # Without the right password, nothing is told about the account.
    page = Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert "suspended" not in page.content.decode()

    act(logged_in(moderator), "reactivate", [alice.pk], url=USERS)
    assert Client().login(username="alice", password="password")
    kinds = list(ModerationAction.objects.values_list("kind", "reason"))
    assert kinds == [("reactivate", ""), ("suspend", "Abuse")]


def test_a_moderator_cannot_suspend_a_superuser_or_themselves(moderator, root):
    response = act(logged_in(moderator), "suspend", [root.pk, moderator.pk], url=USERS)
    assert "only a superuser can suspend a superuser" in response.content.decode()
    assert User.objects.filter(is_active=False).count() == 0


def test_plain_staff_cannot_suspend(staff, alice):
    staff.user_permissions.add(Permission.objects.get(codename="view_user"))
    act(logged_in(staff), "suspend", [alice.pk], url=USERS)
    alice.refresh_from_db()
    assert alice.is_active


@live[0]
@live[1]
async def test_suspension_closes_sockets_and_stops_the_answer_being_written(kimi, alice):
    kimi.script.tokens = ["Part", " one"] + [" more"] * 50
    kimi.script.stall_after = 2
    moderator = await sync_to_async(_moderator)()
    page = await open_chat(alice)
    files_page = await connect(alice, "/ws/files/")
    assert (await files_page.connect(30))[0]
    await page.send_json_to({"message": "Write a lot", "client_id": "s1", "model": "kimi-k2.6"})
    frames = []
    while "Part one" not in streamed_text(frames):
        frames.append(await page.receive_from(30))
    writing = generation.running((await Conversation.objects.aget()).pk)

    await act_as(moderator, "suspend", [alice.pk], url=USERS)

    frames = []
    while True:
        output = await page.receive_output(30)
        if output["type"] == "websocket.close":
            break
        frames.append(output["text"])
    assert output["code"] == 4403
    assert "Your account is suspended." in "".join(frames)
    assert (await files_page.receive_output(30))["code"] == 4403
    await asyncio.wait_for(writing.task, 5)  # its last save done
    answer = await Message.objects.filter(role="assistant").alast()
    assert answer.state == "stopped" and answer.content == "Part one"
    assert kimi.requests[-1].closed_early


# Usage and quotas


@live[0]
@live[1]
async def test_each_answer_is_counted_per_user_day_and_model(kimi, alice):
    page = await open_chat(alice)
    for n in range(2):
        await page.send_json_to({"message": f"Hi {n}", "client_id": f"u{n}", "model": "kimi-k2.6"})
        await frames_until_final(page)
    usage = await Usage.objects.aget()
    answers = [m async for m in Message.objects.filter(role="assistant")]
    assert (usage.user_id, usage.day, usage.model, usage.messages) == (
        alice.pk,
        timezone.localdate(),
        "kimi-k2.6",
        2,
    )
    assert usage.prompt_tokens == sum(a.prompt_tokens for a in answers)
    # Six words and four thoughts each: Kimi counts its thinking as completion tokens.
    assert usage.completion_tokens == sum(a.completion_tokens for a in answers) == 20


@live[0]
@live[1]
async def test_the_daily_quota_refuses_before_anything_goes_upstream(kimi, alice, settings):
    settings.USER_DAILY_TOKENS = 1000
    await Usage.objects.acreate(
        user=alice,
        day=timezone.localdate(),
        model="kimi-k2.6",
        prompt_tokens=900,
        completion_tokens=100,
    )
    page = await open_chat(alice)
    await page.send_json_to({"message": "One more?", "client_id": "q1", "model": "kimi-k2.6"})
    frame = await page.receive_from(30)
    assert "You have used today&#x27;s quota of 1,000 tokens." in frame
    assert kimi.requests == []
    assert not await Message.objects.aexists()

    # A quota of the user's own (0: no limit) wins over the setting.
    await TokenQuota.objects.acreate(user=alice, daily_tokens=0)
    await page.send_json_to({"message": "One more?", "client_id": "q2", "model": "kimi-k2.6"})
    frames = await frames_until_final(page)
    assert 'data-state="done"' in frames[-1]


def test_usage_and_quotas_in_the_admin(moderator, alice):
    Usage.objects.create(
        user=alice,
        day=timezone.localdate(),
        model="kimi-k2.6",
        messages=3,
        prompt_tokens=1200,
        completion_tokens=300,
    )
    client = logged_in(moderator)
    page = client.get("/admin/accounts/usage/").content.decode()
    assert "alice" in page and "1500" in page.replace(",", "")
    assert re.search(r"3 answers, 1,?200 prompt \+ 300 completion = 1,?500 tokens", page)
    page = client.get(USERS).content.decode()
    assert "1500" in page.replace(",", "")

    client.post("/admin/accounts/tokenquota/add/", {"user": alice.pk, "daily_tokens": 5000})
    assert TokenQuota.objects.get(user=alice).daily_tokens == 5000
    logged = ModerationAction.objects.get()
    assert (logged.kind, logged.target, logged.reason) == ("quota", "alice", "5,000 tokens a day")


def test_staff_without_transcript_rights_cannot_search_or_sort_by_titles(staff, alice):
    first = Conversation.objects.create(owner=alice, model="kimi-k2.6", title="aaa secret")
    second = Conversation.objects.create(owner=alice, model="kimi-k2.6", title="zzz secret")
    client = logged_in(staff)
    assert "0 conversations" in client.get(CHANGELIST, {"q": "secret"}).content.decode()
    page = client.get(CHANGELIST, {"o": "1"}).content.decode()  # by "conversation", A to Z
    # Not in title order (aaa before zzz): the titles give nothing away.
    assert page.index(f"Conversation {second.pk}") < page.index(f"Conversation {first.pk}")
    # Searching by the owner still works.
    assert f"Conversation {first.pk}" in client.get(CHANGELIST, {"q": "alice"}).content.decode()
    # Nor filter by them, nor read them in the rows' checkbox labels.
    assert client.get(CHANGELIST, {"title__startswith": "a"}).status_code == 400
    assert "secret" not in client.get(CHANGELIST).content.decode()


def test_without_transcripts_no_admin_page_tells_a_title_or_a_system_prompt(
    settings, moderator, chat, alice
):
    settings.MODERATION_TRANSCRIPTS = False
    chat.system_prompt = "You are Captain Nemo"
    chat.save()
    client = logged_in(moderator)
    # The list: the row's checkbox is labelled by number.
    page = client.get(CHANGELIST).content.decode()
    assert f"Select this object for an action - Conversation {chat.pk}" in page
    assert "Holiday plans" not in page
    # Filters on what people wrote would answer yes or no, a letter at a time: refused.
    for lookup in ("title__startswith", "system_prompt__contains", "stop__contains"):
        assert client.get(CHANGELIST, {lookup: "H"}).status_code == 400
    assert client.get(CHANGELIST, {"title__startswith": "H", "q": "alice"}).status_code == 400
    # Nor through the files' page (a document's text) or a report's message.
    assert client.get("/admin/uploads/uploadedfile/", {"text__contains": "a"}).status_code in (
        400,
        403,
    )
    report = "/admin/moderation/report/"
    assert client.get(report, {"message__conversation__title__startswith": "H"}).status_code == 400
    # Nor through the admin's autocomplete, which lists conversations by title.
    autocomplete = {"app_label": "conversations", "model_name": "message"}
    response = client.get("/admin/autocomplete/", {**autocomplete, "field_name": "conversation"})
    assert response.status_code == 403 and "Holiday" not in response.content.decode()
    # Hiding logs the conversation by number.
    act(client, "hide", [chat.pk], reason="Spam")
    assert "Holiday plans" not in client.get("/admin/moderation/moderationaction/").content.decode()
    # The delete confirmation lists it by number; deleting leaves the title in no log.
    data = {"action": "delete_selected", "_selected_action": [chat.pk]}
    page = client.post(CHANGELIST, data).content.decode()
    assert "Are you sure you want to delete" in page and f"Conversation {chat.pk}" in page
    assert "Holiday plans" not in page and "Captain Nemo" not in page
    client.post(CHANGELIST, {**data, "post": "yes"})
    assert not Conversation.objects.filter(pk=chat.pk).exists()
    assert "Holiday plans" not in client.get("/admin/").content.decode()  # Recent actions
    assert not LogEntry.objects.filter(object_repr__contains="Holiday").exists()
    assert not ModerationAction.objects.filter(target__contains="Holiday").exists()


def test_moderators_who_read_transcripts_still_filter_by_title(moderator, chat):
    client = logged_in(moderator)
    page = client.get(CHANGELIST, {"title__startswith": "Holi"}).content.decode()
    assert "Holiday plans" in page
    autocomplete = {"app_label": "conversations", "model_name": "message"}
    response = client.get("/admin/autocomplete/", {**autocomplete, "field_name": "conversation"})
    assert "Holiday plans" in response.content.decode()
    assert client.get("/admin/uploads/uploadedfile/", {"text__contains": "a"}).status_code != 400
