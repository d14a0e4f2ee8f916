from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("", include("uploads.urls")),
    path("", include("moderation.urls")),
    path("", include("teams.urls")),
    path("", include("conversations.urls")),
]
