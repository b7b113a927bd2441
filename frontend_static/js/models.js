/* Models page: versions with metrics and a plot across versions; retraining with live
 * progress; promote (with an override reason when worse), roll back. */
(function () {
  "use strict";
  const { esc, fmtNum, fmtDate, userName, statusBadge } = LL;
  const $ = (id) => document.getElementById(id);
  const manage = $("training-card").dataset.manage === "1";
  const RUNNING = new Set(["queued", "running"]);
  const COLORS = { dsc: "#3ea6ff", small_sensitivity: "#ffd600", large_sensitivity: "#56d364", fp_per_study: "#ff7b72" };
  let versions = [];
  let run = null;
  let gateSet = null;   // the current gate set version (GET /api/gate-set/), or null
  let effort = {};      // review effort per model version id (GET /api/review-effort/)

  /** Who promoted a version; nobody means the loop did it (first model, demo, command). */
  function promoter(v) { return userName(v.promoted_by) || "automatically"; }

  function renderVersions() {
    const tbody = document.querySelector("#versions tbody");
    const active = versions.find((v) => v.status === "active");
    $("active-box").innerHTML = active ? `Active: <strong>${esc(active.name)}</strong>${active.promoted_at ? ` since ${esc(fmtDate(active.promoted_at))}` : ""}` : "No active version: studies wait for a model.";
    renderGateBox();
    renderSizeGroups();
    if (!versions.length) { tbody.innerHTML = '<tr><td colspan="12" class="muted empty">No model versions yet.</td></tr>'; return; }
    const cmp = (v, key, higherBetter) => {
      const x = shownMetric(v, key), a = active && active !== v && comparable(active) ? shownMetric(active, key) : null;
      if (x == null) return "—";
      if (!comparable(v)) return notComparableCell(v, x, key);
      let cls = "";
      if (a != null && Math.abs(x - a) > 1e-9) cls = (x > a) === higherBetter ? "metric-good" : "metric-bad";
      return `<span class="${cls}">${fmtNum(x, key === "fp_per_study" ? 2 : 3)}</span>`;
    };
    tbody.innerHTML = versions.map((v) => {
      const actions = [];
      if (manage && v.status === "candidate") actions.push(`<button class="small primary" data-act="promote" data-id="${v.id}">Promote</button>`);
      if (manage && v.status === "retired" && v.promoted_at) actions.push(`<button class="small" data-act="rollback" data-id="${v.id}">Roll back to this</button>`);
      if (LL.me.canAudit) actions.push(`<a class="button small" href="/audit/models/${v.id}/">Lineage</a>`);
      const note = v.status_reason ? `<div class="muted small">${esc(v.status_reason)}</div>` : v.promotion_note ? `<div class="muted small" title="promotion note">“${esc(v.promotion_note)}”</div>` : "";
      return `<tr class="${v.status === "active" ? "active-version" : ""}" data-id="${v.id}">
        <td><strong>${esc(v.name)}</strong> <span class="muted small">${esc(v.preset || "")}</span>${note}${gateNote(v)}</td>
        <td>${statusBadge(v.status)}</td>
        <td>${v.parent ? esc(v.parent.name) : '<span class="muted">—</span>'}</td>
        <td class="num">${cmp(v, "dsc", true)}</td>
        <td class="num">${cmp(v, "small_sensitivity", true)}</td>
        <td class="num">${cmp(v, "large_sensitivity", true)}</td>
        <td class="num">${cmp(v, "fp_per_study", false)}</td>
        <td class="num">${(v.train_study_ids || []).length} / ${(v.val_study_ids || []).length}</td>
        <td class="nowrap">${esc(fmtDate(v.created_at))}<div class="muted small">${esc(userName(v.created_by) || "system")}</div></td>
        <td class="nowrap">${v.promoted_at ? esc(fmtDate(v.promoted_at)) + `<div class="muted small">${esc(promoter(v))}</div>` : '<span class="muted">—</span>'}</td>
        <td class="nowrap effort">${effortCell(v)}</td>
        <td class="nowrap">${actions.join(" ")}</td>
      </tr>`;
    }).join("");
  }

  function renderChart() {
    // Only numbers from one gate set are plotted side by side.
    const ordered = versions.filter((v) => comparable(v)).slice().sort((a, b) => new Date(a.created_at) - new Date(b.created_at));
    const box = $("metrics-chart");
    if (!ordered.length) { box.innerHTML = `<p class="muted">${gateSet ? "No version scored on " + esc(gateLabel()) + " yet." : "No gate set yet: versions are not compared."}</p>`; $("metrics-legend").innerHTML = ""; return; }
    const fpMax = LLCharts.niceMax(Math.max(1, ...ordered.map((v) => shownMetric(v, "fp_per_study") || 0)));
    const series = [
      { key: "dsc", name: "DSC", axis: "left" }, { key: "small_sensitivity", name: "Small-lesion sensitivity", axis: "left" },
      { key: "large_sensitivity", name: "Large-lesion sensitivity", axis: "left", dash: "4 3" },
      { key: "fp_per_study", name: "FP per study (right axis)", axis: "right", dash: "2 3" },
    ].map((s) => ({ ...s, color: COLORS[s.key], values: ordered.map((v) => shownMetric(v, s.key)) }));
    LLCharts.lineChart(box, { labels: ordered.map((v) => v.name), series, leftMax: 1, rightMax: fpMax, height: 230 });
    $("metrics-legend").innerHTML = series.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`).join("") + `<span class="muted">scored on ${esc(gateLabel())}</span>`;
  }

  // --- comparable numbers (the gate set) and review effort --------------------------
  // Kept apart from the rest of the page: the table, the plot and the override dialog
  // read numbers only through these.

  function gateLabel(g = gateSet) {
    return g ? `gate set v${g.number} (${g.n_studies} studies, ${g.n_lesions} lesions)` : "no gate set";
  }
  /** Scored on the current gate set: the only numbers compared (coloured, plotted). */
  function comparable(v) { return !!(gateSet && v.gate && v.gate.comparable); }
  /** The number shown for a version: its gate-set score (current or an earlier set). */
  function shownMetric(v, key) {
    const m = v.gate && v.gate.metrics;
    return m && m[key] != null ? Number(m[key]) : null;
  }
  function notComparableCell(v, x, key) {
    const where = v.gate && v.gate.gate_set ? `gate set v${v.gate.gate_set}` : "another set";
    return `<span class="muted not-comparable" title="scored on ${esc(where)}, not on the current ${esc(gateLabel())}: not comparable">${fmtNum(x, key === "fp_per_study" ? 2 : 3)}</span>`;
  }
  function gateNote(v) {
    if (!gateSet || !v.gate) return "";
    if (v.gate.comparable) return "";
    const job = v.gate.pending === "queued" || v.gate.pending === "running" ? `re-scoring on v${gateSet.number}…` : v.gate.pending === "failed" ? `scoring failed: ${v.gate.message || ""}` : "not scored on the current set";
    return `<div class="muted small not-comparable">not comparable (${esc(v.gate.gate_set ? "gate set v" + v.gate.gate_set : "no score")}; ${esc(job)})</div>`;
  }
  function renderGateBox() {
    const box = $("gate-box");
    if (!box) return;
    box.innerHTML = gateSet
      ? `Scored on <strong>${esc(gateLabel())}</strong>: approved studies held out from training and calibration.`
      : "No gate set yet: it is made from approved studies as they arrive; until then versions are not compared here.";
  }
  /** Per size group, for the versions scored on the current gate set: lesion
   * sensitivity (found / lesions), FP lesions per study and lesion-wise Dice. */
  function renderSizeGroups() {
    const box = $("size-groups");
    if (!box) return;
    const rows = versions.filter((v) => comparable(v) && v.gate.metrics && v.gate.metrics.size_groups);
    if (!rows.length) { box.innerHTML = ""; return; }
    const groups = ["<100", "100-500", "500-1500", ">1500"];
    const cell = (g) => g && g.n_lesions != null
      ? `${g.sensitivity == null ? "—" : fmtNum(g.sensitivity, 2)} <span class="muted small">(${g.n_detected}/${g.n_lesions})</span> · ${fmtNum(g.fp_per_study, 2)} · ${g.lesion_dice == null ? "—" : fmtNum(g.lesion_dice, 2)}`
      : "—";
    box.innerHTML = `<table class="grid small"><thead><tr><th>Per size group (mm³): sensitivity (found) · FP / study · lesion-wise Dice</th>${groups.map((g) => `<th>${esc(g)}</th>`).join("")}</tr></thead><tbody>` +
      rows.map((v) => `<tr data-id="${v.id}"><td>${esc(v.name)}</td>${groups.map((g) => `<td class="nowrap">${cell(v.gate.metrics.size_groups[g])}</td>`).join("")}</tr>`).join("") +
      "</tbody></table>";
  }
  function effortCell(v) {
    const e = effort[v.id];
    if (!e) return '<span class="muted">—</span>';
    const pct = e.accepted_unchanged_fraction == null ? "—" : `${Math.round(e.accepted_unchanged_fraction * 100)}%`;
    return `<span title="mean over ${e.n_studies} reviewed studies">${pct} unchanged</span>` +
      `<div class="muted small">${fmtNum(e.edited, 1)} edited · ${fmtNum(e.added, 1)} added · ${fmtNum(e.rejected, 1)} rejected</div>` +
      `<div class="muted small">${fmtNum(e.voxels_changed, 0)} vox changed · ${fmtNum(e.active_minutes, 1)} min/study · n=${e.n_studies}</div>`;
  }
  async function loadComparable() {
    const [gate, eff] = await Promise.allSettled([LL.get("/api/gate-set/"), LL.get("/api/review-effort/")]);
    gateSet = gate.status === "fulfilled" ? gate.value.current : null;
    effort = {};
    if (eff.status === "fulfilled") for (const row of eff.value.results || []) effort[row.model_version.id] = row;
  }

  function renderRun() {
    const body = $("run-body");
    const startBtn = $("start-training"), cancelBtn = $("cancel-training");
    if (!run) {
      $("run-status").innerHTML = "";
      body.innerHTML = '<p class="muted">No retraining has run yet.</p>';
      if (startBtn) startBtn.disabled = false;
      if (cancelBtn) cancelBtn.hidden = true;
      return;
    }
    const live = RUNNING.has(run.status);
    $("run-status").innerHTML = statusBadge(run.status);
    if (startBtn) startBtn.disabled = live;
    if (cancelBtn) { cancelBtn.hidden = !live; cancelBtn.disabled = !!run.cancel_requested; cancelBtn.textContent = run.cancel_requested ? "Cancelling…" : "Cancel training"; }
    const pct = Math.round((Number(run.progress) || 0) * 100);
    const epochPct = run.epochs ? Math.round((Number(run.epoch || 0) / Number(run.epochs)) * 100) : 0;
    const stage = run.stage ? esc(run.stage) : "—";
    let html = `<dl class="kv">
      <dt>Run</dt><dd>#${run.id} · ${esc(run.trigger || "")} · started by ${esc(userName(run.started_by) || "the loop")} ${esc(fmtDate(run.started_at || run.created_at))}</dd>
      <dt>Stage</dt><dd id="run-stage">${stage}</dd>
      <dt>Epoch</dt><dd>${run.epoch != null ? esc(run.epoch) : "—"} / ${run.epochs != null ? esc(run.epochs) : "—"}${run.steps ? ` · step ${esc(run.step)} / ${esc(run.steps)}` : ""}</dd>
    </dl>
    <div class="muted small" style="margin-top:6px">Epoch ${epochPct}%</div><div class="progress" title="epoch"><span style="width:${epochPct}%"></span></div>
    <div class="muted small">Overall <span id="run-pct">${pct}%</span></div><div class="progress" title="overall" id="run-progress"><span style="width:${pct}%"></span></div>`;
    if (run.message) html += `<p class="${run.status === "failed" ? "error" : "muted"} small">${esc(run.message)}</p>`;
    if (run.model_version) html += `<p class="small">Produced <strong>${esc(run.model_version.name)}</strong> ${statusBadge(run.model_version.status)}</p>`;
    html += '<div id="loss-chart"></div><div class="legend" id="loss-legend"></div>';
    body.innerHTML = html;
    body.classList.remove("muted");
    const losses = (run.losses || []).filter((p) => p.loss != null);
    if (losses.length) {
      const stages = [...new Set(losses.map((p) => p.stage))];
      const palette = ["#3ea6ff", "#ffd600", "#56d364", "#d2a8ff"];
      const series = stages.map((st, k) => ({ name: st, color: palette[k % palette.length], values: losses.map((p) => (p.stage === st ? Number(p.loss) : null)), dots: losses.length < 60 }));
      // Dice-type losses are negative (-1 is perfect): the axis spans whatever sign they have.
      const vals = losses.map((p) => Number(p.loss));
      const hi = Math.max(...vals), lo = Math.min(...vals);
      const mx = hi > 0 ? LLCharts.niceMax(hi) : 0, mn = lo < 0 ? -LLCharts.niceMax(-lo) : 0;
      LLCharts.lineChart($("loss-chart"), { labels: losses.map((p) => String(p.epoch)), series, leftMax: mx, leftMin: mn, height: 150 });
      $("loss-legend").innerHTML = series.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)} loss</span>`).join("") + '<span class="muted">x: epoch</span>';
    }
  }

  async function loadVersions() {
    try { versions = await LL.getAll("/api/models/"); await loadComparable(); renderVersions(); renderChart(); }
    catch (e) { document.querySelector("#versions tbody").innerHTML = `<tr><td colspan="12" class="error">Could not load versions: ${esc(e.message)}</td></tr>`; }
  }
  let timer = null;
  let idleTicks = 0;
  const runKey = (r) => (r ? `${r.id}:${r.status}:${r.model_version ? r.model_version.status : ""}` : "");
  async function loadRun() {
    const before = runKey(run);
    try {
      const runs = await LL.getAll("/api/training-runs/", 1);
      runs.sort((a, b) => new Date(b.created_at) - new Date(a.created_at) || b.id - a.id);
      run = runs[0] || null;
      renderRun();
    } catch (e) { $("run-body").innerHTML = `<p class="error">Could not load training runs: ${esc(e.message)}</p>`; }
    const live = run && RUNNING.has(run.status);
    // A run that starts adds a "training" version, one that ends turns it into a
    // candidate, failed or cancelled: the table follows every change of the run; other
    // admins' promotions and rollbacks show within a minute (every 6th idle poll).
    idleTicks = live ? 0 : (idleTicks + 1) % 6;
    if (runKey(run) !== before || idleTicks === 0) loadVersions();
    clearTimeout(timer);
    timer = setTimeout(loadRun, live ? 1500 : 10000);
  }

  let estimate = null;
  async function loadEstimate() {
    const box = $("training-estimate");
    if (!box) return;
    try {
      estimate = await LL.get("/api/training-runs/estimate/");
      box.textContent = estimateText(estimate);
    } catch (e) { estimate = null; box.textContent = ""; }
  }
  function estimateText(est) {
    const recent = est.recent_minutes && est.recent_minutes.length ? `; recent runs took ${est.recent_minutes.join(", ")} min` : "";
    return `Takes about ${fmtNum(est.expected_minutes, 0)} min (${est.basis}): training stops after ${fmtNum(est.budget_minutes, 0)} min, ` +
      `stopped for good at ${fmtNum(est.limit_minutes, 0)} min; ${est.eligible_studies} approved studies${recent}.`;
  }

  async function startTraining() {
    $("start-training").disabled = true;
    try {
      run = await LL.post("/api/training-runs/", {});
      renderRun();
      LL.toast(estimate ? `Retraining queued: about ${fmtNum(estimate.expected_minutes, 0)} min, at most ${fmtNum(estimate.limit_minutes, 0)}` : "Retraining queued", "ok", 8000);
    } catch (e) {
      LL.toast(e.code === "training_running" ? "A training run is already running." : `Could not start: ${e.message}`, "warn", 5000);
    }
    loadRun();
  }
  async function cancelTraining() {
    if (!run || !confirm(`Cancel training run #${run.id}? The partial model is discarded.`)) return;
    try { run = await LL.post(`/api/training-runs/${run.id}/cancel/`); renderRun(); } catch (e) { LL.toast(`Could not cancel: ${e.message}`, "bad"); }
    loadRun();
  }

  let pendingOverride = null;
  async function promote(id, reason) {
    try {
      await LL.post(`/api/models/${id}/promote/`, reason ? { override_reason: reason } : {});
      LL.toast("Promoted: new studies use this version", "ok");
      await loadVersions();
    } catch (e) {
      if (e.code === "worse_than_active" || e.code === "not_comparable") {
        pendingOverride = id;
        const v = versions.find((x) => x.id === id);
        const comp = e.body.comparison || {};
        const names = { dsc: "DSC", small_sensitivity: "small-lesion sensitivity" };
        const checks = (comp.checks || []).filter((c) => c.judged).map((c) =>
          `<li class="${c.ok ? "" : "metric-bad"}">${esc(names[c.metric] || c.metric)}: ${fmtNum(c.candidate, 3)} vs ${fmtNum(c.active, 3)} active${c.ok ? "" : " — worse"}</li>`).join("");
        $("override-text").innerHTML = e.code === "not_comparable" ? `${esc(e.message)} ` : `<strong>${esc(v ? v.name : "This version")}</strong> is worse than the active version ` +
          `<strong>${esc(e.body.active || "")}</strong>${comp.reference ? ` on ${esc(comp.reference)}` : ""}:` +
          (checks ? `<ul>${checks}</ul>` : ` ${esc(e.message)}`) + "Promote it anyway only with a reason.";
        $("override-reason").value = "";
        $("override").showModal();
      } else LL.toast(`Could not promote: ${e.message}`, "bad", 6000);
    }
  }
  async function rollback(id) {
    const v = versions.find((x) => x.id === id);
    const reason = prompt(`Roll back to ${v ? v.name : "this version"}? It becomes active again. Reason (for the audit trail):`, "");
    if (reason === null) return;
    try { await LL.post(`/api/models/${id}/rollback/`, { reason }); LL.toast("Rolled back", "ok"); await loadVersions(); }
    catch (e) { LL.toast(`Could not roll back: ${e.message}`, "bad", 6000); }
  }

  document.querySelector("#versions").addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-act]"); if (!b) return;
    const id = Number(b.dataset.id);
    if (b.dataset.act === "promote") promote(id);
    else if (b.dataset.act === "rollback") rollback(id);
  });
  if ($("start-training")) $("start-training").addEventListener("click", startTraining);
  if ($("cancel-training")) $("cancel-training").addEventListener("click", cancelTraining);
  $("override-cancel").addEventListener("click", () => $("override").close());
  $("override-confirm").addEventListener("click", () => {
    const reason = $("override-reason").value.trim();
    if (!reason) { $("override-reason").focus(); return; }
    $("override").close(); promote(pendingOverride, reason);
  });

  loadVersions();
  loadRun();
  loadEstimate();
})();
