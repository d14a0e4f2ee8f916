"""Teams: membership and roles, the team library and who may read it, `@` references to team
files and whole libraries, and conversations shared with a team."""

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient, Client

from conversations import chats as conversations
from conversations.models import Conversation, Message
from teams import services as teams
from teams.models import Membership, Team
from tests.helpers.chat import add_thread
from tests.helpers.uploads import suggested
from uploads import background, references, services
from uploads.models import UploadedFile


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def team_file(team: Team, owner: User, name: str, text: str) -> UploadedFile:
    """A text file in the team's library, read."""
    saved = services.file_create(
        owner=owner, upload=SimpleUploadedFile(name, text.encode()), team=team
    )
    services.file_read(file_id=saved.file.pk)
    return UploadedFile.objects.get(pk=saved.file.pk)


@pytest.fixture
def carol(db) -> User:
    return User.objects.create_user("carol", password="password")


@pytest.fixture
def team(alice, bob) -> Team:
    """Research: alice owns it, bob is a member."""
    team = teams.team_create(user=alice, name="Research Lab")
    Membership.objects.create(team=team, user=bob)
    return team


@pytest.fixture
def manual(team, alice) -> UploadedFile:
    return team_file(team, alice, "manual.txt", "The pump's pressure limit is 7 bar.")


# Teams and roles


def test_new_team_makes_its_creator_owner(alice):
    client = logged_in(alice)
    assert "New team" in client.get("/teams/").content.decode()
    response = client.post("/teams/", {"name": "  研发 部  "})
    team = Team.objects.get()
    assert response["Location"] == f"/teams/{team.pk}/"
    assert (team.name, team.slug, team.reference) == ("研发 部", "研发-部", "@研发-部")
    assert team.memberships.get().role == "owner"
    page = client.get("/teams/").content.decode()
    assert "研发 部" in page and "Owner" in page
    # A second team of the same name gets its own reference.
    assert teams.team_create(user=alice, name="研发 部").slug == "研发-部-2"


def test_owner_adds_members_and_changes_roles(team, alice, carol):
    client = logged_in(alice)
    page = client.get(f"/teams/{team.pk}/").content.decode()
    assert "Add member" in page and 'aria-label="Upload to team"' in page
    page = client.post(f"/teams/{team.pk}/members/", {"username": "carol"}, follow=True)
    membership = team.memberships.get(user=carol)
    assert membership.role == "member"
    assert "carol" in page.content.decode()
    page = client.post(f"/teams/{team.pk}/members/", {"username": "nobody"}, follow=True)
    assert "There is no user “nobody”." in page.content.decode()
    page = client.post(f"/teams/{team.pk}/members/", {"username": "carol"}, follow=True)
    assert "carol is already a member." in page.content.decode()

    client.post(f"/teams/{team.pk}/members/{membership.pk}/role/", {"role": "admin"})
    membership.refresh_from_db()
    assert membership.role == "admin"


def test_admins_manage_members_but_not_owners(team, alice, bob, carol):
    admin = team.memberships.get(user=bob)
    admin.role = "admin"
    admin.save()
    client = logged_in(bob)
    client.post(f"/teams/{team.pk}/members/", {"username": "carol"})
    carols = team.memberships.get(user=carol)
    owner = team.memberships.get(user=alice)
    page = client.post(f"/teams/{team.pk}/members/{owner.pk}/remove/", follow=True).content.decode()
    assert "You cannot remove that member." in page
    page = client.post(
        f"/teams/{team.pk}/members/{carols.pk}/role/", {"role": "owner"}, follow=True
    ).content.decode()
    assert "You cannot give that role." in page
    client.post(f"/teams/{team.pk}/members/{carols.pk}/remove/")
    assert not team.memberships.filter(user=carol).exists()


