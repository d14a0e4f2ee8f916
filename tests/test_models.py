"""The models Kimi offers (GET /v1/models) in the picker, what Kimi says of each, models it
retired, and the account's balance on the admin's Usage page: against the Kimi stub over HTTP,
through the real SDK."""

import asyncio
import re
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client
from django.utils import translation

from conversations.models import Conversation
from kimi import catalogue
from tests.helpers.chat import add_thread, connect, frames_until_final, open_chat
from tests.helpers.kimi_stub import LEGACY_MODELS, MODELS

RETIRED = "is no longer offered by Kimi; pick another model."


def _select(page: str) -> str:
    select = re.search(r'<select name="model".*?</select>', page, re.S)
    assert select, "the page has a Model picker"
    return select.group(0)


def picker(page: str) -> list[str]:
    """The ids in the page's Model picker, in order."""
    return re.findall(r'<option value="([^"]*)"', _select(page))


def selected(page: str) -> str:
    match = re.search(r'<option value="([^"]*)" selected>', _select(page))
    assert match, "the picker has a model selected"
    return match.group(1)


def read_kimi() -> bool:
    """What the server's background reading does, once, now: on a thread of its own, since
    the browser tests' Playwright may hold an event loop in this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, catalogue.refresh()).result()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# The picker


def test_the_picker_lists_the_models_kimi_offers(kimi, alice, settings):
    client = logged_in(alice)
    assert picker(client.get("/").content.decode()) == settings.KIMI_MODELS  # not read yet

    assert read_kimi()
    page = client.get("/").content.decode()
    assert picker(page) == [m["id"] for m in MODELS] == ["kimi-k3", "kimi-k2.6"]
    assert selected(page) == "kimi-k3"  # KIMI_DEFAULT_MODEL: the first built-in model


def test_a_model_kimi_adds_is_offered_without_a_release(kimi, alice):
    kimi.script.models = [*MODELS, {**MODELS[0], "id": "kimi-k3.1-preview"}]
    assert read_kimi()
    assert "kimi-k3.1-preview" in picker(logged_in(alice).get("/").content.decode())


def test_kimi_models_narrows_kimis_list_to_the_ids_it_names(kimi, alice, settings):
    # As KIMI_MODELS=kimi-k2.6,kimi-k2.5,kimi-k3 in the environment makes it.
    settings.KIMI_MODELS = ["kimi-k2.6", "kimi-k2.5", "kimi-k3"]
    settings.KIMI_MODELS_FILTER = True
    settings.KIMI_DEFAULT_MODEL = "kimi-k2.6"
    assert read_kimi()
    page = logged_in(alice).get("/").content.decode()
    # In KIMI_MODELS' order, without the one Kimi no longer offers.
    assert picker(page) == ["kimi-k2.6", "kimi-k3"]
    assert selected(page) == "kimi-k2.6"


def test_a_default_kimi_does_not_offer_gives_way_to_the_first_offered(kimi, alice, settings):
    settings.KIMI_DEFAULT_MODEL = "kimi-k2.5"  # retired
    assert read_kimi()
    page = logged_in(alice).get("/").content.decode()
    assert selected(page) == "kimi-k3"


# What Kimi says of each model


def test_windows_vision_and_thinking_come_from_kimi(kimi):
    kimi.script.models = [
        # Names the built-in rules do not know, or would guess wrong.
        {**MODELS[0], "id": "kimi-k9-preview", "context_length": 65536},
        {**MODELS[0], "id": "kimi-k2.6", "supports_image_in": False},
        {**MODELS[0], "id": "moonshot-v2-long", "context_length": 2_000_000}
        | {"supports_reasoning": False},
        {"id": "kimi-undescribed", "object": "model"},
    ]
    assert catalogue.context_window("kimi-k9-preview") == 262144  # the built-in guess
    assert not catalogue.accepts_images("kimi-k9-preview")
    assert catalogue.thinking("kimi-k9-preview") == "never"

    assert read_kimi()
    assert catalogue.context_window("kimi-k9-preview") == 65536
    assert catalogue.accepts_images("kimi-k9-preview")
    # Kimi says it thinks; only k2.5 and k2.6 can be told not to.
    assert catalogue.thinking("kimi-k9-preview") == "always"
    assert catalogue.thinking("kimi-k2.6") == "optional"
    assert not catalogue.accepts_images("kimi-k2.6")
    assert catalogue.context_window("moonshot-v2-long") == 2_000_000
    assert catalogue.thinking("moonshot-v2-long") == "never"
    assert catalogue.answer_reserve("moonshot-v2-long", None) == 4096
    # Where Kimi leaves a field out, the built-in rules answer.
    assert catalogue.context_window("kimi-undescribed") == 262144
    assert catalogue.thinking("kimi-undescribed") == "never"


def test_an_operators_context_window_wins_over_kimis(kimi, settings):
    settings.KIMI_CONTEXT_WINDOWS = {"kimi-k3": 100_000}
    assert read_kimi()
    assert catalogue.context_window("kimi-k3") == 100_000
    assert catalogue.context_window("kimi-k2.6") == 262144


# Kimi out of reach


def test_without_kimi_the_built_in_list_is_offered(kimi, alice, settings):
    settings.MOONSHOT_BASE_URL = closed_port_url()
    assert not read_kimi()
    page = logged_in(alice).get("/").content.decode()
    assert picker(page) == settings.KIMI_MODELS == settings.BUILT_IN_MODELS
    assert picker(page) == ["kimi-k3", "kimi-k2.6"]  # today's models, not retired ones
    assert selected(page) == "kimi-k3"


def test_without_a_key_kimi_is_not_asked(kimi, settings):
    settings.MOONSHOT_API_KEY = ""
    assert not read_kimi()
    assert kimi.reads == []
    assert catalogue.offered() == settings.KIMI_MODELS


def test_a_list_read_stays_while_kimi_is_out_of_reach(kimi, settings):
    kimi.script.models = LEGACY_MODELS[2:4]
    assert read_kimi()
    kimi.script.models_status = 500
    assert not read_kimi()
    settings.MOONSHOT_BASE_URL = closed_port_url()
    assert not read_kimi()
    assert catalogue.offered() == ["kimi-k2.5", "kimi-k2-thinking"]  # as last read


# Read by the server in the background: at start, then every few minutes


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_kimi_clients")
async def test_the_server_reads_kimis_models_in_the_background_and_pages_never_wait(
    kimi, alice, settings
):
    settings.KIMI_MODELS_REFRESH = 300
    kimi.hold_models()  # Kimi takes its time to answer
    # The server's first connection (any page or socket) starts the reading.
    first = await connect(None, "/ws/conversations/new/")
    await first.connect(30)
    await sync_to_async(kimi.wait_for)(lambda: "/v1/models" in kimi.reads)

    # Meanwhile pages render at once, with the built-in list.
    client = Client()
    await sync_to_async(client.force_login)(alice)
    page = (await sync_to_async(client.get)("/")).content.decode()
    assert picker(page) == settings.BUILT_IN_MODELS

    kimi.release()
    await catalogue.tried()
    page = (await sync_to_async(client.get)("/")).content.decode()
    assert picker(page) == [m["id"] for m in MODELS]
    await first.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_kimi_clients")
async def test_kimis_list_is_read_again_every_few_minutes(kimi, alice, settings):
    settings.KIMI_MODELS_REFRESH = 0.01  # "a few minutes", made short
    chat = await open_chat(alice)
    await catalogue.tried()
    assert "kimi-k2.6" in catalogue.offered()

    kimi.script.models = [m for m in MODELS if m["id"] != "kimi-k2.6"]
    reads = len(kimi.reads)
    # The reading that began after the change has been taken in once the next one begins.
    await sync_to_async(kimi.wait_for)(lambda: len(kimi.reads) >= reads + 2)
    assert "kimi-k2.6" not in catalogue.offered()
    await chat.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_models_are_not_read_when_the_setting_says_never(kimi, settings):
    settings.KIMI_MODELS_REFRESH = 0
    first = await connect(None, "/ws/conversations/new/")
    await first.connect(30)
    await catalogue.tried()
    await first.disconnect()
    assert kimi.reads == []
    assert catalogue.read_at() is None


# A model Kimi retired


@pytest.fixture
def old_chat(alice) -> Conversation:
    return Conversation.objects.create(owner=alice, model="kimi-k2.5", title="Old chat")


def test_a_retired_model_is_named_and_the_picker_offers_a_current_one(kimi, alice, old_chat):
    kimi.script.models = [m for m in LEGACY_MODELS if m["id"].startswith("kimi-k")]
    client = logged_in(alice)
    assert read_kimi()
    page = client.get(f"/c/{old_chat.pk}/").content.decode()
    assert selected(page) == "kimi-k2.5" and RETIRED not in page  # still offered

    kimi.script.models = MODELS  # Kimi retired it
    assert read_kimi()
    page = client.get(f"/c/{old_chat.pk}/").content.decode()
    assert f"kimi-k2.5 {RETIRED}" in page
    assert "kimi-k2.5" not in picker(page)
    assert selected(page) == "kimi-k3"


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_kimi_clients")
async def test_a_conversation_on_a_retired_model_goes_on_with_the_default_and_says_so_once(
    kimi, alice, old_chat
):
    await sync_to_async(add_thread)(
        old_chat,
        {"role": "user", "content": "Earlier question"},
        {"role": "assistant", "content": "Earlier answer", "model": "kimi-k2.5"},
    )
    assert await catalogue.refresh()
    chat = await open_chat(alice, old_chat)
    # Sent from a page opened before Kimi retired it (its model), then without a model.
    for n, sent in enumerate(({"model": "kimi-k2.5"}, {})):
        await chat.send_json_to({"message": "Still there?", "client_id": f"c{n}", **sent})
        frames = await frames_until_final(chat)
        assert 'data-state="done"' in frames[-1]
        assert kimi.streams[-1].body["model"] == "kimi-k3"
        said = "kimi-k2.5 is no longer offered; continuing with kimi-k3."
        assert (said in "".join(frames)) == (n == 0)  # once in the thread
    await chat.disconnect()
    # The history went whole.
    sent = [m["content"] for m in kimi.streams[0].body["messages"]]
    assert sent == ["Earlier question", "Earlier answer", "Still there?"]
    assert (await Conversation.objects.aget(pk=old_chat.pk)).model == "kimi-k3"


# The balance on the admin's Usage page

USAGE = "/admin/accounts/usage/"


@pytest.fixture
def admin_user(db) -> User:
    return User.objects.create_superuser("root", password="password")


def test_the_usage_page_shows_kimis_balance(kimi, admin_user):
    page = logged_in(admin_user).get(USAGE).content.decode()
    assert "Kimi balance: available 49.59 (cash 3.00, voucher 46.59)." in page
    assert kimi.reads == ["/v1/users/me/balance"]
    assert "topped up" not in page


def test_an_empty_balance_says_kimi_refuses_to_answer(kimi, admin_user):
    kimi.script.balance = {
        "available_balance": -0.5,
        "voucher_balance": 0,
        "cash_balance": -0.5,
    }
    page = logged_in(admin_user).get(USAGE).content.decode()
    assert "Kimi balance: available -0.50 (cash -0.50, voucher 0.00)." in page
    assert "Kimi refuses to answer until the account is topped up." in page


def test_the_usage_page_says_when_kimi_cannot_be_reached(kimi, admin_user, settings):
    settings.MOONSHOT_BASE_URL = closed_port_url()
    r = logged_in(admin_user).get(USAGE)
    assert r.status_code == 200
    assert "Kimi balance unavailable: Kimi could not be reached." in r.content.decode()


def test_the_usage_page_says_why_kimi_refused(kimi, admin_user):
    kimi.script.balance_status = 401
    page = logged_in(admin_user).get(USAGE).content.decode()
    assert "Kimi balance unavailable: Kimi rejected the API key (401)." in page


def test_without_a_key_the_usage_page_shows_no_balance(kimi, admin_user, settings):
    settings.MOONSHOT_API_KEY = ""
    page = logged_in(admin_user).get(USAGE).content.decode()
    assert "Kimi balance" not in page
    assert kimi.reads == []


@pytest.fixture
def chinese():
    yield "zh-hans"
    # The last request's language stays active in this thread; the next test's is English.
    translation.deactivate()


def test_the_balance_and_the_retired_model_in_chinese(kimi, admin_user, old_chat, alice, chinese):
    page = logged_in(admin_user).get(USAGE, HTTP_ACCEPT_LANGUAGE=chinese).content.decode()
    assert "Kimi 余额：可用 49.59（现金 3.00，代金券 46.59）。" in page
    assert read_kimi()
    client = logged_in(alice)
    page = client.get(f"/c/{old_chat.pk}/", HTTP_ACCEPT_LANGUAGE=chinese).content.decode()
    assert "Kimi 已不再提供 kimi-k2.5，请选择其他模型。" in page


@pytest.mark.parametrize("status", [404, 503])
def test_the_usage_page_says_the_balance_is_unavailable_and_why(kimi, admin_user, status):
    kimi.script.balance_status = status
    page = logged_in(admin_user).get(USAGE).content.decode()
    assert f"Kimi balance unavailable: Kimi answered with status {status}." in page
    assert "Pick another model" not in page
    chinese = logged_in(admin_user).get(USAGE, headers={"Accept-Language": "zh-CN"})
    assert "Kimi 余额暂不可用：" in chinese.content.decode()
    assert f"Kimi 返回了状态码 {status}。" in chinese.content.decode()
