/* Case viewer: axial MR/CT on the model grid, lesion overlay, lesion panel, editing,
 * saving with If-Match, the review lease and approval. */
(function () {
  "use strict";
  const { esc, fmtVol, fmtNum, fmtDate, userName, statusBadge } = LL;
  const $ = (id) => document.getElementById(id);
  const root = $("case");
  const studyId = root.dataset.study;
  const roleCanEdit = root.dataset.editable === "1";
  const leaseSeconds = Number(root.dataset.leaseSeconds) || 120;
  const el = $("viewport");

  const CT_PRESETS = { Brain: [40, 80], Bone: [500, 2000], "Soft tissue": [50, 400], Subdural: [75, 215] };

  const S = {
    study: null, shape: null, spacing: null, origin: null, z: 0,
    channel: "mr", voi: { mr: null, ct: { wc: 40, ww: 80 } },
    lesions: [], localLesions: new Map(), selected: 0, sortAsc: true,
    mask: null, etag: null, editor: null, overlay: new LLOverlay.MaskOverlay(), fused: new LLOverlay.FusedCT(),
    tool: "navigate", radiusMm: 3, lease: null, leaseOk: false, leaseHolder: null, history: null, keeper: null,
    conflict: null, firstImageAt: null, allSlicesAt: null, cursor: null, frameStats: [],
  };
  window.LLViewer = S;  // for the browser tests and the speed benchmark

  // ---------------------------------------------------------------- editable state
  function approved() { return S.study && S.study.status === "approved"; }
  function canEdit() { return roleCanEdit && S.leaseOk && !approved() && !!S.editor; }
  function refreshEditability() {
    const on = canEdit();
    root.classList.toggle("readonly", !on);
    root.dataset.canEdit = on ? "1" : "0";
    document.querySelectorAll(".edit-only").forEach((n) => { n.hidden = !roleCanEdit; });
    // An approved study shows no approve button, training checkbox or save row.
    document.querySelectorAll(".review-only").forEach((n) => { n.hidden = !roleCanEdit || approved(); });
    document.querySelectorAll("#new-lesion, #radius, #eligible").forEach((b) => { b.disabled = !on; });
    if (!on && S.tool !== "navigate") setTool("navigate");
    updateHistoryButtons(); updateSelectedActions(); updateApprove();
  }
  /** The selected lesion is rejected: its contour is frozen until it is accepted again. */
  function selectedRejected() {
    const l = S.selected ? lesionByLabel(S.selected) : null;
    return !!(l && !l.local && l.decision === "rejected");
  }
  function rejectedLabels() { return S.lesions.filter((l) => l.decision === "rejected").map((l) => l.label); }

  // ---------------------------------------------------------------- image display
  function sliceMm(z) {
    const oz = S.origin ? Number(S.origin[2]) : 0;
    return oz + z * S.spacing[0];
  }
  function baseChannel() { return S.channel === "ct" ? "ct" : "mr"; }

  let renderQueued = false;
  function show(z) {
    if (!S.shape) return;
    z = Math.max(0, Math.min(S.shape[0] - 1, Math.round(z)));
    S.z = z;
    $("slice").value = String(z);
    $("slice-label").textContent = `${z + 1} / ${S.shape[0]}   z = ${sliceMm(z).toFixed(1)} mm`;
    const ch = baseChannel();
    const id = LLVolume.imageId(studyId, ch, z);
    const img = LLVolume.imageNow(id);
    const vp = viewportFor(ch);
    if (img) {
      S.requestedAt = performance.now();
      cornerstone.displayImage(el, img, vp);
    } else {
      cornerstone.loadAndCacheImage(id).then((image) => {
        if (S.z !== z || baseChannel() !== ch) return;
        S.requestedAt = performance.now();
        cornerstone.displayImage(el, image, viewportFor(ch));
      }).catch((e) => LL.toast(`Could not load slice ${z + 1}: ${e.message}`, "bad"));
    }
    if (S.channel === "fused" && !LLVolume.getVolume(studyId, "ct")) loadCT();
  }
  function viewportFor(ch) {
    const voi = S.voi[ch];
    return voi ? { voi: { windowCenter: voi.wc, windowWidth: voi.ww } } : undefined;
  }
  function redraw() { if (S.shape && cornerstone.getImage(el)) cornerstone.updateImage(el); }

  el.addEventListener("cornerstoneimagerendered", (ev) => {
    const t0 = performance.now();
    const { canvasContext: ctx, enabledElement, viewport } = ev.detail;
    const ch = baseChannel();
    if (!S.voi[ch]) S.voi[ch] = { wc: viewport.voi.windowCenter, ww: viewport.voi.windowWidth };
    ctx.save();
    cornerstone.setToPixelCoordinateSystem(enabledElement, ctx);
    ctx.imageSmoothingEnabled = false;
    if (S.channel === "fused") {
      const ct = S.fused.sliceCanvas(LLVolume.getVolume(studyId, "ct"), S.z);
      if (ct) { ctx.globalAlpha = S.fused.blend; ctx.drawImage(ct, 0, 0); ctx.globalAlpha = 1; }
    }
    if (S.overlay.visible && S.overlay.mask) {
      const m = S.overlay.sliceCanvas(S.z);
      if (m) ctx.drawImage(m, 0, 0);
    }
    const mk = S.selMark;
    if (mk && mk.label === S.selected && S.overlay.visible && S.z >= mk.z0 && S.z < mk.z1) {
      const r = Math.max(mk.r + 3, 14 / Math.max(0.01, viewport.scale));
      ctx.beginPath();
      ctx.arc(mk.x + 0.5, mk.y + 0.5, r, 0, Math.PI * 2);
      ctx.lineWidth = 1.5 / Math.max(0.01, viewport.scale);
      ctx.setLineDash([4 / viewport.scale, 3 / viewport.scale]);
      ctx.strokeStyle = LLOverlay.labelCss(mk.label, 0.9);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    if (S.cursor && (S.tool === "brush" || S.tool === "eraser")) {
      const [cy, cx] = S.cursor;
      const ry = S.radiusMm / S.spacing[1], rx = S.radiusMm / S.spacing[2];
      ctx.beginPath();
      ctx.ellipse(cx + 0.5, cy + 0.5, rx, ry, 0, 0, Math.PI * 2);
      ctx.lineWidth = 1 / Math.max(0.01, viewport.scale);
      ctx.strokeStyle = S.tool === "eraser" ? "rgba(255,255,255,0.9)" : LLOverlay.labelCss(S.selected || 1, 0.95);
      ctx.setLineDash(S.tool === "eraser" ? [3 / viewport.scale, 3 / viewport.scale] : []);
      ctx.stroke();
    }
    ctx.restore();
    const overlayMs = performance.now() - t0;
    S.frameStats.push({ z: S.z, renderMs: ev.detail.renderTimeInMs, overlayMs, latencyMs: S.requestedAt ? performance.now() - S.requestedAt : null });
    if (S.frameStats.length > 500) S.frameStats.splice(0, 250);
    S.requestedAt = null;
    if (!S.firstImageAt) {
      S.firstImageAt = performance.now();
      performance.mark("ll-first-image");
      el.dataset.firstImage = "1";
      $("loading").hidden = true;
    }
    updateCorners(viewport);
  });

  function updateCorners(viewport) {
    const s = S.study || {};
    $("ov-tl").innerHTML = `${esc(s.patient_label || "")}<br>${esc(s.description || "")}`;
    const chName = S.channel === "ct" ? "CT" : S.channel === "fused" ? `MR + CT ${Math.round(S.fused.blend * 100)}%` : "MR T1+C";
    $("ov-tr").innerHTML = `${chName}<br>Axial`;
    $("ov-bl").innerHTML = `Slice ${S.z + 1}/${S.shape[0]} · z ${sliceMm(S.z).toFixed(1)} mm<br>${S.spacing[2].toFixed(2)}×${S.spacing[1].toFixed(2)}×${S.spacing[0].toFixed(2)} mm`;
    $("ov-br").innerHTML = `W ${Math.round(viewport.voi.windowWidth)} L ${Math.round(viewport.voi.windowCenter)}<br>Zoom ${(viewport.scale * 100).toFixed(0)}%`;
  }

  function setVoi(ch, wc, ww) {
    S.voi[ch] = { wc, ww: Math.max(1, ww) };
    if (baseChannel() === ch) {
      const vp = cornerstone.getViewport(el);
      if (vp) { vp.voi.windowCenter = wc; vp.voi.windowWidth = Math.max(1, ww); cornerstone.setViewport(el, vp); }
    }
  }

  let mrStats = null;
  function mrPercentiles() {
    if (mrStats) return mrStats;
    const vol = LLVolume.getVolume(studyId, "mr");
    if (!vol) return null;
    // Percentiles of the non-zero voxels of a sample. Enhancing lesions are the brightest
    // and rarest voxels: the top of the window must reach them, or they vanish in the white.
    const d = vol.data; const step = Math.max(1, Math.floor(d.length / 300000)); const vals = [];
    for (let i = 0; i < d.length; i += step) if (d[i] !== 0) vals.push(d[i]);
    if (!vals.length) return null;
    vals.sort((a, b) => a - b);
    const q = (f) => vals[Math.min(vals.length - 1, Math.floor(vals.length * f))];
    mrStats = { p1: q(0.01), p50: q(0.5), p90: q(0.9), p999: q(0.999) };
    return mrStats;
  }
  function autoWindowMR() {
    const p = mrPercentiles();
    if (!p) return null;
    const lo = p.p1, hi = Math.max(p.p999, p.p90 * 1.25);
    return { wc: (lo + hi) / 2, ww: Math.max(1, hi - lo) };
  }
  function contrastWindowMR() {
    const p = mrPercentiles();
    if (!p) return null;
    const lo = p.p50, hi = Math.max(p.p999, p.p90 * 1.25);
    return { wc: (lo + hi) / 2, ww: Math.max(1, hi - lo) };
  }

  function renderPresets() {
    const box = $("presets");
    const ch = baseChannel();
    let items;
    if (ch === "ct") items = Object.entries(CT_PRESETS).map(([k, v]) => [k, () => setVoi("ct", v[0], v[1])]);
    else items = [["Auto", () => { const w = autoWindowMR(); if (w) setVoi("mr", w.wc, w.ww); }],
      ["Enhancement", () => { const w = contrastWindowMR(); if (w) setVoi("mr", w.wc, w.ww); }]];
    if (S.channel === "fused") items = items.concat(Object.entries(CT_PRESETS).filter(([k]) => k === "Bone" || k === "Brain")
      .map(([k, v]) => [`CT ${k.toLowerCase()}`, () => { S.fused.setWindow(v[0], v[1]); redraw(); }]));
    box.innerHTML = "";
    items.forEach(([label, fn]) => {
      const b = document.createElement("button"); b.textContent = label; b.className = "small";
      b.addEventListener("click", () => { fn(); el.focus(); });
      box.appendChild(b);
    });
  }

  async function loadCT() {
    $("load-state").textContent = "loading CT…";
    try {
      await LLVolume.loadVolume(studyId, "ct");
      $("load-state").textContent = "";
      redraw();
    } catch (e) {
      $("load-state").textContent = "";
      LL.toast(`CT is not available: ${e.message}`, "bad");
    }
  }

  function setChannel(ch) {
    S.channel = ch;
    document.querySelectorAll("#channel-seg button").forEach((b) => b.classList.toggle("on", b.dataset.channel === ch));
    $("blend-row").hidden = ch !== "fused";
    if (ch !== "mr" && !LLVolume.getVolume(studyId, "ct")) loadCT().then(() => show(S.z));
    renderPresets();
    show(S.z);
  }

  // ---------------------------------------------------------------- lesions panel
  function allLesions() {
    const list = S.lesions.map((l) => ({ ...l }));
    for (const l of S.localLesions.values()) list.push({ ...l });
    for (const l of list) {
      l.localVolume = S.editor ? S.editor.volumeMm3(l.label) : l.volume_mm3;
      l.changed = S.editor && l.volume_mm3 != null && Math.abs(l.localVolume - l.volume_mm3) > 1e-6;
    }
    return list;
  }
  function sortedLesions() {
    const list = allLesions();
    list.sort((a, b) => {
      const va = a.localVolume != null ? a.localVolume : a.volume_mm3 || 0;
      const vb = b.localVolume != null ? b.localVolume : b.volume_mm3 || 0;
      return S.sortAsc ? va - vb || a.label - b.label : vb - va || a.label - b.label;
    });
    return list;
  }
  function lesionByLabel(label) { return allLesions().find((l) => l.label === label) || null; }

  function decisionBadge(l) {
    let d = l.decision || "pending";
    if (l.local) d = "added";
    const unsaved = l.local || l.changed;
    return `<span class="badge dec-${esc(d)}">${esc(d)}</span>${unsaved ? ' <span class="badge unsaved" title="Edited here, not saved yet">unsaved</span>' : ""}`;
  }

  function renderLesions() {
    const list = sortedLesions();
    const ol = $("lesion-list");
    $("l-count").textContent = `(${list.length})`;
    $("sort-dir").innerHTML = (S.sortAsc ? "smallest first" : "largest first") + " &#8645;";
    const pending = list.filter((l) => !l.local && (l.decision || "pending") === "pending").length;
    $("l-summary").textContent = !list.length ? "No lesions proposed. Add any you see with + New lesion."
      : pending ? `${pending} of ${list.length} awaiting a decision` : "Every lesion has a decision.";
    ol.innerHTML = list.map((l, i) => {
      const vol = l.localVolume != null ? l.localVolume : l.volume_mm3;
      const small = vol != null && vol < 100;
      const gone = S.editor && (l.localVolume || 0) === 0;
      return `<li class="lesion ${l.label === S.selected ? "selected" : ""} ${gone ? "gone" : ""}" data-label="${l.label}" tabindex="-1">
        <span class="swatch" style="background:${LLOverlay.labelCss(l.label)}"></span>
        <span class="rank">${i + 1}</span>
        <span class="lname">Lesion ${l.label}${small ? ' <span class="badge small-lesion" title="Under 100 mm³: the kind that gets missed">small</span>' : ""}</span>
        <span class="vol num" data-vol="${vol == null ? "" : vol}">${gone ? "erased" : fmtVol(vol)}</span>
        <span class="metrics muted">${l.local ? "drawn here" : `p ${fmtNum(l.mean_prob, 2)} · Δ ${fmtNum(l.disagreement, 2)}`}</span>
        <span class="dec">${decisionBadge(l)}</span>
      </li>`;
    }).join("");
    renderTicks();
    updateSelectedActions(); updateApprove();
  }

  /** Where the lesions are along the slice slider: a small lesion is easy to scroll past. */
  function renderTicks() {
    const box = $("slice-ticks");
    if (!box || !S.shape) return;
    const D = Math.max(1, S.shape[0] - 1);
    box.innerHTML = allLesions().filter((l) => l.largest_slice != null && !(S.editor && l.localVolume === 0))
      .map((l) => `<i class="${l.decision === "rejected" ? "rejected" : ""}" title="Lesion ${l.label}" style="left:${(100 * l.largest_slice / D).toFixed(2)}%;background:${LLOverlay.labelCss(l.label)}"></i>`).join("");
  }

  function selectLesion(label, { jump = true } = {}) {
    S.selected = label;
    S.overlay.setSelected(label);
    document.querySelectorAll("#lesion-list li").forEach((li) => li.classList.toggle("selected", Number(li.dataset.label) === label));
    const li = document.querySelector(`#lesion-list li[data-label="${label}"]`);
    if (li) li.scrollIntoView({ block: "nearest" });
    if (jump) jumpTo(label);
    else redraw();
    updateSelectedActions();
  }

  function jumpTo(label) {
    const l = lesionByLabel(label);
    if (!l || !S.shape) return;
    let z = l.largest_slice, centre = null;
    const edited = l.local || l.changed;
    if ((z == null || edited) && S.editor) { const zz = S.editor.largestSlice(label); if (zz >= 0) z = zz; }
    if (z == null && l.centroid_vox) z = Math.round(l.centroid_vox[0]);
    if (z == null) return;
    if (S.editor) centre = S.editor.centreOn(label, z);
    if (!centre && l.bbox) centre = [(l.bbox[1] + l.bbox[4]) / 2, (l.bbox[2] + l.bbox[5]) / 2];
    if (!centre && l.centroid_vox) centre = [l.centroid_vox[1], l.centroid_vox[2]];
    show(z);
    // A ring around the selected lesion: a 20 mm³ lesion is a few pixels wide on screen.
    if (centre) {
      let r = 4, z0 = z, z1 = z + 1;
      if (l.bbox && !edited) {
        r = Math.max(l.bbox[4] - l.bbox[1], l.bbox[5] - l.bbox[2]) / 2 + 2;
        z0 = l.bbox[0]; z1 = l.bbox[3];
      }
      S.selMark = { label, y: centre[0], x: centre[1], r, z0, z1 };
    }
    if (centre) {
      const vp = cornerstone.getViewport(el);
      if (vp) {
        const [, H, W] = S.shape;
        vp.translation = { x: W / 2 - centre[1], y: H / 2 - centre[0] };
        cornerstone.setViewport(el, vp);
      }
    }
  }

  function step(dir) {
    const list = sortedLesions();
    if (!list.length) return;
    const i = list.findIndex((l) => l.label === S.selected);
    const j = i < 0 ? (dir > 0 ? 0 : list.length - 1) : (i + dir + list.length) % list.length;
    selectLesion(list[j].label);
  }

  function updateSelectedActions() {
    const l = S.selected ? lesionByLabel(S.selected) : null;
    const on = canEdit() && !!l;
    const frozen = selectedRejected();
    const erased = !!(l && S.editor && l.localVolume === 0);
    $("accept").disabled = !on || !!(l && l.local) || erased;
    $("reject").disabled = !on || !!(l && l.local);
    $("delete-lesion").disabled = !on || frozen;
    document.querySelectorAll('[data-tool="brush"], [data-tool="eraser"]').forEach((b) => { b.disabled = !canEdit() || frozen; });
    $("tool-hint").textContent = canEdit() && frozen ? `Lesion ${S.selected} is rejected: accept it first to edit its contour.` : "";
    if (frozen && (S.tool === "brush" || S.tool === "eraser")) setTool("navigate");
    S.overlay.setRejected(rejectedLabels());
  }

  /** Store a decision on the server and in the page (throws on refusal). */
  async function sendDecision(lesion, decision) {
    const upd = await LL.patch(`/api/studies/${studyId}/lesions/${lesion.id}/`, { decision });
    const i = S.lesions.findIndex((x) => x.id === lesion.id);
    if (i >= 0) S.lesions[i] = { ...S.lesions[i], ...(upd || { decision }) };
    renderLesions(); redraw();
    return (upd && upd.decision) || decision;
  }

  async function decide(decision) {
    const l = S.selected ? lesionByLabel(S.selected) : null;
    if (!l || l.local || !canEdit()) return;
    if (decision !== "rejected" && S.editor && l.localVolume === 0) {
      LL.toast(`Lesion ${l.label} has no voxels: Undo brings it back, or draw it again.`, "warn", 4000);
      return;
    }
    // Unsaved edits are saved first, so that a decision never races an edit.
    if (S.editor.dirty && !(await save({ quiet: true }))) return;
    const from = l.decision || "pending";
    try {
      const stored = await sendDecision(l, decision);
      S.history.recordDecision(l, from, stored);
      updateHistoryButtons();
      LL.toast(`Lesion ${l.label} ${stored}`, stored === "rejected" ? "warn" : "ok", 1500);
      // Move on to the next lesion still waiting for a decision.
      const next = sortedLesions().find((x) => !x.local && (x.decision || "pending") === "pending");
      if (next) selectLesion(next.label);
    } catch (e) { handleWriteError(e, "record the decision"); }
  }

  /** Undo (-1) or redo (+1) the last edit or decision. */
  async function historyStep(dir) {
    if (!canEdit() || !S.history) return;
    try {
      const entry = dir < 0 ? await S.history.undo() : await S.history.redo();
      if (entry && entry.kind === "decision") LL.toast(`Lesion ${entry.label}: ${dir < 0 ? "decision undone" : "decision redone"}`, "info", 1500);
    } catch (e) { handleWriteError(e, dir < 0 ? "undo" : "redo"); }
    updateHistoryButtons(); renderLesions(); redraw();
  }

  // ---------------------------------------------------------------- editing
  function setTool(t) {
    if ((t === "brush" || t === "eraser") && !canEdit()) return;
    if ((t === "brush" || t === "eraser") && selectedRejected()) {
      LL.toast(`Lesion ${S.selected} is rejected: accept it first to edit its contour.`, "warn", 3000);
      return;
    }
    S.tool = t;
    document.querySelectorAll(".toolbar [data-tool]").forEach((b) => b.classList.toggle("on", b.dataset.tool === t));
    el.dataset.tool = t;
    if (t === "navigate") S.cursor = null;
    redraw();
  }

  function newLesion() {
    if (!canEdit()) return;
    let label = S.editor.maxLabel();
    for (const l of S.lesions) label = Math.max(label, l.label);
    for (const l of S.localLesions.values()) label = Math.max(label, l.label);
    label += 1;
    S.localLesions.set(label, { label, local: true, decision: "added", volume_mm3: null });
    renderLesions();
    selectLesion(label, { jump: false });
    setTool("brush");
    LL.toast(`Lesion ${label}: paint it with the brush`, "info", 2500);
  }

  function deleteLesion() {
    if (!canEdit() || !S.selected || selectedRejected()) return;
    const label = S.selected;
    const ch = S.editor.deleteLabel(label);
    if (!ch && S.localLesions.has(label)) { S.localLesions.delete(label); S.selected = 0; renderLesions(); return; }
    LL.toast(`Lesion ${label} erased. Save to record it; Undo brings it back.`, "warn", 3000);
  }

  function onEdit(ch, kind) {
    if (kind === "do" && S.history) S.history.recordEdit(ch);
    for (const z of ch.slices) S.overlay.touchSlice(z);
    renderLesions(); updateHistoryButtons(); updateApprove(); redraw();
  }

  function updateHistoryButtons() {
    const on = canEdit();
    $("undo").disabled = !on || !S.history || !S.history.canUndo;
    $("redo").disabled = !on || !S.history || !S.history.canRedo;
    const dirty = S.editor && S.editor.dirty;
    $("save").disabled = !on || !dirty;
    $("dirty").textContent = dirty ? "unsaved edits" : S.editor ? "all saved" : "";
    $("dirty").classList.toggle("warn", !!dirty);
  }

  // pointer interaction on the viewport ------------------------------------------
  let drag = null;
  function imagePoint(ev) {
    const p = cornerstone.pageToPixel(el, ev.pageX, ev.pageY);
    return [p.y - 0.5, p.x - 0.5];
  }
  el.addEventListener("mousedown", (ev) => {
    if (!S.shape) return;
    el.focus();
    ev.preventDefault();
    const vp = cornerstone.getViewport(el);
    const paint = ev.button === 0 && (S.tool === "brush" || S.tool === "eraser") && canEdit() && !ev.shiftKey && !selectedRejected();
    if (paint) {
      if (!S.selected) { if (S.tool === "eraser") return; newLesion(); }
      const p = imagePoint(ev);
      S.editor.begin(S.selected, S.tool);
      S.editor.dab(S.z, p[0], p[1], S.radiusMm, S.tool === "eraser");
      drag = { mode: "paint", last: p, z: S.z };
      S.overlay.touchSlice(S.z); redraw();
      return;
    }
    const mode = ev.button === 2 || ev.button === 1 || ev.shiftKey ? "pan" : ev.ctrlKey ? "zoom" : "wl";
    drag = { mode, x: ev.clientX, y: ev.clientY, vp: JSON.parse(JSON.stringify(vp)) };
  });
  window.addEventListener("mousemove", (ev) => {
    if (!S.shape) return;
    if (S.tool === "brush" || S.tool === "eraser") {
      const r = el.getBoundingClientRect();
      const inside = ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
      S.cursor = inside ? imagePoint(ev) : null;
      if (!drag) redraw();
    }
    if (!drag) return;
    if (drag.mode === "paint") {
      const p = imagePoint(ev);
      S.editor.line(drag.z, drag.last, p, S.radiusMm, S.tool === "eraser");
      drag.last = p;
      S.overlay.touchSlice(drag.z); redraw();
      return;
    }
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    const vp = cornerstone.getViewport(el);
    if (drag.mode === "pan") {
      vp.translation = { x: drag.vp.translation.x + dx / vp.scale, y: drag.vp.translation.y + dy / vp.scale };
    } else if (drag.mode === "zoom") {
      vp.scale = Math.max(0.1, Math.min(20, drag.vp.scale * Math.exp(-dy / 200)));
    } else {
      const ww0 = drag.vp.voi.windowWidth, wc0 = drag.vp.voi.windowCenter;
      const k = Math.max(1, ww0) / 300;
      vp.voi.windowWidth = Math.max(1, ww0 + dx * k);
      vp.voi.windowCenter = wc0 + dy * k;
      S.voi[baseChannel()] = { wc: vp.voi.windowCenter, ww: vp.voi.windowWidth };
      S.userWindowed = true;
    }
    cornerstone.setViewport(el, vp);
  });
  window.addEventListener("mouseup", () => {
    if (!drag) return;
    if (drag.mode === "paint") S.editor.end();
    drag = null;
  });
  el.addEventListener("mouseleave", () => { if (S.cursor) { S.cursor = null; redraw(); } });
  el.addEventListener("wheel", (ev) => {
    if (!S.shape) return;
    ev.preventDefault();
    if (ev.ctrlKey || ev.metaKey) {
      const vp = cornerstone.getViewport(el);
      vp.scale = Math.max(0.1, Math.min(20, vp.scale * (ev.deltaY < 0 ? 1.1 : 1 / 1.1)));
      cornerstone.setViewport(el, vp);
    } else {
      show(S.z + (ev.deltaY > 0 ? -1 : 1));
    }
  }, { passive: false });

  document.addEventListener("keydown", (ev) => {
    if (ev.target.matches("input[type=search], input[type=text], textarea") || document.querySelector("dialog[open]")) return;
    const k = ev.key;
    const mod = ev.ctrlKey || ev.metaKey;
    if (mod && (k === "z" || k === "Z")) { ev.preventDefault(); historyStep(ev.shiftKey ? 1 : -1); return; }
    if (mod && (k === "y" || k === "Y")) { ev.preventDefault(); historyStep(1); return; }
    if (mod && (k === "s" || k === "S")) { ev.preventDefault(); save(); return; }
    if (mod || ev.altKey) return;
    const map = {
      ArrowUp: () => show(S.z + 1), ArrowDown: () => show(S.z - 1),
      PageUp: () => show(S.z + 5), PageDown: () => show(S.z - 5),
      Home: () => show(S.shape[0] - 1), End: () => show(0),
      n: () => step(1), "]": () => step(1), p: () => step(-1), "[": () => step(-1),
      a: () => decide("accepted"), r: () => decide("rejected"), x: () => decide("rejected"),
      b: () => setTool("brush"), e: () => setTool("eraser"), v: () => setTool("navigate"),
      o: () => toggleOverlay(), "+": () => zoomBy(1.25), "=": () => zoomBy(1.25), "-": () => zoomBy(0.8), m: () => setChannel("mr"), c: () => setChannel("ct"), f: () => setChannel("fused"),
      0: () => resetView(),
    };
    const fn = map[k] || map[k.toLowerCase && k.toLowerCase()];
    if (fn && !(ev.target.matches("input[type=range]") && k.startsWith("Arrow") && ev.target.id !== "slice")) {
      ev.preventDefault(); fn();
    }
  });

  function toggleOverlay(force) {
    S.overlay.visible = force === undefined ? !S.overlay.visible : force;
    $("overlay-on").checked = S.overlay.visible;
    redraw();
  }
  function resetView() {
    cornerstone.fitToWindow(el);
    const ch = baseChannel();
    if (ch === "mr") { const w = autoWindowMR(); if (w) setVoi("mr", w.wc, w.ww); }
    else setVoi("ct", CT_PRESETS.Brain[0], CT_PRESETS.Brain[1]);
    redraw();
  }

  // ---------------------------------------------------------------- saving
  function quoteEtag(e) { if (e == null) return null; const s = String(e); return s.startsWith('"') || s.startsWith("W/") ? s : `"${s}"`; }

  async function save({ quiet = false } = {}) {
    if (!canEdit() || !S.editor.dirty) return true;
    if (S.saving) return S.saving;
    $("save").disabled = true; $("dirty").textContent = "saving…";
    S.saving = (async () => {
      const t0 = performance.now();
      const snapshot = S.editor.undoStack.length;
      try {
        const gz = await LL.gzip(S.mask);
        const headers = { "Content-Type": "application/octet-stream", "If-Match": S.etag, "X-Reason": "edited in the viewer" };
        if (gz) headers["Content-Encoding"] = "gzip";
        const resp = await fetch(`/api/studies/${studyId}/mask/`, {
          method: "PUT", credentials: "same-origin", body: gz || S.mask,
          headers: { ...LL.headers(), ...headers, "X-CSRFToken": LL.csrfToken(), Accept: "application/json" },
        });
        let body = null; try { body = await resp.json(); } catch (e) { body = null; }
        if (resp.status === 409 && body && body.code === "stale_revision") { showConflict(body); return false; }
        if (!resp.ok) throw new LL.ApiError(resp.status, body);
        S.lastSaveMs = performance.now() - t0;
        const rev = (body && body.revision) || {};
        S.etag = quoteEtag(rev.etag || resp.headers.get("ETag") || rev.number);
        if (S.study) S.study.revision = rev;
        if (body && Array.isArray(body.lesions)) S.lesions = body.lesions;
        else await loadLesions();
        for (const label of [...S.localLesions.keys()]) if (S.lesions.some((l) => l.label === label) || !S.editor.counts.get(label)) S.localLesions.delete(label);
        // Edits made while the request was in flight stay unsaved.
        S.editor.savedDepth = snapshot;
        S.overlay.touchAll();
        renderRevision(); renderLesions(); updateHistoryButtons(); redraw();
        if (!quiet) LL.toast(`Saved as revision ${rev.number != null ? rev.number : ""}`, "ok", 2000);
        return true;
      } catch (e) {
        handleWriteError(e, "save the mask");
        return false;
      } finally {
        S.saving = null; updateHistoryButtons(); updateApprove();
      }
    })();
    return S.saving;
  }

  function showConflict(body) {
    S.conflict = body;
    let who = userName(body.changed_by) || "another user";
    if (who === LL.me.username) who = `${who} (you, in another window or tab)`;
    const cur = body.current_revision;
    const revNo = cur && typeof cur === "object" ? cur.number : cur;
    $("conflict-text").innerHTML = `<strong>${esc(who)}</strong> saved revision ${esc(revNo == null ? "?" : revNo)} at ${esc(fmtDate(body.changed_at, true))}` +
      (body.reason ? ` (“${esc(body.reason)}”)` : "") + ` while you were editing. Your ${S.editor.unsavedChanges().length} unsaved edit(s) were not saved.`;
    root.dataset.conflict = "1";
    showBanner(`Not saved: ${who} saved a newer revision. Your edits are kept here.`, "warn");
    $("conflict-what").textContent = "Looking at what they changed…";
    const dlg = $("conflict");
    if (dlg.showModal) dlg.showModal(); else dlg.setAttribute("open", "");
    S.theirs = fetchTheirs();
    S.theirs.then((t) => { $("conflict-what").innerHTML = describeTheirChanges(t.mask); })
      .catch((e) => { $("conflict-what").textContent = `(Could not load their revision: ${e.message})`; });
  }

  async function fetchTheirs() {
    const { buffer, headers } = await LL.getBinary(`/api/studies/${studyId}/mask/`);
    return { mask: new Uint16Array(buffer), etag: quoteEtag(headers.get("ETag") || headers.get("X-Revision")) };
  }

  /** Their revision against the one my edits started from: which lesions they added,
   * changed or erased (my base = my mask with my unsaved changes undone). */
  function describeTheirChanges(theirs) {
    const base = S.mask.slice();
    const mine = S.editor.unsavedChanges();
    for (let c = mine.length - 1; c >= 0; c--) {
      const ch = mine[c];
      for (let k = ch.idx.length - 1; k >= 0; k--) base[ch.idx[k]] = ch.old[k];
    }
    const inBase = new Map(), inTheirs = new Map(), touched = new Set();
    for (let i = 0; i < base.length; i++) {
      const a = base[i], b = theirs[i];
      if (a) inBase.set(a, (inBase.get(a) || 0) + 1);
      if (b) inTheirs.set(b, (inTheirs.get(b) || 0) + 1);
      if (a !== b) { if (a) touched.add(a); if (b) touched.add(b); }
    }
    const added = [], edited = [], erased = [];
    for (const l of [...touched].sort((x, y) => x - y)) {
      if (!inBase.has(l)) added.push(l); else if (!inTheirs.has(l)) erased.push(l); else edited.push(l);
    }
    const part = (name, list) => (list.length ? `${name} lesion${list.length > 1 ? "s" : ""} ${list.join(", ")}` : "");
    const parts = [part("added", added), part("changed", edited), part("erased", erased)].filter(Boolean);
    return parts.length ? `They ${parts.join("; ")}.` : "Their revision draws the same lesions as yours started from.";
  }

  async function rebaseOnTheirs() {
    let mine = S.editor.unsavedChanges();
    const fetched = await (S.theirs || fetchTheirs());
    S.theirs = null;
    const theirs = fetched.mask;
    S.etag = fetched.etag;
    // A lesion I drew may have the same new label as one they drew: give mine a fresh
    // label, or the two would merge into one lesion.
    const theirLabels = new Set();
    for (let i = 0; i < theirs.length; i++) if (theirs[i]) theirLabels.add(theirs[i]);
    let top = Math.max(0, ...theirLabels, ...S.editor.counts.keys(), ...S.lesions.map((l) => l.label));
    const remap = new Map();
    for (const label of [...S.localLesions.keys()]) {
      if (theirLabels.has(label)) remap.set(label, ++top);
    }
    if (remap.size) {
      mine = mine.map((ch) => ({ ...ch, label: remap.get(ch.label) || ch.label, neu: ch.neu.map((v) => remap.get(v) || v) }));
      for (const [from, to] of remap) {
        const l = S.localLesions.get(from);
        S.localLesions.delete(from);
        S.localLesions.set(to, { ...l, label: to });
        if (S.selected === from) S.selected = to;
      }
      S.overlay.setSelected(S.selected);
    }
    S.history = newHistory();
    S.editor.rebase(theirs, mine);
    S.editor.savedDepth = 0;
    await Promise.all([loadLesions(), reloadDetail()]);
    S.overlay.touchAll();
    renderRevision(); renderLesions(); updateHistoryButtons(); redraw();
    hideBanner(); delete root.dataset.conflict;
    const moved = remap.size ? ` Your new lesion${remap.size > 1 ? "s were" : " was"} renumbered (${[...remap].map(([a, b]) => `${a}→${b}`).join(", ")}) so as not to merge with theirs.` : "";
    LL.toast(`Their revision is loaded and your edits are applied on top.${moved} Check, then save.`, "info", 7000);
  }
  $("conflict-rebase").addEventListener("click", async () => {
    $("conflict").close();
    try { await rebaseOnTheirs(); } catch (e) { LL.toast(`Could not load their revision: ${e.message}`, "bad"); }
  });
  $("conflict-keep").addEventListener("click", () => { $("conflict").close(); });

  function handleWriteError(e, what) {
    if (e.code === "leased") {
      S.keeper.poll();  // the lease went elsewhere: the keeper turns this tab read-only
      showBanner(`Read-only: ${e.message}`, "warn");
    } else if (e.code === "lesion_rejected" || e.code === "empty_lesions") {
      LL.toast(e.message, "warn", 6000);
    } else if (e.code === "decisions_changed") {
      LL.toast(e.message, "warn", 8000);
      loadLesions().then(() => { S.history.reseed(); renderLesions(); refreshEditability(); redraw(); }).catch(() => {});
    } else if (e.code === "undecided_lesions") {
      LL.toast(e.message, "warn");
    } else {
      LL.toast(`Could not ${what}: ${e.message}`, "bad", 6000);
    }
  }

  // ---------------------------------------------------------------- approval
  function updateApprove() {
    const list = allLesions();
    const pending = list.filter((l) => !l.local && (l.decision || "pending") === "pending" && !(S.editor && l.localVolume === 0 && l.changed));
    const on = canEdit() && pending.length === 0 && !S.saving;
    $("approve").disabled = !on;
    let hint = "";
    if (approved()) hint = "";
    else if (!roleCanEdit) hint = "Read-only for your role.";
    else if (!S.leaseOk) hint = S.keeper.state.yours ? "Read-only: you are editing this study in another tab." : "Read-only while someone else reviews this study.";
    else if (pending.length) hint = `Decide on ${pending.length} more lesion${pending.length === 1 ? "" : "s"} to approve.`;
    else if (S.editor && S.editor.dirty) hint = "Approving saves your edits first.";
    $("approve-hint").textContent = hint;
  }

  $("approve").addEventListener("click", async () => {
    if (!canEdit()) return;
    $("approve").disabled = true;
    if (S.editor.dirty) { const ok = await save({ quiet: true }); if (!ok) { updateApprove(); return; } }
    try {
      // The decisions as shown here: the server refuses if they changed meanwhile.
      const decisions = Object.fromEntries(S.lesions.map((l) => [l.id, l.decision || "pending"]));
      const res = await LL.post(`/api/studies/${studyId}/approve/`, { training_eligible: $("eligible").checked, decisions });
      await reloadDetail();
      if (res && res.status) S.study.status = res.status;
      S.keeper.state = { ...S.keeper.state, mine: false };  // approval ended the lease
      S.leaseOk = false;
      renderHeader(); refreshEditability();
      LL.toast("Contour approved", "ok");
    } catch (e) { handleWriteError(e, "approve"); updateApprove(); }
  });
  $("reopen").addEventListener("click", async () => {
    try {
      await LL.post(`/api/studies/${studyId}/reopen/`);
      await reloadDetail(); renderHeader(); await S.keeper.take(); S.keeper.start(); refreshEditability();
    } catch (e) { handleWriteError(e, "reopen"); }
  });

  // ---------------------------------------------------------------- lease
  // One lease per tab (lease.js): this tab turns read-only within a poll (2.5 s) of the
  // lease going elsewhere, keeps its unsaved edits, and retakes only when asked.
  S.keeper = new LLLease.LeaseKeeper({
    studyId, leaseSeconds, wanted: () => roleCanEdit && !approved(), onChange: onLeaseChange,
  });
  function onLeaseChange(state, previous) {
    S.leaseOk = state.mine;
    S.leaseHolder = state.mine ? null : state.holder;
    S.lease = state.holder ? { user: state.holder, expires_at: state.expiresAt } : null;
    if (state.mine && !previous.mine) {
      hideBanner();
      // Taking the lease moves a ready study into review; a copy that fell behind while
      // this tab was read-only is brought up to date (unless it holds unsaved edits).
      reloadDetail().then(() => { renderHeader(); return refreshStaleMask(); }).catch(() => {});
    } else if (!state.mine && roleCanEdit && !approved()) {
      showLeaseBanner(state);
    }
    refreshEditability(); renderLease();
  }
  function showLeaseBanner(state) {
    const unsaved = S.editor ? S.editor.unsavedChanges().length : 0;
    const kept = unsaved ? ` Your ${unsaved} unsaved edit${unsaved === 1 ? " is" : "s are"} kept in this tab: retake the study to save ${unsaved === 1 ? "it" : "them"}.` : "";
    if (state.lost) {
      const where = state.yours ? "in another tab or window of yours" : state.holder ? `by ${state.holder}` : "nowhere (it expired)";
      const text = state.holder ? `You lost the review lease: this study is now being edited ${where}. This tab is read-only.${kept}` : `Your review lease expired. This tab is read-only.${kept}`;
      showBanner(text, "warn", state.holder && !state.yours ? null : { label: state.yours ? "Edit here instead" : "Retake the study", fn: () => retake(state.yours) });
    } else if (state.yours) {
      showBanner("This study is open for editing in another tab or window of yours. You can look here, but not edit.", "info", { label: "Edit here instead", fn: () => retake(true) });
    } else if (state.holder) {
      showBanner(`Being reviewed by ${state.holder}. You can look, but not edit, until they finish.`, "info");
    } else if (state.error) {
      showBanner(`Could not take the review lease: ${state.error.message}`, "warn");
    }
  }
  async function retake(takeOver) {
    if (await S.keeper.take({ takeOver })) LL.toast(S.editor && S.editor.dirty ? "You are reviewing again. Save to keep your edits." : "You are reviewing again.", "ok", 4000);
  }
  /** After (re)gaining the lease: decisions made elsewhere meanwhile are loaded, and the
   * current revision too when this tab's copy is older and holds no unsaved edits. */
  async function refreshStaleMask() {
    if (!S.editor) return;
    const rev = S.study && S.study.revision ? Number(S.study.revision.number) : null;
    const stale = rev != null && quoteEtag(rev) !== S.etag;
    if (stale && !S.editor.dirty) await Promise.all([loadMask(), loadLesions()]);
    else { await loadLesions(); S.history.reseed(); }
    renderLesions(); refreshEditability(); redraw();
  }
  function renderLease() {
    const box = $("c-lease");
    if (approved()) { box.innerHTML = ""; return; }
    if (S.leaseOk) box.innerHTML = `<span class="lease mine" title="Renewed every ${Math.round(leaseSeconds / 3)} s while this tab is open">You are reviewing</span>`;
    else if (S.leaseHolder) box.innerHTML = `<span class="lease other">Being reviewed by ${esc(S.keeper.state.yours ? "you, in another tab" : S.leaseHolder)}</span>`;
    else if (!roleCanEdit) box.innerHTML = '<span class="lease ro">Read-only</span>';
    else box.innerHTML = "";
  }
  window.addEventListener("pagehide", () => S.keeper.releaseOnExit());
  /** Stop renewing and give the lease back, and wait for it (tests, before teardown). */
  S.shutdown = () => S.keeper.shutdown();
  window.addEventListener("beforeunload", (ev) => {
    if (S.editor && S.editor.dirty && canEdit()) { ev.preventDefault(); ev.returnValue = ""; }
  });

  // ---------------------------------------------------------------- header
  function showBanner(text, kind, action = null) {
    const b = $("banner"); b.textContent = text; b.className = "banner " + kind; b.hidden = false;
    if (action) {
      const btn = document.createElement("button");
      btn.id = "banner-action"; btn.className = "small"; btn.textContent = action.label;
      btn.addEventListener("click", action.fn);
      b.append(" ", btn);
    }
  }
  function hideBanner() { $("banner").hidden = true; }

  function renderRevision() {
    const r = (S.study && S.study.revision) || null;
    $("c-revision").innerHTML = r ? `Revision <strong>${esc(r.number)}</strong> · ${esc(userName(r.author) || "model")} · ${esc(fmtDate(r.created_at))}` : "";
  }
  function renderHeader() {
    const s = S.study;
    $("c-patient").textContent = s.patient_label || `Study ${s.id}`;
    $("c-desc").textContent = s.description || "";
    $("c-status").innerHTML = statusBadge(s.status) + (s.registration_ok === false ? ` <span class="badge warn" title="${esc(s.registration_message || (s.registration && s.registration.message) || "Check the MR–CT registration")}">check registration</span>` : "");
    const mv = s.model_version;
    $("c-model").innerHTML = mv ? (LL.me.canAudit ? `<a href="/audit/models/${mv.id}/">${esc(mv.name)}</a>` : esc(mv.name)) : "no model (manual)";
    renderRevision();
    const done = approved();
    $("reopen").hidden = !(done && roleCanEdit);
    $("approved-note").hidden = !done;
    // Exports for the planning system: RTSTRUCT / SEG reference the uploaded CT slices.
    $("export-box").hidden = !done;
    for (const fmt of ["rtstruct", "seg", "nifti"]) $(`export-${fmt}`).href = `/api/studies/${studyId}/export/${fmt}`;
    if (done) $("approved-note").innerHTML = `Approved by <strong>${esc(userName(s.approved_by))}</strong> ${esc(fmtDate(s.approved_at))}${s.training_eligible ? " · used for retraining" : ""}`;
    $("eligible").checked = s.training_eligible == null ? true : (done ? !!s.training_eligible : $("eligible").checked);
    renderLease();
    document.title = `${s.patient_label || "Case " + s.id} · LesionLoop`;
  }

  async function reloadDetail() { S.study = await LL.get(`/api/studies/${studyId}/`); }
  async function loadLesions() {
    const data = await LL.get(`/api/studies/${studyId}/lesions/?ordering=volume_mm3`);
    S.lesions = Array.isArray(data) ? data : data.results || [];
  }

  function newHistory() {
    return new LLHistory.ReviewHistory({ editor: S.editor, lesions: () => S.lesions, decide: sendDecision, save: () => save({ quiet: true }) });
  }

  async function loadMask() {
    const { buffer, headers } = await LL.getBinary(`/api/studies/${studyId}/mask/`);
    const mask = new Uint16Array(buffer);
    S.mask = mask;
    S.etag = quoteEtag(headers.get("ETag") || (S.study.revision && (S.study.revision.etag || S.study.revision.number)));
    S.editor = new LLTools.MaskEditor(mask, S.shape, S.spacing, { onChange: onEdit });
    S.history = newHistory();
    S.overlay.setMask(mask, S.shape);
    S.overlay.setSelected(S.selected);
  }

  // ---------------------------------------------------------------- controls
  document.querySelectorAll(".toolbar [data-tool]").forEach((b) => b.addEventListener("click", () => { setTool(b.dataset.tool); el.focus(); }));
  document.querySelectorAll("#channel-seg button").forEach((b) => b.addEventListener("click", () => { setChannel(b.dataset.channel); el.focus(); }));
  $("radius").addEventListener("input", (e) => { S.radiusMm = Number(e.target.value); $("radius-val").textContent = S.radiusMm.toFixed(1) + " mm"; redraw(); });
  $("opacity").addEventListener("input", (e) => { S.overlay.setOpacity(Number(e.target.value) / 100); $("opacity-val").textContent = e.target.value + "%"; redraw(); });
  $("blend").addEventListener("input", (e) => { S.fused.blend = Number(e.target.value) / 100; $("blend-val").textContent = e.target.value + "%"; redraw(); });
  $("overlay-on").addEventListener("change", (e) => toggleOverlay(e.target.checked));
  $("slice").addEventListener("input", (e) => show(Number(e.target.value)));
  $("slice-prev").addEventListener("click", () => show(S.z - 1));
  $("slice-next").addEventListener("click", () => show(S.z + 1));
  $("reset-view").addEventListener("click", resetView);
  const zoomBy = (f) => {
    const vp = cornerstone.getViewport(el);
    if (vp) { vp.scale = Math.max(0.1, Math.min(20, vp.scale * f)); cornerstone.setViewport(el, vp); }
  };
  $("zoom-in").addEventListener("click", () => zoomBy(1.25));
  $("zoom-out").addEventListener("click", () => zoomBy(0.8));
  $("new-lesion").addEventListener("click", newLesion);
  $("undo").addEventListener("click", () => historyStep(-1));
  $("redo").addEventListener("click", () => historyStep(1));
  $("rejected-on").addEventListener("change", (e) => { S.overlay.setRejected(rejectedLabels(), e.target.checked); redraw(); });
  $("save").addEventListener("click", () => save());
  $("accept").addEventListener("click", () => decide("accepted"));
  $("reject").addEventListener("click", () => decide("rejected"));
  $("delete-lesion").addEventListener("click", deleteLesion);
  $("sort-dir").addEventListener("click", () => { S.sortAsc = !S.sortAsc; renderLesions(); });
  $("lesion-list").addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-label]");
    if (li) { selectLesion(Number(li.dataset.label)); el.focus(); }
  });
  window.addEventListener("resize", () => { if (cornerstone.getImage(el)) cornerstone.resize(el, false); });

  // ---------------------------------------------------------------- start
  async function start() {
    cornerstone.enable(el);
    let detail;
    const embedded = document.getElementById("case-initial");
    try {
      if (embedded) {
        // Rendered into the page by the server (same serializers as the API).
        const init = JSON.parse(embedded.textContent);
        detail = init.study;
        S.lesions = init.lesions || [];
      } else {
        const [d] = await Promise.all([LL.get(`/api/studies/${studyId}/`), loadLesions().catch(() => { S.lesions = []; })]);
        detail = d;
      }
    } catch (e) {
      $("loading").textContent = `Could not open this study: ${e.message}`;
      $("loading").classList.add("error");
      return;
    }
    S.study = detail;
    const grid = detail.grid || {};
    S.shape = grid.shape_dhw; S.spacing = grid.spacing_mm; S.origin = grid.origin_xyz_mm;
    renderHeader();
    if (!S.shape || !S.spacing) {
      $("loading").textContent = detail.status === "failed" ? `This study failed: ${detail.status_reason || ""}` : `No images yet (status: ${detail.status}).`;
      return;
    }
    LLVolume.setGeometry(studyId, S.shape, S.spacing);
    $("slice").max = String(S.shape[0] - 1);
    // Open on the smallest lesion: small ones are the ones that get missed.
    const first = sortedLesions()[0];
    S.selected = first ? first.label : 0;
    S.overlay.setSelected(S.selected);
    const z0 = first && first.largest_slice != null ? first.largest_slice : Math.floor(S.shape[0] / 2);
    const mrAll = LLVolume.loadVolume(studyId, "mr");
    const maskP = loadMask().catch((e) => { LL.toast(`No lesion mask: ${e.message}`, "warn"); });
    show(z0);
    renderLesions();
    if (roleCanEdit && !approved()) S.keeper.take().then(() => S.keeper.start());
    else renderLease();
    $("load-state").textContent = "loading all slices…";
    mrAll.then(() => {
      S.allSlicesAt = performance.now();
      performance.mark("ll-all-slices");
      el.dataset.allSlices = "1";
      $("load-state").textContent = "";
      const w = autoWindowMR();
      if (w && !S.userWindowed) setVoi("mr", w.wc, w.ww);
    }).catch((e) => { $("load-state").textContent = `images failed: ${e.message}`; });
    await maskP;
    if (S.editor) {
      el.dataset.maskLoaded = "1";
      refreshEditability(); renderLesions();
      if (S.selected) selectLesion(S.selected);
      else redraw();
    }
    renderPresets();
    refreshEditability();
    el.focus();
  }
  renderPresets();
  start();
})();
