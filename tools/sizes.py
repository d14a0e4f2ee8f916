"""The largest classes, functions and modules of the apps, by lines: `python -m tools.sizes`.

The project keeps classes under ~250 lines, functions under ~60 and modules under ~500
(migrations and settings aside); this lists what comes nearest."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APPS = ["kimichat", "kimi", "realtime", "accounts", "teams", "uploads", "conversations", "api"]
APPS += ["moderation"]


def sources() -> list[Path]:
    found = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts and path.name != "settings.py":
                found.append(path)
    return found


def sizes(paths: list[Path]) -> tuple[list, list, list]:
    classes, functions, modules = [], [], []
    for path in paths:
        text = path.read_text()
        where = path.relative_to(ROOT)
        modules.append((len(text.splitlines()), str(where)))
        for node in ast.walk(ast.parse(text, str(path))):
            length = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            name = f"{where}:{getattr(node, 'lineno', 0)} {getattr(node, 'name', '')}"
            if isinstance(node, ast.ClassDef):
                classes.append((length, name))
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions.append((length, name))
    return classes, functions, modules


def main() -> None:
    top = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for label, found in zip(("classes", "functions", "modules"), sizes(sources()), strict=True):
        print(f"Largest {label}:")
        for length, name in sorted(found, reverse=True)[:top]:
            print(f"  {length:5}  {name}")


if __name__ == "__main__":
    main()
