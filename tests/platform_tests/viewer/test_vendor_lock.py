"""The fetched viewer libraries are exactly what the pages load: every package in
frontend_static/vendor/vendor.lock.json is referenced by a template, and every vendor
script a template loads is fetched by the lock. Also: every static script a template loads
exists, and the case page's ES modules import only files that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
LOCK = REPO / "frontend_static" / "vendor" / "vendor.lock.json"
TEMPLATES = REPO / "platform" / "lesionloop" / "viewer" / "templates"
CASE_JS = REPO / "frontend_static" / "js" / "case"
STATIC_REF = re.compile(r"""{% static '([^']+)' %}""")
IMPORT = re.compile(r"""^import\s[^;]*?from\s+"(\./[^"]+)";""", re.M)


def static_refs() -> set[str]:
    refs: set[str] = set()
    for html in TEMPLATES.rglob("*.html"):
        refs.update(STATIC_REF.findall(html.read_text()))
    return refs


def test_every_locked_package_is_loaded_by_a_page() -> None:
    packages = json.loads(LOCK.read_text())["packages"]
    loaded = {ref.split("/")[1] for ref in static_refs() if ref.startswith("vendor/")}
    assert set(packages) == loaded, f"fetched but never loaded: {set(packages) - loaded}"


def test_every_vendor_file_a_page_loads_is_fetched() -> None:
    packages = json.loads(LOCK.read_text())["packages"]
    for ref in (r for r in static_refs() if r.startswith("vendor/")):
        _, name, filename = ref.split("/", 2)
        assert name in packages, ref
        assert filename in {Path(f).name for f in packages[name]["files"]}, ref


def test_our_static_files_exist() -> None:
    missing = [
        r
        for r in static_refs()
        if not r.startswith("vendor/") and not (REPO / "frontend_static" / r).is_file()
    ]
    assert missing == []


def test_case_modules_import_existing_files_and_stay_short() -> None:
    modules = sorted(CASE_JS.glob("*.js"))
    assert modules
    for module in modules:
        text = module.read_text()
        for rel in IMPORT.findall(text):
            assert (module.parent / rel).is_file(), f"{module.name} imports {rel}"
        assert len(text.splitlines()) <= 400, f"{module.name} is over 400 lines"
