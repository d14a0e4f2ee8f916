import json

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from kimichat.http import AuthenticatedRequest
from moderation import services
from moderation.forms import ReportForm


@login_required
@require_POST
def message_report(request: AuthenticatedRequest) -> HttpResponse:
    """A user reports a message they can read: it joins the moderators' queue. Answers the
    chat page's report dialog with its form (errors, or blank again) and, once taken, an
    event that closes the dialog and says so."""
    form = ReportForm(request.POST, user=request.user)
    if not form.is_valid():
        return render(request, "conversations/_report_form.html", {"form": form})
    message = form.cleaned_data["message"]
    services.report_create(
        reporter=request.user, message=message, reason=form.cleaned_data["reason"]
    )
    response = render(
        request, "conversations/_report_form.html", {"form": ReportForm(user=request.user)}
    )
    done = _("Thank you. A moderator will look at this message.")
    response["HX-Trigger"] = json.dumps(
        {"kimichat:reported": {"message": message.pk, "text": done}}
    )
    return response


def admin_login(request: HttpRequest, extra_context: object = None) -> HttpResponse:
    """The admin has no log-in form of its own: its page (GET or POST) sends people to the one
    front door, django-allauth's, where log-in throttling, two-factor and suspension hold. A
    staff member already in goes on to where they were going; anyone else signed in is
    refused, not asked to log in as someone else."""
    target = request.GET.get(REDIRECT_FIELD_NAME, "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("admin:index")
    if request.user.is_authenticated:
        if request.user.is_active and request.user.is_staff:
            return redirect(target)
        raise PermissionDenied
    return redirect_to_login(target, settings.LOGIN_URL)
