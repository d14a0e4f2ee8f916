"""The `search_library` function tool: in a conversation about a team library or documents too
long to send whole, Kimi may search them again in its own words, and cite what it found.
`TOOL` is what the request offers; `library_search` answers a call. The files searched are
the ones the conversation refers to (already checked as readable by its author): a call
names words, never files, so Kimi cannot reach a file the author may not read."""

import json

from uploads import retrieval
from uploads.models import UploadedFile

NAME = "search_library"
RESULTS = 8  # passages for one search: about 3,000 tokens of English
TOOL = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": (
            "Search the documents of this conversation (a team library, or documents too long "
            "to read whole) for passages relevant to a query. Use your own words; search again "
            "with other words when the passages do not answer. Cite passages by their number "
            "and source."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What to look for, in words the documents would use.",
                }
            },
            "required": ["query"],
        },
    },
}


def library_search(*, files: list[UploadedFile], arguments: str) -> tuple[str, list[dict]]:
    """A call's answer (the passages found, numbered, each with its source, as the tool
    message's content) and the sources to show under the answer. `arguments` is the call's
    JSON, as Kimi wrote it: what cannot be read is answered, not raised."""
    try:
        query = str(json.loads(arguments).get("query", "")).strip()
    except (ValueError, AttributeError):
        query = ""
    if not query:
        return 'No query was given: call search_library with {"query": "…"}.', []
    hits = retrieval.search(file_ids=[f.pk for f in files], query=query, limit=RESULTS)
    if not hits:
        return f"No passage matches “{query}”. Try other words.", []
    parts, sources = [], []
    for number, hit in enumerate(hits, 1):
        part, source = retrieval.cited(number, hit.passage, hit.passage.file.name)
        parts.append(part)
        sources.append(source)
    return "\n\n".join(parts), sources
