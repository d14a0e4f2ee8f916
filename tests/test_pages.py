"""The HTML pages: sign-up and log-in, the chat page, settings, older messages, ownership."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from conversations.models import Conversation, Message
from tests.helpers.chat import add_thread


@pytest.fixture
def conversation(alice):
    return Conversation.objects.create(owner=alice, model="kimi-k2.6", title="Trip plans")


def test_the_login_page_has_its_landmarks(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert '<label for="id_username">Username</label>' in page
    assert '<label for="id_password">Password</label>' in page
    assert ">Log in</button>" in page
    assert 'href="/accounts/signup/">Sign up</a>' in page


def test_it_signs_up_and_logs_in(client, db):
    r = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
    )
    assert r.status_code == 302 and r.url == "/"
    assert client.get("/").status_code == 200
    assert User.objects.filter(username="carol").exists()


def test_signup_shows_what_is_wrong(client, db):
    r = client.post("/accounts/signup/", {"username": "carol", "password1": "x", "password2": "x"})
    assert "This password is too short." in r.content.decode()
    two = {"username": "carol", "password1": "a-long-passphrase-9", "password2": "y"}
    r = client.post("/accounts/signup/", two)
    assert "You must type the same password each time." in r.content.decode()
    assert not User.objects.filter(username="carol").exists()


def test_it_logs_in_and_out(client, alice):
    r = client.post("/accounts/login/", {"username": "alice", "password": "password"})
    assert r.status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_the_chat_page_needs_a_login(client, conversation):
    assert client.get("/").url.startswith("/accounts/login/")
    assert client.get(f"/c/{conversation.pk}/").url.startswith("/accounts/login/")


def test_the_chat_page_has_its_landmarks(client, alice, conversation, settings):
    settings.MOONSHOT_API_KEY = "sk-test"
    client.force_login(alice)
    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert '<nav id="sidebar" class="sidebar" aria-label="Conversations">' in page
    assert ">New chat</a>" in page
    assert 'aria-label="Message"' in page
    assert ">Send</button>" in page and ">Stop</button>" in page
    assert '<label for="id_model" class="model-label">Model</label>' in page
    assert f'ws-connect="/ws/conversations/{conversation.pk}/"' in page
    assert (
        f'aria-current="page"><span id="conversation-{conversation.pk}-title">Trip plans<' in page
    )
    assert "No Kimi API key" not in page


def test_the_model_picker_offers_the_configured_models(client, alice, settings):
    settings.KIMI_MODELS = ["kimi-k2.6", "kimi-k2.6"]
    settings.KIMI_DEFAULT_MODEL = "kimi-k2.6"
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert '<option value="kimi-k2.6">' in page
    assert '<option value="kimi-k2.6" selected>' in page


def test_the_page_says_plainly_when_no_key_is_configured(client, alice, settings):
    settings.MOONSHOT_API_KEY = ""
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert "No Kimi API key is configured" in page


def test_conversations_are_listed_newest_first(client, alice):
    older = Conversation.objects.create(owner=alice, model="m", title="Older")
    Conversation.objects.create(owner=alice, model="m", title="Newer")
    Conversation.objects.filter(pk=older.pk).update(updated_at=timezone.now() - timedelta(days=1))
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert page.index(">Newer<") < page.index(">Older<")


def test_another_users_conversation_is_a_404_everywhere(client, bob, conversation):
    client.force_login(bob)
    assert client.get(f"/c/{conversation.pk}/").status_code == 404
    assert client.get(f"/c/{conversation.pk}/messages/?before=10").status_code == 404
    assert client.post(f"/c/{conversation.pk}/settings/", {"model": "kimi-k2.6"}).status_code == 404
    page = client.get("/").content.decode()
    assert "Trip plans" not in page


def test_answers_are_rendered_as_sanitised_markdown(client, alice, conversation):
    add_thread(
        conversation,
        {"role": "user", "content": "<b>not bold</b>"},
        {
            "role": "assistant",
            "content": (
                "# Title\n\n```python\nprint(1)\n```\n\n"
                "<script>alert(1)</script> [x](javascript:alert(1))"
            ),
        },
    )
    client.force_login(alice)
    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "<h1>Title</h1>" in page
    assert '<span class="nb">print</span>' in page
    assert "<script>alert" not in page and 'href="javascript' not in page


def test_a_long_conversation_opens_at_its_newest_messages(client, alice, conversation):
    add_thread(conversation, *({"role": "user", "content": f"message {i}"} for i in range(120)))
    client.force_login(alice)
    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert "message 119" in page and "message 70" in page and "message 69<" not in page
    first_shown = Message.objects.get(content="message 70").pk
    assert f"?before={first_shown}" in page

    older = client.get(f"/c/{conversation.pk}/messages/?before={first_shown}").content.decode()
    assert "message 69" in older and "message 20" in older and "message 19<" not in older
    assert 'hx-trigger="revealed"' in older


def test_answers_left_streaming_by_a_dead_process_show_as_interrupted(client, alice, conversation):
    (message,) = add_thread(
        conversation, {"role": "assistant", "state": "streaming", "content": "Half an"}
    )
    Message.objects.filter(pk=message.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    client.force_login(alice)
    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert 'data-state="interrupted"' in page and "Half an" in page
    # A GET never writes: `manage.py repair` at start, or the page's socket, saves it so.
    message.refresh_from_db()
    assert message.state == "streaming"
    # It holds nothing up: the conversation takes a new message.
    assert not conversation.messages.live().exists()


def test_settings_are_saved(client, alice, conversation):
    client.force_login(alice)
    r = client.post(
        f"/c/{conversation.pk}/settings/",
        {
            "model": "kimi-k2.6",
            "system_prompt": "Be brief.",
            "temperature": "0.2",
            "stop": "END",
        },
    )
    assert "Settings saved." in r.content.decode()
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Be brief."
    assert conversation.temperature == 0.2
    assert conversation.stop == ["END"]


def test_settings_out_of_kimis_range_are_refused(client, alice, conversation):
    client.force_login(alice)
    r = client.post(
        f"/c/{conversation.pk}/settings/",
        {"model": "kimi-k2.6", "temperature": "1.7", "stop": "a\nb\nc\nd\ne\nf"},
    )
    page = r.content.decode()
    assert "less than or equal to 1" in page
    assert "at most 5 stop sequences" in page
    conversation.refresh_from_db()
    assert conversation.temperature is None


def test_pages_carry_security_headers(client, alice):
    client.force_login(alice)
    r = client.get("/")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_a_conversation_is_renamed(client, alice, conversation):
    client.force_login(alice)
    response = client.post(f"/c/{conversation.pk}/rename/", {"title": "  Summer   trip "})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "Summer trip" and conversation.title_is_custom
    page = client.get(f"/c/{conversation.pk}/").content.decode()
    assert '<h1 id="conversation-title" class="conversation-title">Summer trip</h1>' in page
    # From the page (htmx), the heading and the list change in place.
    frame = client.post(
        f"/c/{conversation.pk}/rename/", {"title": "Winter <trip>"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert f'<span id="conversation-{conversation.pk}-title" hx-swap-oob="true">' in frame
    assert ">Winter &lt;trip&gt;</h1>" in frame


def test_deleting_asks_first_then_deletes(client, alice, conversation):
    add_thread(
        conversation, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}
    )
    client.force_login(alice)
    page = client.get(f"/c/{conversation.pk}/delete/").content.decode()
    assert "Delete this conversation?" in page and "2 messages will be deleted" in page
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    response = client.post(f"/c/{conversation.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.exists()


def test_search_finds_titles_and_message_text(client, alice, bob):
    trip = Conversation.objects.create(owner=alice, model="m", title="Trip to Kyoto")
    tea = Conversation.objects.create(owner=alice, model="m", title="Untitled")
    add_thread(tea, {"role": "user", "content": "Which green tea is best for matcha lattes?"})
    Conversation.objects.create(owner=alice, model="m", title="Taxes")
    Conversation.objects.create(owner=bob, model="m", title="Bob's Kyoto notes")
    client.force_login(alice)

    found = client.get("/search/?q=kyoto", headers={"HX-Request": "true"}).content.decode()
    assert "Trip to Kyoto" in found and "Bob" not in found and "Taxes" not in found
    assert found.lstrip().startswith('<ol id="conversation-list"')

    found = client.get("/search/?q=Matcha+tea", headers={"HX-Request": "true"}).content.decode()
    assert f"/c/{tea.pk}/" in found and f"/c/{trip.pk}/" not in found
    assert "matcha lattes" in found  # the snippet where it was found

    found = client.get("/search/?q=nothing-like-this", headers={"HX-Request": "true"})
    assert "No conversation matches “nothing-like-this”" in found.content.decode()
    # Without htmx it is a whole page.
    page = client.get("/search/?q=kyoto").content.decode()
    assert 'aria-label="Search conversations"' in page and "Trip to Kyoto" in page


def test_export_is_markdown_of_the_versions_shown(client, alice, conversation):
    question, _old = add_thread(
        conversation,
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": "Red", "model": "kimi-k2.6"},
    )
    newer = Message.objects.create(
        conversation=conversation, parent=question, role="assistant", content="**Blue**"
    )
    conversation.leaf = newer
    conversation.save()
    client.force_login(alice)
    response = client.get(f"/c/{conversation.pk}/export.md")
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="trip-plans.md"'
    text = response.content.decode()
    assert text.startswith("# Trip plans\n")
    assert "## You\n\nName a colour" in text and "**Blue**" in text and "Red" not in text


def test_conversation_pages_of_another_user_are_404(client, bob, conversation):
    client.force_login(bob)
    for url in ("rename/", "delete/", "export.md"):
        assert client.get(f"/c/{conversation.pk}/{url}").status_code in (404, 405)
        assert client.post(f"/c/{conversation.pk}/{url}", {"title": "x"}).status_code in (404, 405)
    assert Conversation.objects.get(pk=conversation.pk).title == "Trip plans"


def test_the_page_follows_the_browsers_language(client, alice, conversation):
    client.force_login(alice)
    page = client.get(f"/c/{conversation.pk}/", headers={"Accept-Language": "zh-CN"})
    text = page.content.decode()
    assert '<html lang="zh-hans">' in text
    assert 'aria-label="对话"' in text and ">新对话</a>" in text and ">发送</button>" in text
