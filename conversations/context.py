"""What is sent upstream for one answer: the system prompt, each referenced document's text as a
system message of its own (Moonshot's documented pattern), then the thread up to the question
(images as parts of the message that referred to them), within the model's context window.

What comes before the question is what earlier requests sent, byte for byte, so that Kimi
serves it from its prefix cache: the system prompt and whole documents lead, in the order they
were first referred to; passages picked for one question go just before it, never ahead of
the history."""

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from conversations.models import Conversation, Message, Thread
from kimi import catalogue
from uploads import retrieval
from uploads.models import UploadedFile

REPLY_PRIMING = 3  # tokens Kimi adds to start the answer
# With documents too long to send whole: the share of the room left (after the system prompt
# and the question) that passages fill; the rest keeps recent turns of the conversation.
PASSAGES_SHARE = 0.75


@dataclass
class Request:
    model: str  # the model to call
    messages: list[dict]
    trimmed: int  # how many of the oldest messages were left out to fit
    # Where the passages sent came from, when documents were too long to send whole.
    sources: list[dict] = field(default_factory=list)
    # The files those passages were picked from (ids): the ones Kimi may search again itself
    # (uploads/library_search.py); empty when no passages were picked.
    library: list[int] = field(default_factory=list)


class TooLong(Exception):
    """The question (with the system prompt and room for the answer) fits no window."""


def build(
    *,
    conversation: Conversation,
    thread: Thread | None,
    until: int | None,
    question: str | None = None,
    files: Sequence[UploadedFile] = (),
) -> Request:
    """The request for an answer to the thread up to `until` (saved messages), followed by
    `question` and its `files` when they are not saved yet. Files that are not readable (not
    ready, deleted, no longer the owner's to read) are left out."""
    turns, documents = history(thread=thread, until=until, owner=conversation.owner)
    if question is not None:
        turns.append({"role": "user", "content": question, "images": []})
        found = readable(conversation.owner, [f.pk for f in files])
        for file in files:
            if file.pk in found:
                (turns[-1]["images"] if file.is_image else documents).append(file)
    return fit(conversation=conversation, turns=turns, documents=_unique(documents))


def history(
    *, thread: Thread | None, until: int | None, owner=None
) -> tuple[list[dict], list[UploadedFile]]:
    """The thread's messages up to and including `until`, as role/content pairs (user
    messages with the images they referred to), and the documents they referred to."""
    if thread is None or until is None:
        return [], []
    ids = [*thread.ancestors(until), until]
    rows = (
        Message.objects.filter(id__in=ids)
        .for_context()
        .order_by("id")
        .values_list("id", "role", "content")
    )
    referred: dict[int, list[UploadedFile]] = {}
    if owner is not None:
        links = Message.files.through.objects.filter(message_id__in=ids).order_by("id")
        found = readable(owner, [link.uploadedfile_id for link in links])
        for link in links:
            if link.uploadedfile_id in found:
                referred.setdefault(link.message_id, []).append(found[link.uploadedfile_id])
    turns, documents = [], []
    for message_id, role, content in rows:
        files = referred.get(message_id, [])
        documents += [f for f in files if not f.is_image]
        turns.append({"role": role, "content": content, "images": [f for f in files if f.is_image]})
    return turns, documents


def readable(owner, file_ids: Sequence[int]) -> dict[int, UploadedFile]:
    """Of these files, those sent to Kimi for `owner`'s conversation, by id: ready, and
    readable by `owner` now (not when the question was first asked: a file of a team they
    left, or of the writer of a conversation they copied, stays out). Every request is
    built through here: a message, Regenerate, Edit, Continue, a resumed answer, the API."""
    ready = UploadedFile.objects.for_user(owner).filter(status=UploadedFile.Status.READY)
    return ready.in_bulk(list(file_ids))


def _unique(files: list[UploadedFile]) -> list[UploadedFile]:
    return list({f.pk: f for f in files}.values())


