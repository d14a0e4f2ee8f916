from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("uploads.urls")),
    path("", include("moderation.urls")),
    path("", include("teams.urls")),
    path("", include("api.urls")),
    path("", include("conversations.urls")),
]
