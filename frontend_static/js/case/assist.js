/* Editing faster: the 3D brush switch, *Interpolate* (fill the slices between the slices
 * of a plane where the selected lesion is drawn) and *Click to add* (the server grows a
 * lesion from a clicked voxel, `POST /propose-lesion/`; the page shows the proposal with
 * a dashed outline in every plane, and Accept / Adjust / Discard). Both writes are one
 * MaskEditor change, so one undo step, and follow the brush's rules (background only,
 * the selected / new label only, rejected lesions frozen). Installs on `app`: interpolate,
 * proposeAt, acceptProposal, discardProposal. The geometry is in shapes.js (pure). */
import { interpolateSlices, gapsBetween, decodeRuns } from "./shapes.js";
import { planeShape, planeSpacing, sliceIndex, fromPlane, toPlane } from "./planes.js";
import { nextFreeLabel, unsavedChangedLabels } from "./lesion-data.js";

const LL = window.LL;
const cs = window.cornerstone;
const PROPOSAL_CSS = "rgba(255,214,0,0.95)";

/** What the page says for each code `POST /propose-lesion/` can answer with. */
const PROPOSE_ERRORS = {
  no_lesion_found: (e) => e.message,
  bad_point: () => "That point is outside the volume: click inside the image.",
  bad_radius: (e) => e.message,
  approved: () => "This study is approved: reopen it to add lesions.",
  not_ready: (e) => e.message,
};

/** The slices of `plane` that hold `label`, from one pass over the mask. */
function slicesWith(mask, shape, plane, label) {
  const [, H, W] = shape;
  const ks = new Set();
  for (let i = 0; i < mask.length; i++) {
    if (mask[i] !== label) continue;
    const z = (i / (H * W)) | 0, y = ((i / W) | 0) % H, x = i % W;
    ks.add(sliceIndex(plane, [z, y, x]));
  }
  return [...ks];
}

