"""Static files storage for production: whitenoise's compressed, hashed storage that also
rewrites the viewer's ES module imports (``import ... from "./store.js"``) to the hashed
names, so that a page never mixes a new module with a stale cached one after a deploy."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class ModuleAwareStaticFilesStorage(CompressedManifestStaticFilesStorage):
    # Django's ManifestStaticFilesStorage rewrites JS import/export paths only when asked.
    support_js_module_import_aggregation = True
