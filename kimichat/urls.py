from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

# Browsers ask for /favicon.ico where a page names no icon (the admin's, a file's download).
favicon = RedirectView.as_view(url=lazy(static, str)("img/kimichat.svg"), permanent=True)

# The admin's pages say whose they are (not "Django administration").
admin.site.site_header = admin.site.site_title = "KimiChat"

urlpatterns = [
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("uploads.urls")),
    path("", include("moderation.urls")),
    path("", include("teams.urls")),
    path("", include("api.urls")),
    path("", include("conversations.urls")),
]
