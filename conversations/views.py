from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Preferences
from conversations import chats
from conversations.forms import ConversationSettingsForm
from conversations.models import Conversation, Message
from kimi import catalogue
from kimichat.http import AuthenticatedRequest
from realtime import live
from teams.models import Team


def _get_conversation_for_user(
    request: AuthenticatedRequest, conversation_id: int, removed_too: bool = False
) -> Conversation:
    """The one ownership check: anyone else's conversation is a 404, never a 403. One a
    moderator removed is a 404 too, except where its owner sees the notice or deletes it."""
    conversations = Conversation.objects.for_user(request.user)
    if not removed_too:
        conversations = conversations.visible()
    return get_object_or_404(conversations, pk=conversation_id)


# Which of a user's messages they reported, for their Report buttons: reports are
# moderation's, an app above this one, which says so from its AppConfig.ready.
ReportedBy = Callable[[Any, list[int]], set[int]]
_reported_by: list[ReportedBy] = []


def reports_known(finder: ReportedBy) -> None:
    """`finder(user, message_ids)` says which of the messages the user reported."""
    if finder not in _reported_by:
        _reported_by.append(finder)


def _reported(request: AuthenticatedRequest, messages: list[Message]) -> set[int]:
    """Which of these messages the user has reported: their Report button says so."""
    ids = [m.pk for m in messages]
    return set().union(*(finder(request.user, ids) for finder in _reported_by))


# The list shows this many conversations, then loads as many more each time it is scrolled
# to its end (chat.html#conversation-page asks for one more to know whether there are more).
SIDEBAR_PAGE = 50


LISTED = ("id", "title", "hidden_at", "updated_at", "pinned_at", "archived_at")


def _sidebar(request: AuthenticatedRequest, *, archived: bool = False) -> dict[str, object]:
    """The list's context: the pinned conversations, then the first page of the others (or
    of the archived ones)."""
    mine = Conversation.objects.for_user(request.user).only(*LISTED)
    return {
        "pinned": [] if archived else list(mine.pinned()),
        "conversations": list(mine.in_list(archived=archived)[: SIDEBAR_PAGE + 1]),
        "archived": archived,
    }


@login_required
@require_GET
def archived(request: AuthenticatedRequest) -> HttpResponse:
    """A new chat, with the archived conversations in the list."""
    ctx = {
        **_sidebar(request, archived=True),
        "form": ConversationSettingsForm(),
        "ws_url": Conversation.NEW_WS_URL,
        # No thread: `messages` is not the messages framework's (a flash such as "Signed in
        # as …" would be shown as a message of the chat).
        "messages": [],
    }
    return render(request, "conversations/chat.html", ctx)


