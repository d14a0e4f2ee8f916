"""What moderators do: keyword-only `<entity>_<action>` functions.

Each moderation action is recorded in the moderation log, and reaches running parts of the
app (open pages, answers being written, in any process) through the channel layer."""

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Approval
from conversations.models import Conversation, Message
from moderation.models import ModerationAction, Report
from realtime import live


def action_log(*, actor, kind: str, target, reason: str = "") -> ModerationAction:
    return ModerationAction.objects.create(
        actor=actor,
        kind=kind,
        target_type=target._meta.model_name,
        target_id=target.pk,
        target=_named(target),
        reason=reason,
    )


def _named(target) -> str:
    # A conversation's title is its owner's words: the log, which outlives the conversation
    # and is read by moderators who may not read transcripts, names it by number only.
    if isinstance(target, Conversation):
        return f"Conversation {target.pk}"
    return str(target)[:300]


def _change(rows: list, changes: dict, *, actor, kind: str, reason: str) -> int:
    """Apply `changes` to the rows and log the action once for each."""
    if rows:
        with transaction.atomic():
            type(rows[0]).objects.filter(pk__in=[r.pk for r in rows]).update(**changes)
            for row in rows:
                action_log(actor=actor, kind=kind, target=row, reason=reason)
    return len(rows)


def conversations_hide(*, actor, conversations: QuerySet, reason: str = "") -> int:
    """Remove conversations, and every copy made of them ("Continue in my own copy"), from
    their owners' view and from what is sent to Kimi; pages showing them are told at once,
    and an answer being written is stopped."""
    chosen = list(conversations)
    hidden = [c for c in chosen + _copies(chosen) if c.hidden_at is None]
    Kind = ModerationAction.Kind
    _change(hidden, {"hidden_at": timezone.now()}, actor=actor, kind=Kind.HIDE, reason=reason)
    live.stop_answers(c.pk for c in hidden)
    live.conversations_hidden([c.pk for c in hidden], owners={c.pk: c.owner_id for c in hidden})
    return len(hidden)


def conversations_unhide(*, actor, conversations: QuerySet, reason: str = "") -> int:
    """Show conversations again, with the copies hidden with them (at the same moment); a
    copy hidden on its own stays hidden."""
    chosen = list(conversations.exclude(hidden_at=None))
    when = {c.hidden_at for c in chosen}
    shown = chosen + [c for c in _copies(chosen) if c.hidden_at in when]
    Kind = ModerationAction.Kind
    return _change(shown, {"hidden_at": None}, actor=actor, kind=Kind.UNHIDE, reason=reason)


def _copies(conversations: list[Conversation]) -> list[Conversation]:
    """Every copy made of these conversations, and the copies of those copies."""
    found: list[Conversation] = []
    known = {c.pk for c in conversations}
    sources = list(known)
    while sources:
        more = list(Conversation.objects.filter(copied_from__in=sources).exclude(pk__in=known))
        found += more
        known |= {c.pk for c in more}
        sources = [c.pk for c in more]
    return found


def conversations_delete(*, actor, conversations: QuerySet, reason: str = "") -> int:
    doomed = list(conversations)
    live.stop_answers(c.pk for c in doomed)
    with transaction.atomic():
        for conversation in doomed:
            action_log(
                actor=actor, kind=ModerationAction.Kind.DELETE, target=conversation, reason=reason
            )
        Conversation.objects.filter(pk__in=[c.pk for c in doomed]).delete()
    return len(doomed)


def users_suspend(*, actor, users: QuerySet, reason: str = "") -> int:
    """Cut users off at once: their sessions stop working (Django refuses inactive users),
    their open sockets are closed, and their answers being written are stopped."""
    suspended = list(users.filter(is_active=True))
    Kind = ModerationAction.Kind
    _change(suspended, {"is_active": False}, actor=actor, kind=Kind.SUSPEND, reason=reason)
    live.users_suspended(user.pk for user in suspended)
    answering = Message.objects.live().filter(conversation__owner__in=suspended)
    live.stop_answers(answering.values_list("conversation_id", flat=True))
    return len(suspended)


def users_reactivate(*, actor, users: QuerySet, reason: str = "") -> int:
    inactive = list(users.filter(is_active=False))
    # A sign-up let in here is approved: suspending it later is a suspension, not a wait.
    Approval.objects.filter(user__in=inactive).approve(actor=actor)
    Kind = ModerationAction.Kind
    return _change(inactive, {"is_active": True}, actor=actor, kind=Kind.REACTIVATE, reason=reason)


def report_create(*, reporter, message: Message, reason: str) -> Report:
    """Queue a message for moderators; reporting it again updates the reason (and reopens)."""
    report, created = Report.objects.get_or_create(
        message=message, reporter=reporter, defaults={"reason": reason}
    )
    if not created:
        report.reason = reason
        report.status = Report.Status.OPEN
        report.save(update_fields=["reason", "status"])
    return report


def reports_resolve(*, actor, reports: QuerySet, note: str = "") -> int:
    changes = {
        "status": Report.Status.RESOLVED,
        "resolved_by": actor,
        "resolved_at": timezone.now(),
    }
    if note:
        changes["resolution"] = note
    open_reports = list(reports.filter(status=Report.Status.OPEN))
    return _change(
        open_reports, changes, actor=actor, kind=ModerationAction.Kind.RESOLVE, reason=note
    )


def reports_reopen(*, actor, reports: QuerySet, reason: str = "") -> int:
    changes = {"status": Report.Status.OPEN, "resolved_by": None, "resolved_at": None}
    resolved = list(reports.filter(status=Report.Status.RESOLVED))
    return _change(resolved, changes, actor=actor, kind=ModerationAction.Kind.REOPEN, reason=reason)
