import json

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
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
        return render(request, "moderation/_report_form.html", {"form": form})
    message = form.cleaned_data["message"]
    services.report_create(
        reporter=request.user, message=message, reason=form.cleaned_data["reason"]
    )
    response = render(
        request, "moderation/_report_form.html", {"form": ReportForm(user=request.user)}
    )
    done = _("Thank you. A moderator will look at this message.")
    response["HX-Trigger"] = json.dumps(
        {"kimichat:reported": {"message": message.pk, "text": done}}
    )
    return response
