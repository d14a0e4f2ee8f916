"""Every door holds the same rules as the log-in page: staff who must turn on two-factor are
refused on the chat socket and through /v1 with a key made before; a session that ends
(log-out, a password change elsewhere) closes its open sockets."""

import openai
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from api import services as api_services
from conversations.models import Message
from kimichat.asgi import application
from realtime import live
from tests.helpers.api import sdk
from tests.helpers.chat import ORIGIN, frames_until_final

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("close_kimi_clients"),
]

TWO_FACTOR = "Staff accounts must use two-factor authentication. Turn it on to continue."


def socket_for(client: Client, path: str = "/ws/conversations/new/") -> WebsocketCommunicator:
    """A socket of the browser `client` (its session cookie), as its page opens one."""
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [ORIGIN, (b"host", b"localhost"), (b"cookie", cookie)]
    return WebsocketCommunicator(application, path, headers=headers)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff(alice, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    alice.is_staff = True
    alice.save()
    return alice


async def test_staff_without_two_factor_are_refused_on_the_chat_socket_with_the_reason(staff):
    client = await sync_to_async(logged_in)(staff)
    socket = socket_for(client)
    connected, _ = await socket.connect(30)
    assert connected  # to be told why
    assert TWO_FACTOR in await socket.receive_from(30)
    assert (await socket.receive_output(30))["code"] == live.CLOSE_SUSPENDED
    # Nothing sent on it reaches Kimi: the socket is gone.


def test_staff_without_two_factor_are_refused_through_the_api_with_an_old_key(
    api_server,
    kimi,
    alice,
    settings,
):
    key = api_services.key_create(user=alice, name="laptop")[1]  # made before the rule
    settings.MFA_REQUIRED_FOR_STAFF = True
    alice.is_staff = True
    alice.save()
    client = sdk(api_server, key)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.chat.completions.create(
            model="moonshot-v1-8k", messages=[{"role": "user", "content": "Hi"}]
        )
    assert TWO_FACTOR in str(refused.value)
    with pytest.raises(openai.PermissionDeniedError):
        client.models.list()
    assert not kimi.requests


async def test_people_who_are_not_staff_still_use_the_socket(kimi, bob, settings):
    settings.MFA_REQUIRED_FOR_STAFF = True
    socket = socket_for(await sync_to_async(logged_in)(bob))
    assert (await socket.connect(30))[0]
    await socket.send_json_to({"message": "Hi", "client_id": "c1"})
    await frames_until_final(socket)
    await socket.disconnect()


async def closed_as_signed_out(socket: WebsocketCommunicator) -> bool:
    return (await socket.receive_output(30)) == {
        "type": "websocket.close",
        "code": live.CLOSE_UNAUTHENTICATED,
    }


async def still_answers(socket: WebsocketCommunicator, client_id: str) -> bool:
    await socket.send_json_to({"message": "Still there?", "client_id": client_id})
    return "Hello from the Kimi stub." in "".join(await frames_until_final(socket))


async def test_logging_out_closes_that_browsers_sockets_only(kimi, alice):
    here, elsewhere = await sync_to_async(logged_in)(alice), await sync_to_async(logged_in)(alice)
    page, other = socket_for(here), socket_for(elsewhere)
    assert (await page.connect(30))[0] and (await other.connect(30))[0]

    response = await sync_to_async(here.post)("/accounts/logout/")
    assert response.status_code == 302
    assert await closed_as_signed_out(page)
    assert await still_answers(other, "c1")
    await other.disconnect()


async def test_logging_out_of_the_admin_closes_the_sockets_too(kimi, alice):
    alice.is_staff = True
    await alice.asave()
    here = await sync_to_async(logged_in)(alice)
    page = socket_for(here)
    assert (await page.connect(30))[0]
    response = await sync_to_async(here.post)("/admin/logout/")
    assert response.status_code == 302
    assert await closed_as_signed_out(page)


async def test_a_password_change_closes_the_other_sessions_sockets(kimi, alice):
    changing, other = await sync_to_async(logged_in)(alice), await sync_to_async(logged_in)(alice)
    here, there = socket_for(changing), socket_for(other)
    assert (await here.connect(30))[0] and (await there.connect(30))[0]

    response = await sync_to_async(changing.post)(
        "/accounts/password/change/",
        {
            "oldpassword": "password",
            "password1": "a-long-passphrase-9",
            "password2": "a-long-passphrase-9",
        },
    )
    assert response.status_code == 302
    assert await closed_as_signed_out(there)
    # The session that changed it goes on, its socket too.
    assert await still_answers(here, "c1")
    await here.disconnect()


BAD_FRAMES = [
    {"bytes_data": b"\x00\x01binary"},
    {"text_data": '{"message": "\\ud800 half a character", "client_id": "c1"}'},
    {"text_data": '{"action": "send", "message": "\\udfff"}'},
    {"text_data": "[" * 100_000 + "]" * 100_000},
    {"text_data": '{"a":' * 50_000 + "1" + "}" * 50_000},
]


async def test_bad_frames_are_refused_and_every_socket_slot_comes_back(kimi, alice, settings):
    settings.USER_MAX_SOCKETS = 3
    client = await sync_to_async(logged_in)(alice)
    for frame in BAD_FRAMES:
        socket = socket_for(client)
        assert (await socket.connect(30))[0]
        await socket.send_to(**frame)
        said = await socket.receive_from(30)
        assert "That is not a message KimiChat understands." in said
        # The socket goes on: a good message after it is answered.
        assert await still_answers(socket, f"ok-{BAD_FRAMES.index(frame)}")
        await socket.disconnect()
    # Every slot came back: the user opens as many sockets as ever.
    sockets = [socket_for(client) for _ in range(3)]
    for socket in sockets:
        assert (await socket.connect(30))[0]
    for socket in sockets:
        await socket.disconnect()
    assert not await Message.objects.filter(content__contains="half a character").aexists()


async def test_a_password_set_or_an_account_made_inactive_in_the_admin_closes_its_sockets(
    kimi, alice, bob
):
    alice.is_staff = alice.is_superuser = True
    await alice.asave()
    admin = await sync_to_async(logged_in)(alice)
    page = socket_for(await sync_to_async(logged_in)(bob))
    assert (await page.connect(30))[0]
    new = {"password1": "a-long-passphrase-9", "password2": "a-long-passphrase-9"}
    response = await sync_to_async(admin.post)(f"/admin/auth/user/{bob.pk}/password/", new)
    assert response.status_code == 302
    assert await closed_as_signed_out(page)

    await page.wait(10)
    bob = await User.objects.aget(pk=bob.pk)
    page = socket_for(await sync_to_async(logged_in)(bob))
    connected, code = await page.connect(30)
    assert connected, code
    change = await sync_to_async(admin.get)(f"/admin/auth/user/{bob.pk}/change/")
    assert change.status_code == 200
    data = {"username": "bob", "is_active": "", "date_joined_0": "2026-01-01"}
    data |= {"date_joined_1": "00:00:00", "last_login_0": "", "last_login_1": ""}
    response = await sync_to_async(admin.post)(f"/admin/auth/user/{bob.pk}/change/", data)
    assert response.status_code == 302
    assert (await page.receive_output(30))["type"] == "websocket.send"  # the page is told
    assert (await page.receive_output(30))["code"] == live.CLOSE_SUSPENDED
