"""The apps import one way, and no two files import each other (docs/how-it-works.md).

Read from the source with `ast`, every import in a file counts: at the top, inside a function or
under TYPE_CHECKING alike, so an import cannot be moved out of sight to dodge a cycle. An app
reaches one above it neither through the ORM (a lookup such as `reports__reporter`, a relation
that app declared) nor through a template (an include, or a template named in code)."""

import ast
import re
from pathlib import Path

from django.apps import apps

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
    assert "accounts.admission" in graph["conversations.checks"]


def _rank(app: str) -> int:
    return LAYERS.index(app)


def _lookups(path: Path) -> set[str]:
    """The ORM lookup paths a file spells: keyword arguments and strings such as
    `reports__reporter` (Q, F, filter, values, order_by…)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.keyword) and node.arg and "__" in node.arg.strip("_"):
            found.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if LOOKUP.fullmatch(node.value):
                found.add(node.value)
    return found


LOOKUP = re.compile(r"-?[a-z][a-z0-9_]*?(__[a-z][a-z0-9_]*)+")


def _reverse_relations() -> dict[str, str]:
    """The lookup names a relation between two apps gives the model it points to, each with
    the app that declared it: a reverse name is that app's, not the target's."""
    names = {}
    for model in apps.get_models():
        declared = model._meta.app_label
        for field in model._meta.get_fields():
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta.app_label
            if declared in LAYERS and target in LAYERS and target != declared:
                names[field.related_query_name()] = declared
    return names


def test_no_orm_lookup_reaches_an_app_above():
    reverse = _reverse_relations()
    upward = []
    for module, path in _modules().items():
        rank = _rank(module.split(".")[0])
        for lookup in sorted(_lookups(path)):
            for name in lookup.lstrip("-").split("__"):
                if name in reverse and _rank(reverse[name]) > rank:
                    upward.append(f"{module}: {lookup} ({reverse[name]})")
    assert upward == []


def test_no_model_points_at_an_app_above():
    upward = []
    for model in apps.get_models():
        declared = model._meta.app_label
        for field in model._meta.get_fields():
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta.app_label
            if declared in LAYERS and target in LAYERS and _rank(target) > _rank(declared):
                upward.append(f"{model.__name__}.{field.name} → {target}")
    assert upward == []


TEMPLATE = re.compile(r"""{%\s*(?:include|extends)\s+["']([^"']+)["']""")
TEMPLATE_NAME = re.compile(r"([a-z_]+)/[\w/.-]+\.(?:html|md|txt)")


def test_no_template_reaches_an_app_above():
    """A template of an app's (templates/<app>/…) includes or extends none of an app above
    it, and no module names one: the page an app renders is made of its own templates and
    those below."""
    upward = []
    for path in sorted((ROOT / "templates").rglob("*")):
        owner = path.relative_to(ROOT / "templates").parts[0]
        if not path.is_file() or owner not in LAYERS:
            continue
        for name in TEMPLATE.findall(path.read_text()):
            app = name.split("/")[0]
            if app in LAYERS and _rank(app) > _rank(owner):
                upward.append(f"{path.relative_to(ROOT)} includes {name}")
    for module, path in _modules().items():
        rank = _rank(module.split(".")[0])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                match = TEMPLATE_NAME.fullmatch(node.value)
                if match and match.group(1) in LAYERS and _rank(match.group(1)) > rank:
                    upward.append(f"{module} renders {node.value}")
    assert upward == []


def test_the_checks_see_the_crossings_they_judge():
    """The walks find what they look for: a lookup, a reverse relation, a template."""
    assert "reports" in _reverse_relations()
    assert "conversation__owner" in _lookups(ROOT / "conversations" / "models.py")
    chat = (ROOT / "templates" / "conversations" / "chat.html").read_text()
    assert TEMPLATE.findall(chat)
