/* Review actions: what may be edited now, tools, decisions (accept / reject), new and
 * deleted lesions, undo/redo across edits and decisions, approval and reopening, and
 * what the page says when the server refuses a write. Installs on `app`: canEdit,
 * selectedRejected, refreshEditability, setTool, decide, historyStep, newLesion,
 * deleteLesion, sendDecision, updateSelectedActions, updateHistoryButtons,
 * updateApprove, handleWriteError, onEdit. */
import { pendingLesions, nextFreeLabel } from "./lesion-data.js";

const LL = window.LL;

export function installReview(app) {
  const { S, $, root, store, api, roleCanEdit } = app;

  app.approved = () => !!S.study && S.study.status === "approved";
  app.canEdit = () => roleCanEdit && S.leaseOk && !app.approved() && !!S.editor;
  /** The selected lesion is rejected: its contour is frozen until it is accepted again. */
  app.selectedRejected = () => {
    const l = S.selected ? app.lesionByLabel(S.selected) : null;
    return !!(l && !l.local && l.decision === "rejected");
  };

  app.refreshEditability = () => {
    const on = app.canEdit();
    root.classList.toggle("readonly", !on);
    root.dataset.canEdit = on ? "1" : "0";
    document.querySelectorAll(".edit-only").forEach((n) => { n.hidden = !roleCanEdit; });
    // An approved study shows no approve button, training checkbox or save row.
    document.querySelectorAll(".review-only").forEach((n) => { n.hidden = !roleCanEdit || app.approved(); });
    document.querySelectorAll("#new-lesion, #radius, #eligible, #brush-3d, #propose-radius, [data-tool='add']").forEach((b) => { b.disabled = !on; });
    if (!on && S.tool !== "navigate") app.setTool("navigate");
    app.updateHistoryButtons(); app.updateSelectedActions(); app.updateApprove();
  };
  store.subscribe("editability", app.refreshEditability);

  app.updateSelectedActions = () => {
    const l = S.selected ? app.lesionByLabel(S.selected) : null;
    const on = app.canEdit() && !!l;
    const frozen = app.selectedRejected();
    const erased = !!(l && S.editor && l.localVolume === 0);
    $("accept").disabled = !on || !!(l && l.local) || erased;
    $("reject").disabled = !on || !!(l && l.local);
    $("delete-lesion").disabled = !on || frozen;
    $("interpolate").disabled = !on || frozen;
    document.querySelectorAll('[data-tool="brush"], [data-tool="eraser"]').forEach((b) => { b.disabled = !app.canEdit() || frozen; });
    $("tool-hint").textContent = app.canEdit() && frozen ? `Lesion ${S.selected} is rejected: accept it first to edit its contour.` : "";
    if (frozen && (S.tool === "brush" || S.tool === "eraser")) app.setTool("navigate");
    S.overlay.setRejected(app.rejectedLabels());
  };
  store.subscribe("selection", app.updateSelectedActions);

  app.updateHistoryButtons = () => {
    const on = app.canEdit();
    $("undo").disabled = !on || !S.history || !S.history.canUndo;
    $("redo").disabled = !on || !S.history || !S.history.canRedo;
    const dirty = S.editor && S.editor.dirty;
    $("save").disabled = !on || !dirty;
    $("dirty").textContent = dirty ? "unsaved edits" : S.editor ? "all saved" : "";
    $("dirty").classList.toggle("warn", !!dirty);
  };

  app.updateApprove = () => {
    const pending = pendingLesions(app.allLesions(), { erasedCounts: !!S.editor });
    $("approve").disabled = !(app.canEdit() && pending.length === 0 && !S.saving);
    let hint = "";
    if (app.approved()) hint = "";
    else if (!roleCanEdit) hint = "Read-only for your role.";
    else if (!S.leaseOk) hint = S.keeper.state.yours ? "Read-only: you are editing this study in another tab." : "Read-only while someone else reviews this study.";
    else if (pending.length) hint = `Decide on ${pending.length} more lesion${pending.length === 1 ? "" : "s"} to approve.`;
    else if (S.editor && S.editor.dirty) hint = "Approving saves your edits first.";
    $("approve-hint").textContent = hint;
  };
  store.subscribe("edit", () => { app.updateHistoryButtons(); app.updateApprove(); });

  app.setTool = (t) => {
    if ((t === "brush" || t === "eraser" || t === "add") && !app.canEdit()) return;
    if ((t === "brush" || t === "eraser") && app.selectedRejected()) {
      LL.toast(`Lesion ${S.selected} is rejected: accept it first to edit its contour.`, "warn", 3000);
      return;
    }
    S.tool = t;
    document.querySelectorAll(".toolbar [data-tool]").forEach((b) => b.classList.toggle("on", b.dataset.tool === t));
    for (const v of Object.values(app.views.views)) v.el.dataset.tool = t;
    if (t === "navigate") S.cursor = null;
    app.views.redrawAll();
  };

  /** Store a decision on the server and in the page (throws on refusal). */
  app.sendDecision = async (lesion, decision) => {
    const upd = await api.decide(lesion.id, decision);
    const i = S.lesions.findIndex((x) => x.id === lesion.id);
    if (i >= 0) S.lesions[i] = { ...S.lesions[i], ...(upd || { decision }) };
    store.notify("lesions"); app.views.redrawAll();
    return (upd && upd.decision) || decision;
  };

  app.decide = async (decision) => {
    const l = S.selected ? app.lesionByLabel(S.selected) : null;
    if (!l || l.local || !app.canEdit()) return;
    if (decision !== "rejected" && S.editor && l.localVolume === 0) {
      LL.toast(`Lesion ${l.label} has no voxels: Undo brings it back, or draw it again.`, "warn", 4000);
      return;
    }
    // Unsaved edits are saved first, so that a decision never races an edit.
    if (S.editor.dirty && !(await app.save({ quiet: true }))) return;
    const from = l.decision || "pending";
    try {
      const stored = await app.sendDecision(l, decision);
      S.history.recordDecision(l, from, stored);
      app.updateHistoryButtons();
      LL.toast(`Lesion ${l.label} ${stored}`, stored === "rejected" ? "warn" : "ok", 1500);
      // Move on to the next lesion still waiting for a decision.
      const next = pendingLesions(app.sortedLesions())[0];
      if (next) app.selectLesion(next.label);
    } catch (e) { app.handleWriteError(e, "record the decision"); }
  };

  /** Undo (-1) or redo (+1) the last edit or decision. */
  app.historyStep = async (dir) => {
    if (!app.canEdit() || !S.history) return;
    try {
      const entry = dir < 0 ? await S.history.undo() : await S.history.redo();
      if (entry && entry.kind === "decision") LL.toast(`Lesion ${entry.label}: ${dir < 0 ? "decision undone" : "decision redone"}`, "info", 1500);
    } catch (e) { app.handleWriteError(e, dir < 0 ? "undo" : "redo"); }
    app.updateHistoryButtons(); store.notify("lesions"); app.views.redrawAll();
  };

  app.newLesion = () => {
    if (!app.canEdit()) return;
    const label = nextFreeLabel([S.editor.maxLabel()], S.lesions.map((l) => l.label), S.localLesions.keys());
    S.localLesions.set(label, { label, local: true, decision: "added", volume_mm3: null });
    store.notify("lesions");
    app.selectLesion(label, { jump: false });
    app.setTool("brush");
    LL.toast(`Lesion ${label}: paint it with the brush`, "info", 2500);
  };

  app.deleteLesion = () => {
    if (!app.canEdit() || !S.selected || app.selectedRejected()) return;
    const label = S.selected;
    const ch = S.editor.deleteLabel(label);
    if (!ch && S.localLesions.has(label)) { S.localLesions.delete(label); S.selected = 0; store.notify("lesions"); return; }
    LL.toast(`Lesion ${label} erased. Save to record it; Undo brings it back.`, "warn", 3000);
  };

  /** The editor changed the mask (a stroke, undo, redo, delete, rebase). */
  app.onEdit = (ch, kind) => {
    if (kind === "do" && S.history) S.history.recordEdit(ch);
    for (const z of ch.slices) S.overlay.touchSlice(z);
    store.notify("lesions"); store.notify("edit"); app.views.redrawAll();
  };

  // Every code here is one the server sends (review/services: leases.py, masks.py, approval.py).
  app.handleWriteError = (e, what) => {
    if (e.code === "leased") {
      S.keeper.poll();  // the lease went elsewhere: the keeper turns this tab read-only
      app.showBanner(`Read-only: ${e.message}`, "warn");
    } else if (e.code === "lesion_rejected" || e.code === "empty_lesions" || e.code === "undecided_lesions") {
      LL.toast(e.message, "warn", 6000);
    } else if (e.code === "decisions_changed") {
      LL.toast(e.message, "warn", 8000);
      app.loadLesions().then(() => { S.history.reseed(); store.notify("lesions"); app.refreshEditability(); app.views.redrawAll(); }).catch(() => {});
    } else {
      LL.toast(`Could not ${what}: ${e.message}`, "bad", 6000);
    }
  };

  $("approve").addEventListener("click", async () => {
    if (!app.canEdit()) return;
    $("approve").disabled = true;
    if (S.editor.dirty) { const ok = await app.save({ quiet: true }); if (!ok) { app.updateApprove(); return; } }
    try {
      // The decisions as shown here: the server refuses if they changed meanwhile.
      const decisions = Object.fromEntries(S.lesions.map((l) => [l.id, l.decision || "pending"]));
      const res = await api.approve({ training_eligible: $("eligible").checked, decisions });
      await app.reloadDetail();
      if (res && res.status) S.study.status = res.status;
      S.keeper.state = { ...S.keeper.state, mine: false };  // approval ended the lease
      S.leaseOk = false;
      app.renderHeader(); app.refreshEditability();
      LL.toast("Contour approved", "ok");
      document.dispatchEvent(new CustomEvent("ll:study-approved"));
    } catch (e) { app.handleWriteError(e, "approve"); app.updateApprove(); }
  });
  $("reopen").addEventListener("click", async () => {
    try {
      await api.reopen();
      await app.reloadDetail(); app.renderHeader(); await S.keeper.take(); S.keeper.start(); app.refreshEditability();
    } catch (e) { app.handleWriteError(e, "reopen"); }
  });
  $("accept").addEventListener("click", () => app.decide("accepted"));
  $("reject").addEventListener("click", () => app.decide("rejected"));
  $("delete-lesion").addEventListener("click", app.deleteLesion);
  $("new-lesion").addEventListener("click", app.newLesion);
  $("undo").addEventListener("click", () => app.historyStep(-1));
  $("redo").addEventListener("click", () => app.historyStep(1));
}
