"""The apps import one way, and no two files import each other (README, "How it works").

Read from the source with `ast`, every import in a file counts: at the top, inside a function or
under TYPE_CHECKING alike, so an import cannot be moved out of sight to dodge a cycle."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lower first: an app may import the apps before it, never one after it.
LAYERS = [
    "kimichat",
    "kimi",
    "realtime",
    "accounts",
    "teams",
    "uploads",
    "conversations",
    "api",
    "moderation",
]
# The project's wiring: the root URLconf, the ASGI application, the server's entry point and the
# templates' context name what they wire.
WIRING = {"kimichat.asgi", "kimichat.urls", "kimichat.serve", "kimichat.context_processors"}


def _modules() -> dict[str, Path]:
    modules = {}
    for app in LAYERS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules a file imports (`from a import b` counts as a.b where that is a
    module, else as a)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in modules else node.module for n in names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] in LAYERS)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_apps_import_only_the_apps_below_them():
    upward = []
    for module, imported in _graph().items():
        if module in WIRING:
            continue
        rank = LAYERS.index(module.split(".")[0])
        upward += [
            f"{module} imports {name}"
            for name in sorted(imported)
            if LAYERS.index(name.split(".")[0]) > rank
        ]
    assert upward == []


def test_no_two_files_import_each_other_even_through_others():
    graph = _graph()
    cycles = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append(" → ".join([*path[path.index(module) :], module]))
            return
        if module in done:
            return
        for name in sorted(graph.get(module, ())):
            visit(name, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


SPELLED = [
    *('"chat.tokens"', '"chat.html"', '"conversation.hidden"', '"account.suspended"'),
    *('"file.changed"', '-control"', 'f"files-', 'f"user-', '"stop"}', '"type": "resend"'),
]


def test_nothing_reaches_the_live_protocol_but_through_kimichat_live():
    """Group names and event types are spelled in one module: no app builds them itself."""
    spelled = []
    for name, path in _modules().items():
        if name == "realtime.live":
            continue
        text = path.read_text()
        for literal in SPELLED:
            if literal in text:
                spelled.append(f"{name}: {literal}")
    assert spelled == []


def test_the_walk_sees_the_imports_it_judges():
    """A check that finds nothing because it reads nothing would pass too."""
    graph = _graph()
    assert "conversations.services" in graph["conversations.consumers"]
    assert "realtime.live" in graph["moderation.services"]
    assert "accounts.models" in graph["conversations.services"]