export function installAssist(app) {
  const { S, $, store } = app;
  const ed = () => S.editor;

  // ---- 3D brush -------------------------------------------------------------------------
  S.brush3d = false;
  $("brush-3d").addEventListener("change", (e) => { S.brush3d = e.target.checked; app.views.redrawAll(); app.focusActive(); });

  // ---- interpolation --------------------------------------------------------------------
  /** Fill the gaps between the drawn slices of the selected lesion in `plane` (one undo step). */
  app.interpolate = (plane = S.active || "axial") => {
    if (!app.canEdit() || !S.selected) return;
    if (app.selectedRejected()) { LL.toast(`Lesion ${S.selected} is rejected: accept it first to edit its contour.`, "warn", 3000); return; }
    const label = S.selected, { mask, shape, spacing } = ed();
    const gaps = gapsBetween(slicesWith(mask, shape, plane, label));
    if (!gaps.length) {
      LL.toast(`Draw lesion ${label} on two ${plane} slices with empty slices between, then Interpolate.`, "warn", 4000);
      return;
    }
    const { rows, cols } = planeShape(plane, shape), sp = planeSpacing(plane, spacing);
    const sliceOf = (k) => {
      const at = ed()._planeIndex(plane, k).at, m = new Uint8Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (mask[at(r, c)] === label) m[r * cols + c] = 1;
      return m;
    };
    const t0 = performance.now();
    ed().begin(label, "interpolate");
    for (const [k0, k1] of gaps) {
      const filled = interpolateSlices(sliceOf(k0), sliceOf(k1), rows, cols, k1 - k0 - 1, sp.row, sp.col);
      filled.forEach((m, j) => {
        const at = ed()._planeIndex(plane, k0 + 1 + j).at, idx = [];
        for (let i = 0; i < m.length; i++) if (m[i]) idx.push(at((i / cols) | 0, i % cols));
        ed().fill(idx);
      });
    }
    const ch = ed().end();
    S.lastInterpolateMs = performance.now() - t0;
    const n = gaps.reduce((s, [a, b]) => s + b - a - 1, 0);
    LL.toast(ch ? `Lesion ${label}: ${n} ${plane} slice${n === 1 ? "" : "s"} interpolated (Undo takes them back).` : "Nothing to fill: the slices between are already drawn or hold other lesions.", ch ? "ok" : "warn", 2500);
  };
  $("interpolate").addEventListener("click", () => { app.interpolate(); app.focusActive(); });

  // ---- click to add ---------------------------------------------------------------------
  S.proposal = null;
  S.proposeRadiusMm = Number($("propose-radius").value) || 15;
  let asked = 0;   // answers to older clicks are dropped

  function showProposal(text, { actions = false, bad = false } = {}) {
    const box = $("proposal");
    box.hidden = !text;
    $("proposal-text").textContent = text || "";
    box.classList.toggle("bad", bad);
    box.dataset.state = !text ? "" : actions ? "shown" : bad ? "error" : "asking";
    for (const id of ["proposal-accept", "proposal-adjust"]) $(id).disabled = !actions;
  }

  /** Ask the server for a lesion grown from voxel (slice k, row, col) of `plane`. */
  app.proposeAt = async (plane, k, row, col) => {
    if (!app.canEdit()) return;
    const [z, y, x] = fromPlane(plane, k, Math.round(row), Math.round(col), S.shape).map(Math.round);
    const mine = ++asked;
    S.proposal = null;
    // The server knows the saved mask only: a lesion painted here and not saved yet is
    // caught here, as the server would catch a saved one.
    const [, H, W] = S.shape, here = ed().mask[z * H * W + y * W + x];
    if (here && ed().dirty) {
      showProposal(`The voxel clicked already belongs to lesion ${here}; click outside the lesions on the mask to add one.`, { bad: true });
      $("proposal").dataset.code = "no_lesion_found";
      app.views.redrawAll();
      return;
    }
    showProposal(`Looking for a lesion within ${S.proposeRadiusMm} mm of (${z}, ${y}, ${x})…`);
    app.views.redrawAll();
    const t0 = performance.now();
    try {
      // Lesions erased here and not saved are free on screen: the server ignores them.
      const ignore = unsavedChangedLabels(app.allLesions());
      const json = { z, y, x, radius_mm: S.proposeRadiusMm, ...(ignore.length ? { ignore_labels: ignore } : {}) };
      const body = await LL.request("POST", LL.urls.proposeLesion(app.studyId), { json });
      if (mine !== asked) return;
      S.proposeMs = performance.now() - t0;
      const indices = decodeRuns(body.runs, body.bbox, S.shape);
      S.proposal = { ...body, click: [z, y, x], indices, slices: voxelsOf(indices) };
      showProposal(`Proposed lesion: ${body.volume_mm3.toFixed(0)} mm³, ${body.longest_axial_diameter_mm.toFixed(1)} mm across (axial), from the ${body.method === "probability" ? "model's probability" : "MR signal"} (${(S.proposeMs / 1000).toFixed(2)} s).`, { actions: true });
      $("proposal").dataset.ms = String(Math.round(S.proposeMs));
    } catch (e) {
      if (mine !== asked) return;
      S.proposeMs = performance.now() - t0;
      const say = PROPOSE_ERRORS[e.code];
      showProposal(say ? say(e) : `Could not propose a lesion: ${e.message}`, { bad: true });
      $("proposal").dataset.code = e.code || "";
    }
    app.views.redrawAll();
  };

  /** The proposal's voxels as (z, y, x) triples, for drawing its sections. */
  function voxelsOf(indices) {
    const [, H, W] = S.shape;
    return indices.map((i) => [(i / (H * W)) | 0, ((i / W) | 0) % H, i % W]);
  }

  /** Paint the proposal as a new lesion (the next free label): one undo step. `adjust`
   * then takes the brush to correct it. */
  app.acceptProposal = ({ adjust = false } = {}) => {
    const p = S.proposal;
    if (!p || !app.canEdit()) return;
    const label = nextFreeLabel([ed().maxLabel()], S.lesions.map((l) => l.label), S.localLesions.keys());
    S.localLesions.set(label, { label, local: true, decision: "added", volume_mm3: null });
    ed().begin(label, "add");
    ed().fill(p.indices);
    const ch = ed().end();
    app.discardProposal();
    if (!ch) {
      S.localLesions.delete(label); store.notify("lesions");
      LL.toast("Nothing to add: the proposal lies on lesions already drawn.", "warn", 3000);
      return;
    }
    app.selectLesion(label, { jump: false });
    app.setTool(adjust ? "brush" : "navigate");
    LL.toast(`Lesion ${label} added${adjust ? ": adjust it with the brush" : ""}. Save to keep it; Undo takes it back.`, "ok", 3000);
  };
  app.discardProposal = () => {
    asked++;
    S.proposal = null;
    showProposal("");
    app.views.redrawAll();
  };
  $("proposal-accept").addEventListener("click", () => { app.acceptProposal(); app.focusActive(); });
  $("proposal-adjust").addEventListener("click", () => { app.acceptProposal({ adjust: true }); app.focusActive(); });
  $("proposal-discard").addEventListener("click", () => { app.discardProposal(); app.focusActive(); });
  $("propose-radius").addEventListener("change", (e) => {
    const r = Number(e.target.value);
    if (!(r > 0 && r <= 50)) { e.target.value = String(S.proposeRadiusMm); LL.toast("The radius is 1 to 50 mm.", "warn", 2500); return; }
    S.proposeRadiusMm = r;
    const p = S.proposal;  // a new radius asks again from the same click
    if (p) { const c = toPlane("axial", p.click, S.shape); app.proposeAt("axial", c.k, c.row, c.col); }
  });
  // A study that turns read-only (lease gone, approved) drops the proposal.
  store.subscribe("editability", () => { if (!app.canEdit() && (S.proposal || !$("proposal").hidden)) app.discardProposal(); });

  // ---- drawing the proposal (after each render of every plane) --------------------------
  for (const view of Object.values(app.views.views)) {
    view.el.addEventListener("cornerstoneimagerendered", (ev) => drawProposal(view, ev));
  }

  function drawProposal(view, ev) {
    const p = S.proposal;
    if (!p) return;
    const k = view.k;
    const cells = new Set();
    for (const v of p.slices) {
      const c = toPlane(view.plane, v, S.shape);
      if (c.k === k) cells.add(c.row * 65536 + c.col);
    }
    if (!cells.size) return;
    const { canvasContext: ctx, enabledElement, viewport } = ev.detail;
    const px = view.pixelScale(viewport);
    ctx.save();
    cs.setToPixelCoordinateSystem(enabledElement, ctx);
    ctx.fillStyle = "rgba(255,214,0,0.22)";
    for (const key of cells) ctx.fillRect(key % 65536, Math.floor(key / 65536), 1, 1);
    ctx.beginPath();
    for (const key of cells) {
      const r = Math.floor(key / 65536), c = key % 65536;
      // An edge wherever the neighbour is outside: the outline of the section.
      if (!cells.has((r - 1) * 65536 + c)) { ctx.moveTo(c, r); ctx.lineTo(c + 1, r); }
      if (!cells.has((r + 1) * 65536 + c)) { ctx.moveTo(c, r + 1); ctx.lineTo(c + 1, r + 1); }
      if (!cells.has(r * 65536 + c - 1)) { ctx.moveTo(c, r); ctx.lineTo(c, r + 1); }
      if (!cells.has(r * 65536 + c + 1)) { ctx.moveTo(c + 1, r); ctx.lineTo(c + 1, r + 1); }
    }
    ctx.lineWidth = 1.5 / Math.min(px.x, px.y);
    ctx.setLineDash([3 / Math.min(px.x, px.y), 2 / Math.min(px.x, px.y)]);
    ctx.strokeStyle = PROPOSAL_CSS;
    ctx.stroke();
    ctx.restore();
  }
}
