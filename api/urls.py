from django.urls import path

from api import gateway, views

urlpatterns = [
    path("api-keys/", views.keys, name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", views.key_revoke, name="api-key-revoke"),
    path("api-keys/code/", views.code, name="api-code"),
    # The OpenAI-compatible API, at the paths the openai SDK asks for under base_url ".../v1".
    path("v1/chat/completions", gateway.chat_completions, name="api-chat-completions"),
    path("v1/models", gateway.models, name="api-models"),
]
