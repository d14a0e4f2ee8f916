from django.urls import path

from moderation import views

urlpatterns = [
    path("report/", views.message_report, name="message-report"),
]