def test_members_cannot_manage_but_can_leave(team, alice, bob, carol):
    client = logged_in(bob)
    page = client.get(f"/teams/{team.pk}/").content.decode()
    assert "Add member" not in page and "Leave team" in page
    client.post(f"/teams/{team.pk}/members/", {"username": "carol"})
    assert not team.memberships.filter(user=carol).exists()
    mine = team.memberships.get(user=bob)
    assert client.post(f"/teams/{team.pk}/members/{mine.pk}/remove/")["Location"] == "/teams/"
    assert client.get(f"/teams/{team.pk}/").status_code == 404


def test_an_owner_may_leave_once_there_is_another(team, alice, bob):
    team.memberships.filter(user=bob).update(role="owner")
    assert "Leave team" in logged_in(alice).get(f"/teams/{team.pk}/").content.decode()


def test_a_team_keeps_an_owner(team, alice):
    owner = team.memberships.get(user=alice)
    client = logged_in(alice)
    assert "Leave team" not in client.get(f"/teams/{team.pk}/").content.decode()
    page = client.post(
        f"/teams/{team.pk}/members/{owner.pk}/role/", {"role": "member"}, follow=True
    )
    assert "A team needs an owner" in page.content.decode()
    page = client.post(f"/teams/{team.pk}/members/{owner.pk}/remove/", follow=True)
    assert "A team needs an owner" in page.content.decode()
    owner.refresh_from_db()
    assert owner.role == "owner"


def test_outsiders_do_not_see_a_team(team, carol):
    client = logged_in(carol)
    assert client.get(f"/teams/{team.pk}/").status_code == 404
    assert client.post(f"/teams/{team.pk}/members/", {"username": "carol"}).status_code == 404
    assert "Research Lab" not in client.get("/teams/").content.decode()


# The library


@pytest.mark.django_db(transaction=True)
async def test_upload_to_team_lists_who_uploaded_what(team, bob, alice):
    client = AsyncClient()
    await client.aforce_login(bob)
    notes = SimpleUploadedFile("notes.md", b"# Notes\nFlow rate: 12 l/min.")
    response = await client.post("/files/upload/", {"file": notes, "team": team.pk})
    assert response["Location"] == f"/teams/{team.pk}/"
    await background.idle()
    file = await UploadedFile.objects.select_related("team", "owner").aget()
    assert (file.team, file.owner, file.status) == (team, bob, "ready")
    page = (await client.get(f"/teams/{team.pk}/")).content.decode()
    assert "notes.md" in page and "by bob" in page
    # Not on anyone's own Files page.
    assert "notes.md" not in (await client.get("/files/")).content.decode()


def test_only_members_upload_to_a_team(team, carol):
    response = logged_in(carol).post(
        "/files/upload/", {"file": SimpleUploadedFile("x.txt", b"hello"), "team": team.pk}
    )
    assert response.status_code == 404
    assert not UploadedFile.objects.exists()


@pytest.mark.parametrize(
    ("who", "reads"), [("alice", True), ("bob", True), ("carol", False), ("removed", False)]
)
def test_who_may_read_team_files(who, reads, team, manual, bob, carol):
    if who == "removed":
        team.memberships.filter(user=bob).delete()  # bob uploaded nothing; see below
    user = {"alice": team.memberships.get(role="owner").user, "bob": bob, "carol": carol}.get(
        who, bob
    )
    client = logged_in(user)
    download = client.get(f"/files/{manual.pk}/download/")
    assert (download.status_code == 200) is reads
    team_page = client.get(f"/teams/{team.pk}/")
    assert (team_page.status_code == 200) is reads
    suggestions = suggested(client.get("/files/suggest/", {"q": "manual"}))
    assert bool(suggestions) is reads
    for text in ("About @manual.txt please", f"About @file-{manual.pk} please"):
        if reads:
            assert references.resolve(user=user, text=text) == [manual]
        else:
            with pytest.raises(references.NotFound) as refused:
                references.resolve(user=user, text=text)
            assert "that you can read" in str(refused.value)


