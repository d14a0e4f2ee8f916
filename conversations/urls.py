from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.chat_new, name="chat-new"),
    path("c/<int:conversation_id>/", views.chat, name="chat"),
    path("c/<int:conversation_id>/messages/", views.older_messages, name="older-messages"),
    path("c/<int:conversation_id>/rename/", views.conversation_rename, name="conversation-rename"),
    path("c/<int:conversation_id>/delete/", views.conversation_delete, name="conversation-delete"),
    path(
        "c/<int:conversation_id>/export.md", views.conversation_export, name="conversation-export"
    ),
    path("c/<int:conversation_id>/share/", views.conversation_share, name="conversation-share"),
    path("shared/<int:conversation_id>/", views.conversation_shared, name="conversation-shared"),
    path("shared/<int:conversation_id>/copy/", views.conversation_copy, name="conversation-copy"),
    path("search/", views.search, name="search"),
    path("conversations/", views.conversation_page, name="conversation-page"),
    path("archived/", views.archived, name="archived"),
    path("c/<int:conversation_id>/pin/", views.conversation_pin, name="conversation-pin"),
    path(
        "c/<int:conversation_id>/archive/", views.conversation_archive, name="conversation-archive"
    ),
    path(
        "c/<int:conversation_id>/settings/",
        views.conversation_settings,
        name="conversation-settings",
    ),
]
