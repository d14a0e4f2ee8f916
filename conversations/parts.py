"""The parts of an answer that stream, each declared once: what Kimi thinks, then the answer.

A part streams in frames of its own, with its own offsets (realtime/live.py's tokens event
names it), is saved about once a second in a field of Message, is sent again to a page that
catches up, goes on where it stopped when another process takes the answer over, and is
shown, copied and exported. Everything that handles an answer's text reads this list, so
adding a part is one entry here, its field on Message (with a migration) and its templates:
`conversations/parts/<name>.html` on the page, `<name>.md` in the export."""

from dataclasses import dataclass
from typing import Any, Final

from kimi import catalogue


@dataclass(frozen=True)
class Part:
    # In frames, in a page's catch-up ("<message id>:<name>") and on the page: the element
    # #msg-<id>-<name>, marked data-part="<name>", that its text streams into.
    name: str
    # The Message field its text is saved in; `also` are saved, and copied, with it.
    field: str
    # Where it comes in a streamed chunk from Kimi: the field of the chunk's delta.
    delta: str
    also: tuple[str, ...] = ()
    # Handed back to Kimi, in partial mode, as the start of its reply when the answer goes
    # on (Continue, a takeover): only the answer is (its thinking goes beside it, as
    # `reasoning_content`: partial_reply).
    goes_on: bool = False

    @property
    def template(self) -> str:
        return f"conversations/parts/{self.name}.html"

    @property
    def export_template(self) -> str:
        return f"conversations/parts/{self.name}.md"


THINKING: Final = Part(
    "thinking", field="thinking", delta="reasoning_content", also=("thinking_seconds",)
)
BODY: Final = Part("body", field="content", delta="content", goes_on=True)
# What Kimi's tools do ("Searching: …", "Reading: …"), a line each: written by the tool round
# (conversations/reader.py), not by Kimi's stream.
STEPS: Final = Part("steps", field="tool_steps", delta="")

# In the order they stream, are sent and are shown: what Kimi thinks comes first.
PARTS: Final = (THINKING, STEPS, BODY)
BY_NAME: Final = {part.name: part for part in PARTS}


def texts(message: Any) -> dict[str, str]:
    """A message's parts as saved: field → text."""
    return {part.field: getattr(message, part.field) for part in PARTS}


def copied(message: Any) -> dict[str, Any]:
    """What a copy of the message takes of its parts: each part's field and those beside it."""
    return {name: getattr(message, name) for part in PARTS for name in (part.field, *part.also)}


def partial_reply(message: Any) -> dict[str, Any]:
    """The answer so far as the start of Kimi's reply (Kimi's partial mode), to go on from;
    on a model that thinks, with what it thought before those words (Kimi goes on from both:
    a thinking model is asked to have them together)."""
    text = "".join(getattr(message, part.field) for part in PARTS if part.goes_on)
    reply: dict[str, Any] = {"role": "assistant", "content": text, "partial": True}
    if message.thinking and catalogue.thinking(message.model) != "never":
        reply["reasoning_content"] = message.thinking
    return reply
