/* Audit pages: the whole trail (filterable), a study's timeline, a model version's lineage;
 * written out as sentences a person can read, with links between studies and versions. */
(function () {
  "use strict";
  const { esc, fmtDate, fmtNum, userName, statusBadge } = LL;
  const mm3 = (v) => (v == null ? "—" : Number(v).toFixed(Number(v) < 10 ? 1 : 0));
  const $ = (id) => document.getElementById(id);
  const root = $("audit");
  const mode = root.dataset.mode;
  const objectId = root.dataset.id;

  function idOf(x) { return x == null ? null : typeof x === "object" ? x.id : x; }
  function nameOf(x) { return x == null ? null : typeof x === "object" ? x.name || x.patient_label || x.id : x; }
  function studyLink(s, label) { const id = idOf(s); return id == null ? "" : `<a href="/audit/studies/${id}/">${esc(label || (typeof s === "object" && s.patient_label) || "study " + id)}</a>`; }
  function modelLink(m, label) { const id = idOf(m); return id == null ? "" : `<a href="/audit/models/${id}/">${esc(label || (typeof m === "object" && m.name) || "version " + id)}</a>`; }
  function actorOf(e) { return e.actor_label || userName(e.actor) || "system"; }
  const yesno = (b) => (b ? "yes" : "no");

  /** One sentence per event type; anything unknown falls back to its fields. */
  function describe(e) {
    const p = e.payload || {};
    const mv = e.model_version ? modelLink(e.model_version, p.version) : p.version ? esc(p.version) : "";
    // Dotted and underscored spellings of the same event (model.promoted, model_promoted).
    switch ((e.event_type || "").replace(/^(model|training)_/, "$1.")) {
      case "study_imported": return `Imported${p.ground_truth ? " with ground truth (training case)" : ""}`;
      case "study_uploaded": return `Uploaded ${esc(p.files)} file(s)${p.ground_truth ? " with ground truth" : ""}`;
      case "ingest_started": return "Import and pre-processing started";
      case "ingest_done": return `Images imported and resampled to the model grid${p.seconds != null ? ` in ${esc(p.seconds)} s` : ""}`;
      case "registration_checked": return p.ok ? `MR–CT registration checked: fine${p.quality != null ? ` (quality ${fmtNum(p.quality, 2)})` : ""}` : `MR–CT registration needs checking: ${esc(p.message || "")}`;
      case "awaiting_model": return "Waiting: no active model version yet";
      case "presegment_queued": return `Pre-segmentation queued with ${mv}`;
      case "presegment_started": return `Pre-segmentation started with ${mv}`;
      case "prediction_created": return `Pre-contour produced by ${mv}${p.lesions != null ? `: ${esc(Array.isArray(p.lesions) ? p.lesions.length : p.lesions)} lesion(s)` : p.lesion_count != null ? `: ${esc(p.lesion_count)} lesion(s)` : ""}`;
      case "prediction_kept_aside": return `A newer prediction by ${mv} was kept aside (the study was already being reviewed)`;
      case "presegment_failed": return `Pre-segmentation failed: ${esc(p.reason || "")}`;
      case "study_failed": return `Failed: ${esc(p.reason || "")}`;
      case "lease_taken": return "Took the review lease";
      case "lease_released": return "Released the review lease";
      case "lease_taken_over": return "Moved the review lease to another tab";
      case "lesion_decision": return `Lesion ${esc(p.label)}: ${esc(p.before || "pending")} → <strong>${esc(p.decision)}</strong>`;
      case "mask_revision": return `Saved mask revision <strong>${esc(p.revision)}</strong>${p.reason ? ` (“${esc(p.reason)}”)` : ""}${mv && !e.actor ? ` from ${mv}` : ""}`;
      case "lesions_changed_by_edit": {
        const parts = [];
        for (const k of ["added", "edited", "rejected", "erased"]) if (p[k] && (p[k].length || p[k] > 0)) parts.push(`${k} ${esc(Array.isArray(p[k]) ? p[k].join(", ") : p[k])}`);
        return `Edit in revision ${esc(p.revision)} changed lesions${parts.length ? ": " + parts.join("; ") : ""}`;
      }
      case "study_approved": return `<strong>Approved</strong> revision ${esc(p.revision)}${mv ? ` (pre-contour by ${mv})` : ""} · training-eligible: ${yesno(p.training_eligible)}${Array.isArray(p.lesions) ? ` · ${p.lesions.length} lesion(s) kept` : ""}`;
      case "study_reopened": return "Reopened for review";
      case "study_exported": return `Exported as ${esc(p.format || "")} (revision ${esc(p.revision)})`;
      case "ruler_saved": return `Ruler of ${fmtNum(p.length_mm, 1)} mm on ${esc(p.plane)} slice ${esc(Number(p.slice) + 1)}${Array.isArray(p.replaced) && p.replaced.length ? " (replacing the plane's previous one)" : ""}`;
      case "ruler_deleted": return `Deleted ruler(s) on ${esc((p.planes || []).join(", "))}`;
      case "login_failed": return `Failed login as ${esc(p.username || "")}`;
      case "training.requested": return `Retraining requested (${esc(p.trigger || "manual")}, ${esc(Array.isArray(p.eligible_studies) ? p.eligible_studies.length : p.eligible_studies)} eligible studies)`;
      case "training.started": return `Training of ${mv} started from ${p.parent ? esc(p.parent) : "scratch"} on ${esc((p.train_study_ids || []).length)} studies, validating on ${esc((p.val_study_ids || []).length)}`;
      case "training.finished": return `Training of ${mv} finished${p.metrics ? ` · DSC ${fmtNum(p.metrics.dsc, 3)}, small-lesion sensitivity ${fmtNum(p.metrics.small_sensitivity, 3)}, FP/study ${fmtNum(p.metrics.fp_per_study, 2)}` : ""}`;
      case "training.failed": return `Training failed: ${esc(p.reason || "")}`;
      case "training.cancelled": return `Training cancelled${p.reason ? ": " + esc(p.reason) : ""}`;
      case "model.promoted": return `${mv} promoted to active${p.previous ? ` (was ${esc(p.previous)})` : ""}`;
      case "model.promotion_override": return `${mv} promoted <strong>despite worse metrics</strong>: “${esc(p.reason || p.override_reason || "")}”`;
      case "model.rolled_back": return `Rolled back to ${mv}${p.reason ? `: “${esc(p.reason)}”` : ""}`;
      default: {
        const rest = Object.entries(p).filter(([, v]) => v != null && typeof v !== "object").slice(0, 5).map(([k, v]) => `${esc(k)}: ${esc(v)}`).join(", ");
        return `${esc((e.event_type || "event").replace(/[._]/g, " "))}${rest ? ` <span class="muted">(${rest})</span>` : ""}`;
      }
    }
  }
  function cls(e) {
    const t = e.event_type || "";
    if (t === "study_approved") return "ev-approved";
    if ((e.payload || {}).decision === "rejected" || /failed/.test(t)) return "ev-reject";
    return "";
  }

  function timeline(ol, events) {
    if (!events.length) { ol.innerHTML = '<li class="muted">No events.</li>'; return; }
    ol.innerHTML = events.map((e) => `<li class="${cls(e)}" data-type="${esc(e.event_type)}">
      <span class="when">${esc(fmtDate(e.created_at, true))}</span><span class="who">${esc(actorOf(e))}</span> · <span class="what">${describe(e)}</span>
      ${mode === "model" && e.study ? `<div class="detail">${studyLink(e.study)}</div>` : ""}
    </li>`).join("");
  }

  // ---- index ------------------------------------------------------------------
  async function index() {
    const params = new URLSearchParams(location.search);
    $("a-study").value = params.get("study") || ""; $("a-model").value = params.get("model_version") || "";
    $("a-type").value = params.get("event_type") || ""; $("a-actor").value = params.get("actor") || "";
    $("a-order").value = params.get("ordering") === "created_at" ? "created_at" : "-created_at";
    let next = null; let rows = [];
    async function load(url, append) {
      try {
        const data = await LL.get(url);
        const page = Array.isArray(data) ? data : data.results || [];
        next = Array.isArray(data) ? null : data.next;
        rows = append ? rows.concat(page) : page;
        $("a-count").textContent = Array.isArray(data) ? `${rows.length} events` : `${data.count} events`;
        $("a-more").hidden = !next;
        const tbody = document.querySelector("#a-events tbody");
        tbody.innerHTML = rows.length ? rows.map((e) => `<tr data-type="${esc(e.event_type)}">
          <td class="nowrap">${esc(fmtDate(e.created_at, true))}</td><td>${esc(actorOf(e))}</td><td>${describe(e)}</td>
          <td>${e.study ? studyLink(e.study) : ""}</td><td>${e.model_version ? modelLink(e.model_version) : ""}</td>
          <td class="muted small">${esc(e.event_type)}</td></tr>`).join("") : '<tr><td colspan="6" class="muted empty">No events match.</td></tr>';
      } catch (e) {
        document.querySelector("#a-events tbody").innerHTML = `<tr><td colspan="6" class="error">Could not load the audit trail: ${esc(e.message)}</td></tr>`;
      }
    }
    function apply() {
      const ordering = $("a-order").value === "created_at" ? "created_at" : "-created_at";
      $("a-order-note").textContent = ordering === "created_at" ? "oldest first" : "newest first";
      const q = new URLSearchParams({ ordering });
      if ($("a-study").value) q.set("study", $("a-study").value);
      if ($("a-model").value) q.set("model_version", $("a-model").value);
      if ($("a-type").value.trim()) q.set("event_type", $("a-type").value.trim());
      if ($("a-actor").value.trim()) q.set("actor", $("a-actor").value.trim());
      history.replaceState(null, "", "?" + q.toString());
      load("/api/audit/?" + q.toString(), false);
    }
    $("a-apply").addEventListener("click", apply);
    $("a-more").addEventListener("click", () => next && load(next, true));
    apply();
  }

  // ---- study ------------------------------------------------------------------
  async function study() {
    try {
      const s = await LL.get(`/api/studies/${objectId}/`);
      $("s-title").innerHTML = `${esc(s.patient_label || "Study " + s.id)} <span class="muted">${esc(s.description || "")}</span>`;
      document.title = `Audit · ${s.patient_label || "study " + s.id} · LesionLoop`;
      const rev = s.revision || {};
      $("s-summary").innerHTML = `
        <dt>Status</dt><dd>${statusBadge(s.status)} ${esc(s.status_reason || "")}</dd>
        <dt>Pre-contour by</dt><dd>${s.model_version ? modelLink(s.model_version) : "—"}</dd>
        <dt>Revision</dt><dd>${rev.number != null ? esc(rev.number) : "—"} ${rev.author ? "by " + esc(userName(rev.author)) : ""} ${esc(fmtDate(rev.created_at))} ${rev.reason ? `(“${esc(rev.reason)}”)` : ""}</dd>
        <dt>Approved</dt><dd>${s.approved_at ? `${esc(fmtDate(s.approved_at))} by ${esc(userName(s.approved_by))}` : "not yet"}</dd>
        <dt>Training-eligible</dt><dd>${s.training_eligible == null ? "—" : yesno(s.training_eligible)}</dd>
        <dt>Registration</dt><dd>${s.registration_ok === false ? '<span class="warn">needs checking</span>' : "ok"}</dd>
        <dt>Received</dt><dd>${esc(fmtDate(s.created_at))}</dd>`;
    } catch (e) { $("s-summary").innerHTML = `<dd class="error">${esc(e.message)}</dd>`; }
    try {
      const lesions = await LL.get(`/api/studies/${objectId}/lesions/?ordering=volume_mm3`);
      const list = Array.isArray(lesions) ? lesions : lesions.results || [];
      $("s-lesions").classList.remove("muted");
      $("s-lesions").innerHTML = list.length ? `<table class="grid"><thead><tr><th>Label</th><th class="num">Volume (mm³)</th><th class="num" title="Longest diameter on an axial slice (RANO-BM), between voxel centres">Axial ⌀ (mm)</th><th class="num" title="Longest 3D diameter, between voxel centres">3D ⌀ (mm)</th><th>Decision</th><th>By</th><th>Model</th></tr></thead><tbody>${list.map((l) => `
        <tr><td>${esc(l.label)}</td><td class="num">${mm3(l.volume_mm3)}</td><td class="num">${fmtNum(l.longest_axial_diameter_mm, 1)}</td><td class="num">${fmtNum(l.longest_diameter_mm, 1)}</td><td><span class="badge dec-${esc(l.decision)}">${esc(l.decision)}</span></td>
        <td>${esc(userName(l.decided_by) || "—")} <span class="muted small">${esc(fmtDate(l.decided_at))}</span></td><td>${l.model_version ? modelLink(l.model_version) : '<span class="muted">drawn by hand</span>'}</td></tr>`).join("")}</tbody></table>` : '<span class="muted">No lesions.</span>';
    } catch (e) { $("s-lesions").textContent = e.message; }
    try {
      const data = await LL.get(`/api/studies/${objectId}/timeline/`);
      timeline($("s-timeline"), Array.isArray(data) ? data : data.results || []);
    } catch (e) { $("s-timeline").innerHTML = `<li class="error">Could not load the timeline: ${esc(e.message)}</li>`; }
  }

  // ---- model ------------------------------------------------------------------
  async function model() {
    try {
      const lin = await LL.get(`/api/models/${objectId}/lineage/`);
      const v = lin.version || {};
      $("m-title").innerHTML = `${esc(v.name || "Version " + objectId)} ${statusBadge(v.status)}`;
      const parents = (lin.parents || lin.parent_chain || []).slice().reverse();
      $("m-lineage").innerHTML = parents.map((p) => `<span class="node">${modelLink(p)} ${statusBadge(p.status)}</span><span class="muted">→</span>`).join("") +
        `<span class="node current"><strong>${esc(v.name)}</strong></span>` + (parents.length ? "" : ' <span class="muted">(trained from scratch)</span>');
      const m = v.metrics || {};
      $("m-summary").innerHTML = `
        <dt>Created</dt><dd>${esc(fmtDate(v.created_at))} by ${esc(userName(v.created_by) || "system")}</dd>
        <dt>Promoted</dt><dd>${v.promoted_at ? `${esc(fmtDate(v.promoted_at))} ${v.promoted_by ? `by ${esc(userName(v.promoted_by))}` : "automatically (by LesionLoop, no user)"}${v.promotion_note ? ` · “${esc(v.promotion_note)}”` : ""}` : "never"}</dd>
        <dt>Validation</dt><dd>DSC ${fmtNum(m.dsc, 3)} · small-lesion sensitivity ${fmtNum(m.small_sensitivity, 3)} · large-lesion sensitivity ${fmtNum(m.large_sensitivity, 3)} · FP/study ${fmtNum(m.fp_per_study, 2)}</dd>
        <dt>Code</dt><dd class="mono">${esc(v.code_version || "—")} · preset ${esc(v.preset || "—")}</dd>
        <dt>Weights</dt><dd class="mono small">${(v.weights || []).map((w) => `${esc(w.file)} sha256:${esc(String(w.sha256).slice(0, 16))}…`).join("<br>") || "—"}</dd>`;
      const chips = (list) => (list || []).map((s) => studyLink(s, `${s.patient_label || "study " + s.id}`)).join("") || '<span class="muted">none</span>';
      $("m-train").innerHTML = chips(lin.trained_on); $("m-train-n").textContent = `(${(lin.trained_on || []).length})`;
      $("m-val").innerHTML = chips(lin.validated_on); $("m-val-n").textContent = `(${(lin.validated_on || []).length})`;
      $("m-pre").innerHTML = chips(lin.presegmented); $("m-pre-n").textContent = `(${(lin.presegmented || []).length})`;
    } catch (e) { $("m-lineage").innerHTML = `<span class="error">Could not load the lineage: ${esc(e.message)}</span>`; }
    try {
      const data = await LL.get(`/api/audit/?model_version=${objectId}`);
      timeline($("m-timeline"), Array.isArray(data) ? data : data.results || []);
    } catch (e) { $("m-timeline").innerHTML = `<li class="error">Could not load events: ${esc(e.message)}</li>`; }
  }

  ({ index, study, model })[mode]();
})();
