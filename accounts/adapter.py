"""KimiChat's access policy, where django-allauth asks for it: who may sign up (SIGNUP), what a
new account is (the first one the administrator, later ones waiting for approval), what a
refused or waiting person is told."""

from typing import Any

from allauth.account import app_settings as allauth_settings
from allauth.account.adapter import DefaultAccountAdapter, get_adapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from accounts.models import Approval
from realtime import live

# The pages whose new password keeps the session it was made in (django-allauth's).
KEEPS_SESSION = {"account_change_password", "account_set_password"}

# The group of moderators (made by moderation's migrations), known here by its name.
MODERATORS = "Moderators"


def admit(user, *, vouched: bool = False) -> None:
    """Set what a new, unsaved account may do: the first account of an empty install runs it;
    under SIGNUP=approval the others wait (inactive) until a moderator lets them in, unless
    vouched for (an allowed domain of single sign-on)."""
    if not get_user_model().objects.exists():
        user.is_staff = user.is_superuser = True
    elif settings.SIGNUP == "approval" and not vouched:
        user.is_active = False


def request_approval(user) -> None:
    """After saving: an inactive new account is a request in the admin's queue."""
    if not user.is_active:
        Approval.objects.get_or_create(user=user)


def signup_open() -> bool:
    """Whether anyone may sign up (SIGNUP=open or approval). An empty install always lets its
    first person in: they become the administrator."""
    if not get_user_model().objects.exists():
        return True
    return settings.SIGNUP in {"open", "approval"}


def domain_allowed(sociallogin: Any) -> bool:
    """Whether single sign-on vouches for this person by their e-mail's domain."""
    email = (sociallogin.user.email or "").lower()
    return bool(email) and email.rpartition("@")[2] in settings.OIDC_ALLOWED_DOMAINS


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return signup_open()

    def vouched(self, request: HttpRequest) -> bool:
        """Whether this sign-up skips approval (teams/access.py: an invitation)."""
        return False

    @transaction.atomic
    def save_user(self, request: HttpRequest, user, form, commit: bool = True):
        user = super().save_user(request, user, form, commit=False)
        admit(user, vouched=self.vouched(request))
        if commit:
            user.save()
            request_approval(user)
        return user

    def get_password_change_redirect_url(self, request: HttpRequest) -> str:
        # Back to the Account page, where the change is confirmed (not the form again).
        return reverse("account")

    def logout(self, request: HttpRequest) -> None:
        """Log out (the log-out page, and every flow that logs out): the sockets of the
        browser session that ends close with it."""
        session_key = request.session.session_key
        super().logout(request)
        if session_key:
            live.sessions_ended([session_key])

    def set_password(self, user, password: str) -> None:
        """A new password (changed, set, or reset) ends every other session of the user
        (Django no longer takes them): their open sockets close too. The session that
        changed or set it stays signed in, with its sockets; a reset keeps none."""
        super().set_password(user, password)
        request = self.request
        keep = None
        if (
            request is not None
            and request.user.pk == user.pk
            and getattr(request.resolver_match, "url_name", "") in KEEPS_SESSION
            and not allauth_settings.LOGOUT_ON_PASSWORD_CHANGE
        ):
            keep = request.session.session_key
        live.users_signed_out([user.pk], keep=keep)

    def respond_user_inactive(self, request: HttpRequest, user) -> HttpResponse:
        # Shown at once (not after a redirect): who waits for approval is told so, who was
        # suspended is told that. Only reached with the right password.
        pending = Approval.objects.pending().filter(user=user).exists()
        return render(
            request,
            "account/account_inactive.html",
            {"pending": pending, "will_be_told": bool(settings.EMAIL and user.email)},
        )

    def send_approved_mail(self, user, *, login_url: str) -> None:
        """Tell a person their account was approved (when both e-mail and an address exist)."""
        if settings.EMAIL and user.email:
            context = {"user": user, "login_url": login_url}
            self.send_mail("accounts/email/approved", user.email, context)


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    def end_sessions(self, sessions) -> None:
        """Sessions ended from another ("Sign out everywhere", the list of sessions): their
        open sockets close too."""
        keys = [session.session_key for session in sessions]
        super().end_sessions(sessions)
        live.sessions_ended(keys)


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Single sign-on (OIDC): who gets an account at first log-in, and what the provider's
    groups make of it at every log-in."""

    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        # People of the allowed domains get an account whatever SIGNUP says; with such a list,
        # no one else does through single sign-on.
        if settings.OIDC_ALLOWED_DOMAINS:
            return domain_allowed(sociallogin)
        return get_adapter(request).is_open_for_signup(request)

    def vouched(self, request: HttpRequest, sociallogin: Any) -> bool:
        """Whether this sign-up skips approval: an allowed domain (teams/access.py: or an
        invitation)."""
        return bool(settings.OIDC_ALLOWED_DOMAINS)

    def populate_user(self, request: HttpRequest, sociallogin: Any, data: dict):
        user = super().populate_user(request, sociallogin, data)
        # The provider's username may be a local account's: then one is made up from the
        # e-mail or name instead (an account is never taken over by its name).
        taken = get_user_model().objects.filter(username__iexact=user.username)
        if user.username and taken.exists():
            user.username = ""
        return user

    @transaction.atomic
    def save_user(self, request: HttpRequest, sociallogin: Any, form=None):
        admit(sociallogin.user, vouched=self.vouched(request, sociallogin))
        user = super().save_user(request, sociallogin, form)
        request_approval(user)
        self.apply_groups(user, self.groups(sociallogin))
        return user

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        super().pre_social_login(request, sociallogin)
        if sociallogin.is_existing:
            self.apply_groups(sociallogin.user, self.groups(sociallogin))

    @staticmethod
    def groups(sociallogin: Any) -> list[str] | None:
        """The provider's groups for this person (OIDC_GROUPS_CLAIM); None without the claim."""
        if not settings.OIDC_GROUPS_CLAIM:
            return None
        # django-allauth keeps the userinfo answer and the ID token's claims apart.
        data = sociallogin.account.extra_data
        claimed = None
        for source in (data.get("userinfo") or {}, data.get("id_token") or {}):
            claimed = source.get(settings.OIDC_GROUPS_CLAIM, claimed)
            if claimed is not None:
                break
        if claimed is None:
            return None
        if isinstance(claimed, str):
            claimed = [claimed]
        return [str(g).strip() for g in claimed if str(g).strip()]

    def apply_groups(self, user, groups: list[str] | None) -> None:
        """OIDC_MODERATOR_GROUP decides who moderates: in the group, in KimiChat's Moderators
        (and staff, to reach the admin); out of it, out of them (superusers are left alone)."""
        moderator_group = settings.OIDC_MODERATOR_GROUP
        if groups is None or not moderator_group or user.is_superuser:
            return
        moderators = Group.objects.get_or_create(name=MODERATORS)[0]
        if moderator_group in groups:
            user.groups.add(moderators)
            if not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
        else:
            user.groups.remove(moderators)
