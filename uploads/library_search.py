"""The `search_library` function tool: in a conversation about a team library or documents too
long to send whole, Kimi may search them again in its own words, and cite what it found.
`TOOL` is what the request offers; `library_search` answers a call. The files searched are
the ones the conversation refers to (already checked as readable by its author): a call
names words, never files, so Kimi cannot reach a file the author may not read. The answer
offers it, and shows each search, through its tool round (conversations/reader.py)."""

import json

from kimi import tools
from uploads import retrieval

NAME = tools.LIBRARY
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


def library_search(*, file_ids: list[int], arguments: str) -> tuple[str, list[dict]]:
    """A call's answer (the passages found, numbered, each with its source, as the tool
    message's content) and the sources to show under the answer. `arguments` is the call's
    JSON, as Kimi wrote it: what cannot be read is answered, not raised. Only `file_ids`
    are searched."""
    try:
        query = str(json.loads(arguments).get("query", "")).strip()
    except (ValueError, AttributeError):
        query = ""
    if not query:
        return 'No query was given: call search_library with {"query": "…"}.', []
    hits = retrieval.search(file_ids=file_ids, query=query, limit=RESULTS)
    if not hits:
        return f"No passage matches “{query}”. Try other words.", []
    parts, sources = [], []
    for number, hit in enumerate(hits, 1):
        part, source = retrieval.cited(number, hit.passage, hit.passage.file.name)
        parts.append(part)
        sources.append(source)
    return "\n\n".join(parts), sources