def test_a_removed_member_loses_even_the_files_they_uploaded(team, bob):
    mine = team_file(team, bob, "bobs.txt", "Bob's notes")
    team.memberships.filter(user=bob).delete()
    assert logged_in(bob).get(f"/files/{mine.pk}/download/").status_code == 404


def test_team_files_are_suggested_marked_and_the_team_too(team, bob, manual):
    own = services.file_create(owner=bob, upload=SimpleUploadedFile("mine.txt", b"own")).file
    found = suggested(logged_in(bob).get("/files/suggest/"))
    by_reference = {reference: (name, detail) for reference, name, detail in found}
    assert by_reference["@research-lab"] == ("Research Lab", "Team library · 1 file")
    assert by_reference["@manual.txt"][1].startswith("Team Research Lab · Text")
    assert by_reference[own.reference][1].startswith("Text")


def test_an_own_file_wins_over_a_team_file_of_the_same_name(team, bob, manual):
    own = services.file_create(owner=bob, upload=SimpleUploadedFile("manual.txt", b"mine")).file
    assert references.resolve(user=bob, text="@manual.txt") == [own]


def test_at_team_refers_to_every_document_of_its_library(team, alice, bob, manual):
    second = team_file(team, alice, "specs.txt", "Max flow 40 l/min.")
    failed = team_file(team, alice, "broken.txt", "unreadable")
    UploadedFile.objects.filter(pk=failed.pk).update(status="failed", error_code="corrupt")
    files = references.resolve(user=bob, text="Compare @research-lab, please")
    assert {f.pk for f in files} == {manual.pk, second.pk}
    with pytest.raises(references.NotFound):
        references.resolve(user=User.objects.create_user("dan"), text=f"@file-{manual.pk}")


def test_team_files_are_deleted_by_their_uploader_or_the_teams_managers(team, alice, bob, carol):
    by_alice = team_file(team, alice, "a.txt", "A")
    by_bob = team_file(team, bob, "b.txt", "B")
    # Not in the team: as if it did not exist. In it but not one's to delete: forbidden.
    assert logged_in(carol).post(f"/files/{by_alice.pk}/delete/").status_code == 404
    client = logged_in(bob)
    assert client.post(f"/files/{by_alice.pk}/delete/").status_code == 403
    assert client.post(f"/files/{by_bob.pk}/delete/").status_code == 302
    assert logged_in(alice).post(f"/files/{by_alice.pk}/delete/").status_code == 302
    assert not UploadedFile.objects.exists()


def deletes_offered(user: User, team: Team) -> set[str]:
    page = logged_in(user).get(f"/teams/{team.pk}/").content.decode()
    return {name for name in ("a.txt", "b.txt") if f'aria-label="Delete {name}"' in page}


def test_delete_is_offered_to_the_uploader_and_the_teams_owners_and_admins(team, alice, bob):
    team_file(team, alice, "a.txt", "A")
    team_file(team, bob, "b.txt", "B")
    assert deletes_offered(alice, team) == {"a.txt", "b.txt"}  # the owner
    assert deletes_offered(bob, team) == {"b.txt"}  # a member: what they uploaded
    team.memberships.filter(user=bob).update(role="admin")
    assert deletes_offered(bob, team) == {"a.txt", "b.txt"}


def test_an_uploader_out_of_the_team_may_delete_nothing_of_it(team, alice, bob, carol):
    mine = team_file(team, bob, "b.txt", "B")
    own = services.file_create(owner=bob, upload=SimpleUploadedFile("own.txt", b"own")).file
    assert set(UploadedFile.objects.deletable_by(bob)) == {mine, own}
    team.memberships.filter(user=bob).delete()
    assert list(UploadedFile.objects.deletable_by(bob)) == [own]
    assert logged_in(bob).post(f"/files/{mine.pk}/delete/").status_code == 404
    # Owning one team gives nothing over another's files.
    other = teams.team_create(user=carol, name="Other")
    theirs = team_file(other, carol, "c.txt", "C")
    assert list(UploadedFile.objects.deletable_by(alice)) == [mine]
    assert list(UploadedFile.objects.deletable_by(carol)) == [theirs]