def fit(
    *, conversation: Conversation, turns: list[dict], documents: Sequence[UploadedFile] = ()
) -> Request:
    """Keep the request and the answer's max tokens within the model's window: the oldest
    turns are left out first; the system prompt, the documents and the last turn (the
    question) always go. Documents too long to go whole are replaced by their passages most
    relevant to the question, just before it (the module's docstring says why)."""
    system = []
    if conversation.system_prompt.strip():
        system = [{"role": "system", "content": conversation.system_prompt}]
    model = conversation.model
    window = catalogue.context_window(model)
    budget = window - catalogue.answer_reserve(model, conversation.max_tokens)
    base = sum(_cost(m) for m in system) + _cost(turns[-1]) + REPLY_PRIMING
    papers = [{"role": "system", "content": _document(f)} for f in documents]
    sources: list[dict] = []
    library: list[int] = []
    picked: list[dict] = []  # passages picked for this question
    if papers and base + sum(_cost(m) for m in papers) > budget and budget > base:
        query = re.sub(r"@\S+", " ", turns[-1]["content"])
        room = int((budget - base) * PASSAGES_SHARE)
        selection = retrieval.select(files=list(documents), query=query, tokens=room)
        if selection is not None:
            papers, sources = [], selection.sources
            library = [f.pk for f in documents]
            picked = [{"role": "system", "content": selection.text}]
    system += papers
    costs = [_cost(m) for m in system + turns]
    fixed = sum(costs[: len(system)]) + costs[-1] + REPLY_PRIMING + sum(map(_cost, picked))
    older = costs[len(system) : -1]

    if fixed > budget:
        values = {"model": conversation.model, "tokens": f"{fixed:,}", "window": f"{window:,}"}
        if documents:
            raise TooLong(
                _(
                    "The documents referred to are too long for %(model)s: about %(tokens)s "
                    "tokens with this message, and the model takes %(window)s including the "
                    "answer. Pick a model with a larger context window, or refer to fewer "
                    "documents."
                )
                % values
            )
        raise TooLong(
            _(
                "This message is too long for %(model)s: about %(tokens)s tokens, and the "
                "model takes %(window)s including the answer. Shorten it, or pick a model "
                "with a larger context window."
            )
            % values
        )
    start, total = 0, fixed + sum(older)
    while total > budget:
        total -= older[start]
        start += 1
    # A history starts with a question, never with an answer to a question left out.
    while start < len(older) and turns[start]["role"] == Message.Role.ASSISTANT:
        total -= older[start]
        start += 1
    sees = catalogue.accepts_images(model)
    messages = system + [_message(turn, sees) for turn in turns[start:]]
    messages[-1:-1] = picked
    return Request(model=model, messages=messages, trimmed=start, sources=sources, library=library)


def _document(file: UploadedFile) -> str:
    return f"Document “{file.name}” (attached by the user):\n\n{file.text}"


def _cost(message: dict) -> int:
    images = len(message.get("images", ()))
    return catalogue.estimate_tokens(message["content"]) + catalogue.IMAGE_TOKENS * images


def _message(turn: dict, sees_images: bool) -> dict:
    """A turn as Kimi takes it: images become parts of the message (a list, not a string),
    or, for a model without sight (picked after they were sent), a note of their names."""
    images = turn.get("images")
    if not images:
        return {"role": turn["role"], "content": turn["content"]}
    if not sees_images:
        names = ", ".join(f"“{f.name}”" for f in images)
        return {"role": turn["role"], "content": f"{turn['content']}\n\n[Images: {names}]"}
    parts = [{"type": "image_url", "image_url": {"url": _data_url(f)}} for f in images]
    return {"role": turn["role"], "content": [*parts, {"type": "text", "text": turn["content"]}]}


def _data_url(file: UploadedFile) -> str:
    with file.file.open("rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return f"data:{file.content_type};base64,{data}"
