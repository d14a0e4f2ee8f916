"""The conversation list: a page at a time, newest first, only one's own."""

from django.test import Client

from conversations.models import Conversation


def test_the_list_comes_a_page_at_a_time(alice, bob):
    for n in range(55):
        Conversation.objects.create(owner=alice, title=f"Chat {n}")
    Conversation.objects.create(owner=bob, title="Bob's")
    client = Client()
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert "Chat 54" in page and "Chat 5<" in page and "Chat 4<" not in page
    last_shown = Conversation.objects.get(title="Chat 5")
    assert f'hx-get="/conversations/?after={last_shown.pk}"' in page
    more = client.get(f"/conversations/?after={last_shown.pk}").content.decode()
    assert all(f"Chat {n}<" in more for n in range(5)) and "Chat 5<" not in more
    assert "Bob's" not in more and "hx-get" not in more  # the end
    bobs = Conversation.objects.get(title="Bob's")
    assert client.get(f"/conversations/?after={bobs.pk}").status_code == 400
    assert client.get("/conversations/?after=x").status_code == 400
