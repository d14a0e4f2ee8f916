"""A NUL, a right-to-left override or another control character in a name (a conversation's
title, a file's name, a team's name) is refused with a clear message wherever a person types
one in; a name made from other text loses them."""

import html

import pytest
from django.contrib.auth.models import User
from django.test import Client

from conversations.models import Conversation
from teams.models import Team
from teams.services import team_create
from tests.helpers.uploads import logged_in, upload
from uploads import background
from uploads.models import UploadedFile

pytestmark = pytest.mark.django_db(transaction=True)

REFUSED = (
    "A name cannot contain control characters, such as NUL or a right-to-left override. "
    "Remove them and try again."
)
BAD_NAMES = ["Pay\x00roll", "invoice\u202efdp.exe", "Lab\u2066x\u2069", "a\x1bb", "x\u2028y"]


def client_of(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_team_name_with_a_control_character_is_refused(alice, name):
    page = client_of(alice).post("/teams/", {"name": name}).content.decode()
    assert REFUSED in html.unescape(page)
    assert not Team.objects.exists()


def test_the_admin_refuses_such_a_team_name_and_such_a_file_name(alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    admin = client_of(alice)
    page = admin.post("/admin/teams/team/add/", {"name": "Fin\u202eance", "slug": "finance"})
    assert REFUSED in html.unescape(page.content.decode()) and not Team.objects.exists()

    team = team_create(user=alice, name="Finance")
    data = {"name": "Fin\u2066ance", "slug": team.slug, "sso_group": ""}
    for prefix in ("memberships",):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    page = admin.post(f"/admin/teams/team/{team.pk}/change/", data)
    assert REFUSED in html.unescape(page.content.decode())
    team.refresh_from_db()
    assert team.name == "Finance"


@pytest.mark.parametrize("name", ["invoice\u202efdp.txt", "notes\x00.txt"])
async def test_an_uploaded_files_name_loses_its_control_characters(alice, name):
    """A file's name comes from the person's disk, not typed here: it is kept without them
    (Django's upload parser drops them, and so do uploads.services.clean_name)."""
    response = await upload(await logged_in(alice), name, b"Pump curves and valves")
    assert response.status_code == 200
    await background.idle()
    file = await UploadedFile.objects.aget()
    assert file.name == name.replace("\u202e", "").replace("\x00", "")


def test_the_admin_refuses_a_file_name_with_a_control_character(alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    file = UploadedFile.objects.create(
        owner=alice,
        name="pumps.txt",
        size=5,
        sha256="1" * 64,
        kind=UploadedFile.Kind.TEXT,
        content_type="text/plain",
        status=UploadedFile.Status.READY,
        text="Pumps",
    )
    data = {"owner": alice.pk, "name": "pumps\u202etxt.exe", "kind": "text", "status": "ready"}
    page = client_of(alice).post(f"/admin/uploads/uploadedfile/{file.pk}/change/", data)
    assert REFUSED in html.unescape(page.content.decode())
    file.refresh_from_db()
    assert file.name == "pumps.txt"


def test_renaming_a_conversation_to_such_a_title_is_refused(alice):
    conversation = Conversation.objects.create(owner=alice, model="moonshot-v1-8k", title="Q3")
    client = client_of(alice)
    url = f"/c/{conversation.pk}/rename/"
    answer = client.post(url, {"title": "Q3\u202e report"}, headers={"hx-request": "true"})
    assert answer.status_code == 200 and REFUSED in html.unescape(answer.content.decode())
    page = client.post(url, {"title": "Q3\x00"})  # without JavaScript
    assert page.status_code == 400 and REFUSED in html.unescape(page.content.decode())
    conversation.refresh_from_db()
    assert conversation.title == "Q3"


def test_a_title_made_from_a_message_loses_its_control_characters():
    assert Conversation.title_from("Plan\u202e a\x00 trip\u2066") == "Plan a trip"
