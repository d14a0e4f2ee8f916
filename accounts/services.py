"""Writes that end sessions or an account."""

from collections.abc import Callable

from allauth.usersessions.models import UserSession
from django.contrib.admin.utils import NestedObjects
from django.db import models, router, transaction
from django.http import HttpRequest

from realtime import live


def sessions_end_all(*, request: HttpRequest, user) -> int:
    """Sign the user out everywhere, this browser too; the number of sessions ended.
    Each signed-in session is known to django-allauth's session list (it records every
    request's session), so ending those ends them all."""
    from allauth.usersessions.internal.flows.sessions import end_sessions

    sessions = list(UserSession.objects.filter(user_id=user.pk))
    if request.session.session_key and not any(s.is_current() for s in sessions):
        # This browser's own session, should it not be listed yet.
        request.session.flush()
    end_sessions(request, sessions)
    live.users_signed_out([user.pk])
    return len(sessions)


# What the apps above keep of an account before it goes (the files it put in teams'
# libraries): each says so from its AppConfig.ready, since this app sits below them.
_keepers: list[Callable[..., None]] = []


def keeps_before_account_delete(keeper: Callable[..., None]) -> None:
    _keepers.append(keeper)


def account_delete(*, user) -> None:
    """Delete the account and everything that goes with it (conversations, files, the files'
    stored bytes, memberships), but for the files it put in teams' libraries, which the teams
    keep; the usage ledger keeps its rows, without the person."""
    user_id = user.pk
    using = router.db_for_write(type(user))
    with transaction.atomic(using=using):
        # Team files stay the team's (handed to an owner of it), as when a member leaves.
        for keep in _keepers:
            keep(user=user)
        _delete(user, using)
    # Open pages close their sockets.
    live.users_signed_out([user_id])


def _delete(user, using: str) -> None:
    collector = NestedObjects(using=using)
    collector.collect([user])
    stored = [
        getattr(obj, field.name)
        for model, objs in collector.data.items()
        for field in model._meta.fields
        if isinstance(field, models.FileField)
        for obj in objs
        if getattr(obj, field.name)
    ]
    for session in UserSession.objects.filter(user_id=user.pk):
        session._session_store(session.session_key).delete()
    user.delete()
    # Bytes go once the rows are surely gone (a failed delete keeps its files).
    transaction.on_commit(lambda: [f.storage.delete(f.name) for f in stored], using=using)
