/* The case header (patient, status, model version, revision, approval, exports) and
 * the banner under it. Installs on `app`: renderHeader, renderRevision, showBanner,
 * hideBanner. */
const LL = window.LL;
const { esc, fmtDate, userName, statusBadge } = LL;

export function installHeader(app) {
  const { S, $, api, roleCanEdit } = app;

  app.showBanner = (text, kind, action = null) => {
    const b = $("banner"); b.textContent = text; b.className = "banner " + kind; b.hidden = false;
    if (action) {
      const btn = document.createElement("button");
      btn.id = "banner-action"; btn.className = "small"; btn.textContent = action.label;
      btn.addEventListener("click", action.fn);
      b.append(" ", btn);
    }
  };
  app.hideBanner = () => { $("banner").hidden = true; };

  app.renderRevision = () => {
    const r = (S.study && S.study.revision) || null;
    $("c-revision").innerHTML = r ? `Revision <strong>${esc(r.number)}</strong> · ${esc(userName(r.author) || "model")} · ${esc(fmtDate(r.created_at))}` : "";
  };

  app.renderHeader = () => {
    const s = S.study;
    $("c-patient").textContent = s.patient_label || `Study ${s.id}`;
    $("c-desc").textContent = s.description || "";
    $("c-status").innerHTML = statusBadge(s.status) + (s.registration_ok === false ? ` <span class="badge warn" title="${esc(s.registration_message || (s.registration && s.registration.message) || "Check the MR–CT registration")}">check registration</span>` : "");
    const mv = s.model_version;
    $("c-model").innerHTML = mv ? (LL.me.canAudit ? `<a href="/audit/models/${mv.id}/">${esc(mv.name)}</a>` : esc(mv.name)) : "no model (manual)";
    app.renderRevision();
    const done = app.approved();
    $("reopen").hidden = !(done && roleCanEdit);
    $("approved-note").hidden = !done;
    // Exports for the planning system: RTSTRUCT / SEG reference the uploaded CT slices.
    $("export-box").hidden = !done;
    for (const fmt of ["rtstruct", "seg", "nifti"]) $(`export-${fmt}`).href = api.exportUrl(fmt);
    if (done) $("approved-note").innerHTML = `Approved by <strong>${esc(userName(s.approved_by))}</strong> ${esc(fmtDate(s.approved_at))}${s.training_eligible ? " · used for retraining" : ""}`;
    $("eligible").checked = s.training_eligible == null ? true : (done ? !!s.training_eligible : $("eligible").checked);
    app.renderLease();
    document.title = `${s.patient_label || "Case " + s.id} · LesionLoop`;
  };
}
