"""What is sent upstream for one answer: system prompt, then the history, oldest first."""

from conversations.models import Conversation, Message


def build_messages(*, conversation: Conversation, answer: Message) -> list[dict]:
    messages = []
    if conversation.system_prompt.strip():
        messages.append({"role": "system", "content": conversation.system_prompt})
    history = (
        conversation.messages.for_context().filter(id__lt=answer.id).values_list("role", "content")
    )
    messages.extend({"role": role, "content": content} for role, content in history)
    return messages
