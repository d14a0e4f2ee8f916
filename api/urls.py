from django.urls import path, re_path

from api import gateway, http, responses, views

urlpatterns = [
    path("api-keys/", views.keys, name="api-keys"),
    path("api-keys/<int:key_id>/revoke/", views.key_revoke, name="api-key-revoke"),
    path("api-keys/code/", views.code, name="api-code"),
    # The OpenAI-compatible API, at the paths the openai SDK asks for under base_url ".../v1".
    path("v1/chat/completions", gateway.chat_completions, name="api-chat-completions"),
    path("v1/responses", responses.create, name="api-responses"),
    path("v1/models", gateway.models, name="api-models"),
    path("v1/models/<path:model_id>", gateway.model, name="api-model"),
    path("v1/key", gateway.key, name="api-key"),
    # Anything else under /v1 answers in OpenAI's error shape, never with a page.
    re_path(r"^v1(?:/(?P<rest>.*))?$", http.not_found),
]
