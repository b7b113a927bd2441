/* The mask and its revisions: loading, saving with If-Match, and the stale-revision
 * conflict (the dialog names who saved what; my edits can be replayed on their mask).
 * The conflict logic itself is pure (conflict.js). Installs on `app`: save, loadMask,
 * loadLesions, reloadDetail, newHistory, quoteEtag. */
import { baseBeforeEdits, labelChanges, describeChanges, labelsIn, relabelPlan, relabelChanges } from "./conflict.js";
import { MaskEditor } from "./tools.js";
import { ReviewHistory } from "./history.js";

const LL = window.LL;
const { esc, fmtDate, userName } = LL;

/** An ETag as the server compares it (quoted), from an ETag header or a revision number. */
export function quoteEtag(e) {
  if (e == null) return null;
  const s = String(e);
  return s.startsWith('"') || s.startsWith("W/") ? s : `"${s}"`;
}

export function installSave(app) {
  const { S, $, root, store, api } = app;
  app.quoteEtag = quoteEtag;

  app.reloadDetail = async () => { S.study = await api.detail(); };
  app.loadLesions = async () => { S.lesions = await api.lesions(); };
  app.newHistory = () => new ReviewHistory({ editor: S.editor, lesions: () => S.lesions, decide: app.sendDecision, save: () => app.save({ quiet: true }) });

  app.loadMask = async () => {
    const { buffer, headers } = await api.mask();
    const mask = new Uint16Array(buffer);
    S.mask = mask;
    S.etag = quoteEtag(headers.get("ETag") || (S.study.revision && (S.study.revision.etag || S.study.revision.number)));
    S.editor = new MaskEditor(mask, S.shape, S.spacing, { onChange: app.onEdit });
    S.history = app.newHistory();
    S.overlay.setMask(mask, S.shape);
    S.overlay.setSelected(S.selected);
  };

  app.save = async ({ quiet = false } = {}) => {
    if (!app.canEdit() || !S.editor.dirty) return true;
    if (S.saving) return S.saving;
    $("save").disabled = true; $("dirty").textContent = "saving…";
    S.saving = (async () => {
      const t0 = performance.now();
      const snapshot = S.editor.undoStack.length;
      try {
        const gz = await LL.gzip(S.mask);
        const headers = { "Content-Type": "application/octet-stream", "If-Match": S.etag, "X-Reason": "edited in the viewer" };
        if (gz) headers["Content-Encoding"] = "gzip";
        const resp = await api.putMask(gz || S.mask, headers);
        let body = null; try { body = await resp.json(); } catch (e) { body = null; }
        if (resp.status === 409 && body && body.code === "stale_revision") { showConflict(body); return false; }
        if (!resp.ok) throw new LL.ApiError(resp.status, body);
        S.lastSaveMs = performance.now() - t0;
        const rev = (body && body.revision) || {};
        S.etag = quoteEtag(rev.etag || resp.headers.get("ETag") || rev.number);
        if (S.study) S.study.revision = rev;
        if (body && Array.isArray(body.lesions)) S.lesions = body.lesions;
        else await app.loadLesions();
        for (const label of [...S.localLesions.keys()]) if (S.lesions.some((l) => l.label === label) || !S.editor.counts.get(label)) S.localLesions.delete(label);
        // Edits made while the request was in flight stay unsaved.
        S.editor.savedDepth = snapshot;
        S.overlay.touchAll();
        app.renderRevision(); store.notify("lesions"); app.updateHistoryButtons(); app.views.redrawAll();
        if (!quiet) LL.toast(`Saved as revision ${rev.number != null ? rev.number : ""}`, "ok", 2000);
        return true;
      } catch (e) {
        app.handleWriteError(e, "save the mask");
        return false;
      } finally {
        S.saving = null; app.updateHistoryButtons(); app.updateApprove();
      }
    })();
    return S.saving;
  };

  function showConflict(body) {
    S.conflict = body;
    let who = userName(body.changed_by) || "another user";
    if (who === LL.me.username) who = `${who} (you, in another window or tab)`;
    const cur = body.current_revision;
    const revNo = cur && typeof cur === "object" ? cur.number : cur;
    $("conflict-text").innerHTML = `<strong>${esc(who)}</strong> saved revision ${esc(revNo == null ? "?" : revNo)} at ${esc(fmtDate(body.changed_at, true))}` +
      (body.reason ? ` (“${esc(body.reason)}”)` : "") + ` while you were editing. Your ${S.editor.unsavedChanges().length} unsaved edit(s) were not saved.`;
    root.dataset.conflict = "1";
    app.showBanner(`Not saved: ${who} saved a newer revision. Your edits are kept here.`, "warn");
    $("conflict-what").textContent = "Looking at what they changed…";
    const dlg = $("conflict");
    if (dlg.showModal) dlg.showModal(); else dlg.setAttribute("open", "");
    S.theirs = fetchTheirs();
    S.theirs.then((t) => {
      const base = baseBeforeEdits(S.mask, S.editor.unsavedChanges());
      $("conflict-what").textContent = describeChanges(labelChanges(base, t.mask));
    }).catch((e) => { $("conflict-what").textContent = `(Could not load their revision: ${e.message})`; });
  }

  async function fetchTheirs() {
    const { buffer, headers } = await api.mask();
    return { mask: new Uint16Array(buffer), etag: quoteEtag(headers.get("ETag") || headers.get("X-Revision")) };
  }

  async function rebaseOnTheirs() {
    const fetched = await (S.theirs || fetchTheirs());
    S.theirs = null;
    const theirs = fetched.mask;
    S.etag = fetched.etag;
    // A lesion I drew may have the same new label as one they drew: give mine a fresh
    // label, or the two would merge into one lesion.
    const used = [...S.editor.counts.keys(), ...S.lesions.map((l) => l.label), ...S.localLesions.keys()];
    const remap = relabelPlan(S.localLesions.keys(), labelsIn(theirs), used);
    const mine = relabelChanges(S.editor.unsavedChanges(), remap);
    for (const [from, to] of remap) {
      const l = S.localLesions.get(from);
      S.localLesions.delete(from);
      S.localLesions.set(to, { ...l, label: to });
      if (S.selected === from) S.selected = to;
    }
    S.overlay.setSelected(S.selected);
    S.history = app.newHistory();
    S.editor.rebase(theirs, mine);
    S.editor.savedDepth = 0;
    await Promise.all([app.loadLesions(), app.reloadDetail()]);
    S.overlay.touchAll();
    app.renderRevision(); store.notify("lesions"); app.updateHistoryButtons(); app.views.redrawAll();
    app.hideBanner(); delete root.dataset.conflict;
    const moved = remap.size ? ` Your new lesion${remap.size > 1 ? "s were" : " was"} renumbered (${[...remap].map(([a, b]) => `${a}→${b}`).join(", ")}) so as not to merge with theirs.` : "";
    LL.toast(`Their revision is loaded and your edits are applied on top.${moved} Check, then save.`, "info", 7000);
  }
  $("conflict-rebase").addEventListener("click", async () => {
    $("conflict").close();
    try { await rebaseOnTheirs(); } catch (e) { LL.toast(`Could not load their revision: ${e.message}`, "bad"); }
  });
  $("conflict-keep").addEventListener("click", () => { $("conflict").close(); });
  $("save").addEventListener("click", () => app.save());
}
