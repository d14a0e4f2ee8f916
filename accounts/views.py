from allauth.account import views as allauth_views
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.forms import DeleteAccountForm, PreferencesForm
from accounts.models import Preferences
from accounts.services import account_delete, sessions_end_all


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The Account page: password, e-mail, language, two-factor, sessions, deletion."""
    user = request.user
    sessions = UserSession.objects.purge_and_list(user)
    return render(
        request,
        "accounts/account.html",
        {
            "sessions": sessions,
            "email_configured": bool(settings.EMAIL),
            "totp": Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists(),
            "delete_form": DeleteAccountForm(user=user),
        },
    )


@login_required
@require_POST
def sign_out_everywhere(request: HttpRequest) -> HttpResponse:
    sessions_end_all(request=request, user=request.user)
    return redirect("login")


@login_required
def delete_account(request: HttpRequest) -> HttpResponse:
    user = request.user
    form = DeleteAccountForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        logout(request)
        account_delete(user=user)
        messages.success(request, _("Your account and its data are deleted."))
        return redirect("login")
    return render(request, "accounts/delete.html", {"form": form})


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """Issue 14's Preferences: theme and how a new chat starts."""
    form = PreferencesForm(
        request.POST or None, instance=Preferences.objects.for_user(request.user)
    )
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("Preferences saved."))
        back = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
            return redirect(back)
        return redirect("preferences")
    return render(request, "accounts/preferences.html", {"preferences_form": form})


def password_reset(request: HttpRequest) -> HttpResponse:
    """ "Forgot password?": only where e-mail is configured (else an administrator resets it)."""
    if not settings.EMAIL:
        raise Http404
    return allauth_views.password_reset(request)
