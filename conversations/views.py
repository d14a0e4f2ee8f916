from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from conversations.forms import ConversationSettingsForm
from conversations.models import Conversation, Message

PAGE_SIZE = 50  # messages shown at first; older ones load on scroll


def _get_conversation_for_user(request: HttpRequest, conversation_id: int) -> Conversation:
    """The one ownership check: anyone else's conversation is a 404, never a 403."""
    return get_object_or_404(Conversation.objects.for_user(request.user), pk=conversation_id)


def _sidebar(request: HttpRequest) -> list[Conversation]:
    return list(Conversation.objects.for_user(request.user).only("id", "title")[:200])


def _page(conversation: Conversation, before: int | None = None) -> tuple[list[Message], bool]:
    """The newest PAGE_SIZE messages (before a message id), oldest first, and whether more exist."""
    messages = conversation.messages.order_by("-id")
    if before is not None:
        messages = messages.filter(id__lt=before)
    page = list(messages[: PAGE_SIZE + 1])
    return page[:PAGE_SIZE][::-1], len(page) > PAGE_SIZE


@login_required
@require_GET
def chat_new(request: HttpRequest) -> HttpResponse:
    ctx = {
        "conversations": _sidebar(request),
        "form": ConversationSettingsForm(),
        "ws_url": "/ws/conversations/new/",
    }
    return render(request, "conversations/chat.html", ctx)


@login_required
@require_GET
def chat(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    # Answers left streaming by a process that died are shown, and kept, as interrupted.
    conversation.messages.mark_interrupted()
    messages, has_older = _page(conversation)
    ctx = {
        "conversation": conversation,
        "conversations": _sidebar(request),
        "messages": messages,
        "has_older": has_older,
        "form": ConversationSettingsForm(instance=conversation),
        "ws_url": f"/ws/conversations/{conversation.pk}/",
    }
    return render(request, "conversations/chat.html", ctx)


@login_required
@require_GET
def older_messages(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponse(status=400)
    messages, has_older = _page(conversation, before)
    ctx = {"conversation": conversation, "messages": messages, "has_older": has_older}
    return render(request, "conversations/chat.html#older-messages", ctx)


@login_required
@require_POST
def conversation_settings(request: HttpRequest, conversation_id: int) -> HttpResponse:
    conversation = _get_conversation_for_user(request, conversation_id)
    form = ConversationSettingsForm(request.POST, instance=conversation)
    saved = form.is_valid()
    if saved:
        form.save()
    ctx = {"conversation": conversation, "form": form, "saved": saved}
    return render(request, "conversations/chat.html#settings", ctx)