# Shared conversations


@pytest.fixture
def shared(team, alice) -> Conversation:
    conversation = Conversation.objects.create(
        owner=alice, model="kimi-k2.6", title="Pump sizing", team=team
    )
    add_thread(
        conversation,
        {"role": "user", "content": "What pump do we need?"},
        {"role": "assistant", "content": "A **7 bar** pump.", "model": "kimi-k2.6"},
    )
    return conversation


def test_the_owner_shares_a_conversation_from_the_chat_page(team, alice):
    conversation = Conversation.objects.create(owner=alice, model="kimi-k2.6", title="T")
    client = logged_in(alice)
    assert 'aria-label="Share with team"' in client.get(f"/c/{conversation.pk}/").content.decode()
    client.post(f"/c/{conversation.pk}/share/", {"team": team.pk})
    conversation.refresh_from_db()
    assert conversation.team == team
    assert "Shared with Research Lab" in client.get(f"/c/{conversation.pk}/").content.decode()
    client.post(f"/c/{conversation.pk}/share/", {"team": ""})
    conversation.refresh_from_db()
    assert conversation.team is None


def test_only_the_owner_shares_and_only_with_their_teams(team, alice, bob, carol):
    conversation = Conversation.objects.create(owner=carol, model="kimi-k2.6")
    response = logged_in(carol).post(f"/c/{conversation.pk}/share/", {"team": team.pk})
    assert response.status_code == 404
    mine = Conversation.objects.create(owner=alice, model="kimi-k2.6")
    assert logged_in(bob).post(f"/c/{mine.pk}/share/", {"team": team.pk}).status_code == 404


def test_members_read_a_shared_conversation_and_continue_in_their_own_copy(shared, bob):
    client = logged_in(bob)
    page = client.get(f"/teams/{shared.team_id}/").content.decode()
    assert "Pump sizing" in page and "by alice" in page
    page = client.get(f"/shared/{shared.pk}/").content.decode()
    assert "What pump do we need?" in page and "<strong>7 bar</strong>" in page
    assert "Continue in my own copy" in page
    response = client.post(f"/shared/{shared.pk}/copy/")
    copy = Conversation.objects.get(owner=bob)
    assert response["Location"] == f"/c/{copy.pk}/"
    assert [(m.role, m.content) for m in copy.messages.order_by("id")] == [
        ("user", "What pump do we need?"),
        ("assistant", "A **7 bar** pump."),
    ]
    assert copy.leaf == copy.messages.last() and copy.team is None
    # The original is untouched, and the copy is bob's to continue.
    assert shared.messages.count() == 2
    assert "A **7 bar** pump." not in client.get(f"/c/{copy.pk}/").content.decode()
    assert "7 bar" in client.get(f"/c/{copy.pk}/").content.decode()


@pytest.mark.parametrize("who", ["outsider", "removed"])
def test_outsiders_and_removed_members_cannot_read_shared_conversations(who, shared, bob, carol):
    user = carol
    if who == "removed":
        shared.team.memberships.filter(user=bob).delete()
        user = bob
    client = logged_in(user)
    assert client.get(f"/shared/{shared.pk}/").status_code == 404
    assert client.post(f"/shared/{shared.pk}/copy/").status_code == 404
    assert client.get(f"/c/{shared.pk}/").status_code == 404
    assert not Conversation.objects.filter(owner=user).exists()


def test_a_hidden_conversation_is_no_longer_shared(shared, bob):
    Conversation.objects.filter(pk=shared.pk).update(hidden_at="2026-01-01T00:00:00Z")
    assert logged_in(bob).get(f"/shared/{shared.pk}/").status_code == 404