def _back(request: AuthenticatedRequest, conversation: Conversation) -> HttpResponse:
    """After Pin or Archive: the page reloads (htmx) or goes back to the chat."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = conversation.get_absolute_url()
        return response
    return redirect(conversation)


@login_required
@require_POST
def conversation_pin(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    chats.conversation_pin(conversation=conversation, pinned=bool(request.POST.get("pinned")))
    return _back(request, conversation)


@login_required
@require_POST
def conversation_archive(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    archive = bool(request.POST.get("archived"))
    chats.conversation_archive(conversation=conversation, archived=archive)
    return _back(request, conversation)


@login_required
@require_GET
def conversation_page(request: AuthenticatedRequest) -> HttpResponse:
    """The next page of the list, after the conversation given (`after`: its id)."""
    try:
        last = Conversation.objects.for_user(request.user).get(pk=int(request.GET["after"]))
    except (KeyError, ValueError, Conversation.DoesNotExist):
        return HttpResponse(status=400)
    archived = bool(request.GET.get("archived"))
    mine = Conversation.objects.for_user(request.user).only(*LISTED)
    conversations = mine.in_list(archived=archived).listed_after(last.updated_at, last.pk)
    ctx = {"conversations": list(conversations[: SIDEBAR_PAGE + 1]), "archived": archived}
    return render(request, "conversations/chat.html#conversation-page", ctx)


@login_required
@require_GET
def chat_new(request: AuthenticatedRequest) -> HttpResponse:
    ctx = {
        **_sidebar(request),
        # A new chat starts as the user chose on the Account page.
        "form": ConversationSettingsForm(
            initial=Preferences.objects.for_user(request.user).new_chat_initial(catalogue.offered())
        ),
        "ws_url": Conversation.NEW_WS_URL,
        # No thread: `messages` is not the messages framework's (a flash such as "Signed in
        # as …" would be shown as a message of the chat).
        "messages": [],
    }
    return render(request, "conversations/chat.html", ctx)


@login_required
@require_GET
def chat(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id, removed_too=True)
    if conversation.is_hidden:
        ctx = {"conversation": conversation, **_sidebar(request), "removed": True}
        return render(request, "conversations/chat.html", ctx)
    messages, has_older = conversation.thread().page()
    ctx = {
        "conversation": conversation,
        **_sidebar(request),
        "messages": messages,
        "has_older": has_older,
        "reported": _reported(request, messages),
        "form": ConversationSettingsForm(instance=conversation),
        "ws_url": conversation.ws_url,
        "teams": Team.objects.for_user(request.user),
    }
    return render(request, "conversations/chat.html", ctx)


@login_required
@require_GET
def older_messages(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponse(status=400)
    messages, has_older = conversation.thread().page(before)
    ctx = {
        "conversation": conversation,
        "messages": messages,
        "has_older": has_older,
        "reported": _reported(request, messages),
    }
    return render(request, "conversations/chat.html#older-messages", ctx)


@login_required
@require_POST
def conversation_settings(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    form = ConversationSettingsForm(request.POST, instance=conversation)
    saved = form.is_valid()
    if saved:
        form.save()
    ctx = {"conversation": conversation, "form": form, "saved": saved}
    return render(request, "conversations/chat.html#settings", ctx)


@login_required
@require_POST
def conversation_rename(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    title = " ".join(request.POST.get("title", "").split())[:200]
    if title:
        chats.conversation_rename(conversation=conversation, title=title)
    if request.htmx:
        # The heading, the list and the tab's title change in place.
        ctx = {"conversation_id": conversation.pk, "title": conversation.title}
        return render(request, "conversations/_title_frame.html", ctx)
    return redirect(conversation)


@login_required
def conversation_delete(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """A confirmation page (GET) and the deletion (POST)."""
    conversation = _get_conversation_for_user(request, conversation_id, removed_too=True)
    if request.method == "POST":
        # An answer still being written for it is stopped first, in whichever process.
        live.stop_answers([conversation.pk])
        conversation.delete()
        return redirect("chat-new")
    ctx = {"conversation": conversation, "count": conversation.messages.count()}
    return render(request, "conversations/delete.html", ctx)


@login_required
@require_GET
def conversation_export(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """The versions shown, as a Markdown file."""
    conversation = _get_conversation_for_user(request, conversation_id)
    thread = conversation.thread()
    messages = Message.objects.filter(id__in=thread.ids).order_by("id")
    text = render_to_string(
        "conversations/export.md", {"conversation": conversation, "messages": messages}
    )
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    name = slugify(conversation.title, allow_unicode=True) or f"conversation-{conversation.pk}"
    response["Content-Disposition"] = content_disposition_header(True, f"{name}.md")
    return response


@login_required
@require_GET
def search(request: AuthenticatedRequest) -> HttpResponse:
    """Conversations whose title or messages contain the words typed, newest first."""
    query = " ".join(request.GET.get("q", "").split())[:200]
    mine = Conversation.objects.for_user(request.user).visible()
    conversations = list(mine.search(query)[:50])
    for conversation in conversations:
        conversation.snippet = conversation.snippet_for(query)
    ctx: dict[str, object] = {"conversations": conversations, "query": query}
    if request.htmx:
        return render(request, "conversations/chat.html#conversation-list", ctx)
    ctx.update(form=ConversationSettingsForm(), ws_url=Conversation.NEW_WS_URL, messages=[])
    return render(request, "conversations/chat.html", ctx)


@login_required
@require_POST
def conversation_share(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """Share one's conversation with one of one's teams, or stop sharing it (no team)."""
    conversations = Conversation.objects.for_user(request.user).visible()
    conversation = get_object_or_404(conversations, pk=conversation_id)
    team = None
    if request.POST.get("team"):
        teams = Team.objects.for_user(request.user)
        team = get_object_or_404(teams, pk=request.POST["team"])
    chats.conversation_share(conversation=conversation, team=team)
    if request.htmx:
        # The header of a chat begun on this page came over its socket, without a form
        # token: it posts through htmx (which sends the token) and the page then reloads.
        response = HttpResponse(status=204)
        response["HX-Redirect"] = conversation.get_absolute_url()
        return response
    return redirect(conversation)


def _shared(request: AuthenticatedRequest, conversation_id: int) -> Conversation:
    conversations = Conversation.objects.shared_with(request.user).select_related("owner", "team")
    return get_object_or_404(conversations, pk=conversation_id)


@login_required
@require_GET
def conversation_shared(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """A conversation shared with one of the user's teams, to read (its owner gets the chat)."""
    conversation = _shared(request, conversation_id)
    if conversation.owner_id == request.user.pk:
        return redirect(conversation)
    messages_shown, _ = conversation.thread().page(size=500)
    ctx = {"conversation": conversation, "messages": messages_shown}
    return render(request, "conversations/shared.html", ctx)


@login_required
@require_POST
def conversation_copy(request: AuthenticatedRequest, conversation_id: int) -> HttpResponse:
    """Continue a shared conversation in a copy of one's own."""
    conversation = _shared(request, conversation_id)
    copy = chats.conversation_copy(conversation=conversation, user=request.user)
    return redirect(copy)


def team_shared(request: AuthenticatedRequest, team: Team) -> dict[str, Any]:
    """The conversations shared with a team, as its page shows them (teams/views.py:
    team_section)."""
    shared = Conversation.objects.filter(team=team).visible().select_related("owner")
    return {"template": "conversations/_team_shared.html", "conversations": shared}
