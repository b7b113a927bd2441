"""The production static storage rewrites the case viewer's ES module imports to hashed
names (collectstatic's post-processing, on a copy of frontend_static/js/case/)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from django.core.files.storage import FileSystemStorage

from lesionloop.core.staticfiles import ModuleAwareStaticFilesStorage

CASE = Path(__file__).resolve().parents[3] / "frontend_static" / "js" / "case"


def test_module_imports_point_at_hashed_files(tmp_path: Path) -> None:
    (tmp_path / "js" / "case").mkdir(parents=True)
    names = []
    for module in sorted(CASE.glob("*.js")):
        shutil.copy(module, tmp_path / "js" / "case" / module.name)
        names.append(f"js/case/{module.name}")
    storage = ModuleAwareStaticFilesStorage(location=str(tmp_path), base_url="/static/")
    source = FileSystemStorage(location=str(tmp_path))
    for name, _hashed, processed in storage.post_process({n: (source, n) for n in names}):
        assert not isinstance(processed, Exception), (name, processed)
    main = (tmp_path / storage.stored_name("js/case/main.js")).read_text()
    imported = re.findall(r'from "(\./[^"]+)"', main)
    assert imported, "main.js imports nothing?"
    for rel in imported:
        # "./store.js" -> "./store.<12 hex>.js", and that file exists.
        assert re.fullmatch(r"\./[a-z-]+\.[0-9a-f]{12}\.js", rel), rel
        assert (tmp_path / "js" / "case" / rel[2:]).is_file(), rel