def test_copy_of_a_conversation_being_answered_is_interrupted(shared, bob):
    Message.objects.filter(conversation=shared, role="assistant").update(state="streaming")
    logged_in(bob).post(f"/shared/{shared.pk}/copy/")
    copy = Conversation.objects.get(owner=bob)
    assert copy.messages.get(role="assistant").state == "interrupted"


def test_hiding_a_shared_conversation_hides_the_copies_made_of_it(shared, alice, bob):
    logged_in(bob).post(f"/shared/{shared.pk}/copy/")
    copy = Conversation.objects.get(owner=bob)
    # A copy of the copy (shared on again, continued by someone else).
    again = conversations.conversation_copy(conversation=copy, user=alice)
    moderator = User.objects.create_user("mod", password="password", is_staff=True)
    moderator.groups.add(Group.objects.get(name="Moderators"))
    admin = logged_in(moderator)

    def act(action: str, conversation: Conversation) -> None:
        data = {"action": action, "_selected_action": [conversation.pk], "index": 0}
        admin.post("/admin/conversations/conversation/", {**data, "reason": "Spam"})

    def removed(user: User, conversation: Conversation) -> bool:
        page = logged_in(user).get(f"/c/{conversation.pk}/").content.decode()
        return "A moderator removed this conversation" in page

    act("hide", shared)
    assert removed(bob, copy) and removed(alice, again) and removed(alice, shared)
    assert "7 bar" not in logged_in(bob).get(f"/c/{copy.pk}/").content.decode()
    # Shown again together; a copy hidden on its own stays hidden when its original is shown.
    act("unhide", shared)
    assert not any(removed(u, c) for u, c in [(alice, shared), (bob, copy), (alice, again)])
    act("hide", copy)
    assert removed(bob, copy) and removed(alice, again) and not removed(alice, shared)
    act("hide", shared)
    act("unhide", shared)
    assert removed(bob, copy) and not removed(alice, shared)


def test_a_deleted_account_leaves_its_team_files_to_the_team(
    team, manual, alice, bob, carol, django_capture_on_commit_callbacks
):
    notes = team_file(team, bob, "notes.txt", "Bob's notes on the pump.")
    stored = notes.file.storage, notes.file.name
    own = services.file_create(owner=bob, upload=SimpleUploadedFile("diary.txt", b"Dear diary"))
    # A team bob has left since: what he put there stays too.
    other = teams.team_create(user=carol, name="Other Lab")
    Membership.objects.create(team=other, user=bob)
    left_behind = team_file(other, bob, "old.txt", "Old findings.")
    Membership.objects.filter(team=other, user=bob).delete()

    page = logged_in(bob).get("/accounts/delete/").content.decode()
    assert "library stay with the team, handed to its owner." in page
    with django_capture_on_commit_callbacks(execute=True):
        logged_in(bob).post("/accounts/delete/", {"confirm": "password"})
    assert not User.objects.filter(username="bob").exists()
    assert not UploadedFile.objects.filter(pk=own.file.pk).exists()
    # The team's files stay in its library, with their bytes, handed to the team's owner.
    notes.refresh_from_db()
    left_behind.refresh_from_db()
    assert (notes.owner, notes.team, left_behind.owner) == (alice, team, carol)
    assert stored[0].exists(stored[1])
    page = logged_in(alice).get(f"/teams/{team.pk}/").content.decode()
    assert "notes.txt" in page

    # The last owner goes: the team keeps an owner, and the files.
    Membership.objects.create(team=team, user=carol)
    with django_capture_on_commit_callbacks(execute=True):
        logged_in(alice).post("/accounts/delete/", {"confirm": "password"})
    assert Membership.objects.get(team=team, user=carol).role == Membership.Role.OWNER
    assert {f.owner for f in UploadedFile.objects.filter(team=team)} == {carol}
    assert UploadedFile.objects.filter(team=team).count() == 2
