"""The apps of platform/lesionloop/ form layers: an app imports only apps below it.

Every module of every app is parsed (imports at module level and inside functions).
Entry points (API views, actors, management commands, pages) may also call the loop.
The few read-side exceptions that remain are listed in ``KNOWN`` with their reason;
a new upward import fails, and so does an entry of ``KNOWN`` that is no longer needed.
See docs/ARCHITECTURE.md, "Layers".
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "platform" / "lesionloop"

LAYERS = [
    "core",
    "accounts",
    "audit",
    "registry",
    "studies",
    "review",
    "training",
    "pacs",
    "loop",
    "viewer",
]
RANK = {app: i for i, app in enumerate(LAYERS)}
# Project-level modules (settings, urls, wsgi) sit above every app.
PROJECT = {"settings", "urls", "api_urls", "wsgi", "asgi"}
ENTRY_POINTS = ("tasks.py", "api/", "management/", "views.py", "admin.py", "urls.py")

# (importing module, imported app) -> why it is still allowed. Reads only, never a service.
KNOWN: dict[tuple[str, str], str] = {
    ("audit/api/serializers.py", "studies"): "model-version reference serializer",
    ("audit/api/views.py", "studies"): "study lookup and worklist pagination",
    ("registry/selectors.py", "studies"): "lineage lists the studies a version touched",
    ("studies/selectors.py", "review"): "training cases read the approvals",
    ("studies/api/serializers.py", "review"): "study detail shows the current revision",
    ("studies/management/commands/export_study.py", "review"): "the exporters",
}


def _imported_apps(path: Path) -> set[str]:
    """The lesionloop apps a module imports (absolute or relative, anywhere in it)."""
    module = path.relative_to(ROOT.parent).with_suffix("").parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module[: len(module) - node.level]
                names = [".".join([*base, *(node.module or "").split(".")]).rstrip(".")]
                if not node.module:
                    names = [".".join([*base, alias.name]) for alias in node.names]
            else:
                names = [node.module or ""]
        for name in names:
            parts = name.split(".")
            if parts[0] == "lesionloop" and len(parts) > 1:
                found.add(parts[1])
    return found


def _violations() -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for app in LAYERS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            inner = rel.split("/", 1)[1]
            entry = inner.startswith(ENTRY_POINTS) or inner in ENTRY_POINTS
            for other in _imported_apps(path):
                if other == app:
                    continue
                if other in PROJECT:
                    out[(rel, other)] = "imports the project (settings through django.conf)"
                    continue
                if other not in RANK:
                    out[(rel, other)] = f"unknown app {other!r}: add it to LAYERS"
                    continue
                if RANK[other] < RANK[app] or (entry and other == "loop"):
                    continue
                out[(rel, other)] = f"{app} imports the higher layer {other}"
    return out


def test_every_app_is_in_a_layer() -> None:
    apps = {p.parent.name for p in ROOT.glob("*/apps.py")}
    assert apps == set(LAYERS)


def test_apps_import_only_lower_layers() -> None:
    found = _violations()
    new = {key: why for key, why in found.items() if key not in KNOWN}
    assert not new, "upward imports (see docs/ARCHITECTURE.md, Layers):\n" + "\n".join(
        f"  {module} -> {app}: {why}" for (module, app), why in sorted(new.items())
    )


def test_known_exceptions_are_still_needed() -> None:
    stale = sorted(set(KNOWN) - set(_violations()))
    assert not stale, f"remove from KNOWN, no longer imported: {stale}"


def test_services_never_climb() -> None:
    """No exception for services: a hand-over that climbs a layer lives in ``loop``."""
    services = [key for key in KNOWN if "services" in key[0]]
    assert services == []
