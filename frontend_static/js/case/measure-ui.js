/* Measuring on the screen, in every plane: the ruler (drag in ruler mode; one line per
 * plane, on the slice it was drawn on; cleared with Esc or *Clear*; kept with the study
 * for this user: `GET/POST/DELETE /api/studies/{id}/rulers/`, loaded when the case
 * opens, so a reload finds them), the cursor readout
 * (position in mm, patient LPS when the study gives origin and direction, else grid mm;
 * the value under it: MR signal, CT in HU), the orientation letters on each plane's edges,
 * the scale bar that follows zoom, the outline display toggle and the rings around small
 * lesions. The geometry is pure (measure.js, node-tested); this module draws it.
 *
 * Installs on `app`: measure = {drawImage(view, ctx, px, info), drawScreen(view, ctx),
 * clear(), setRuler(on)}; state S.measure = {ruler, lines: {plane: {k, a, b, mm}}, markSmall}.
 * Keys: D ruler on / off, Esc clears the rulers. Mouse handling is its own (a capture
 * listener on each view that takes the left button while the ruler is on), so input.js
 * is unchanged. */
import { distanceMm, voxelToMm, orientationLabels, scaleBar } from "./measure.js";
import { fromPlane, planeShape, planeSpacing } from "./planes.js";
import { getVolume } from "./volume.js";
import { SMALL_MM3 } from "./lesion-data.js";
import { labelCss } from "./overlay.js";
import { typingTarget } from "./input.js";

const cs = window.cornerstone;
const RULER_CSS = "rgba(255,235,90,0.95)";

/** Text in the current fill colour with a dark edge, readable on bright bone or a white
 * lesion fill (a stroked edge: canvas shadows cost a blur per frame, per view). */
function haloText(ctx, text, x, y) {
  const fill = ctx.fillStyle;
  ctx.lineWidth = 3; ctx.lineJoin = "round"; ctx.strokeStyle = "rgba(0,0,0,0.85)";
  ctx.strokeText(text, x, y);
  ctx.fillStyle = fill;
  ctx.fillText(text, x, y);
}

export function installMeasure(app) {
  const { S, $ } = app;
  const { views } = app.views;
  S.measure = { ruler: false, lines: {}, markSmall: true };
  let drag = null;

  // Test hooks on the view element, written only when they change (every frame renders).
  const mark = (el, key, value) => { if (el.dataset[key] !== value) el.dataset[key] = value; };
  const grid = () => (S.study && S.study.grid) || {};
  const canvasPoint = (view, [row, col]) => cs.pixelToCanvas(view.el, { x: col + 0.5, y: row + 0.5 });

  function setRuler(on) {
    S.measure.ruler = !!on;
    const b = $("ruler-on");
    if (b) { b.classList.toggle("on", S.measure.ruler); b.setAttribute("aria-pressed", S.measure.ruler ? "true" : "false"); }
    for (const v of Object.values(views)) v.el.dataset.ruler = S.measure.ruler ? "1" : "0";
  }
  function clear() {
    const had = Object.keys(S.measure.lines).length;
    S.measure.lines = {};
    app.views.redrawAll();
    if (had) app.api.clearRulers().catch((e) => window.LL.toast(`Rulers not deleted on the server: ${e.message}`, "bad"));
  }

  /** The ruler of the plane under `view` kept on the server (it replaces the plane's
   * previous one there); the server's length is the one shown afterwards. */
  function save(view, line) {
    app.api.saveRuler({ plane: view.plane, slice: line.k, a: line.a, b: line.b }).then((r) => {
      if (S.measure.lines[view.plane] !== line) return;  // drawn again meanwhile
      line.id = r.id; line.mm = r.length_mm;
      view.el.dataset.rulerSaved = String(r.id);
      view.redraw();
    }, (e) => window.LL.toast(`Ruler not saved: ${e.message}`, "bad"));
  }

  /** The user's rulers kept with the study, drawn when the case opens (a ruler drawn
   * here before they arrive wins). */
  function load() {
    app.api.rulers().then((list) => {
      for (const r of list) {
        const view = views[r.plane];
        if (!view || S.measure.lines[r.plane]) continue;
        S.measure.lines[r.plane] = { id: r.id, k: r.slice, a: r.a, b: r.b, mm: r.length_mm };
        view.el.dataset.rulerMm = Number(r.length_mm).toFixed(2);
        view.el.dataset.rulerSaved = String(r.id);
      }
      app.views.redrawAll();
    }, (e) => window.LL.toast(`Saved rulers not loaded: ${e.message}`, "bad"));
  }
  /** (row, col) kept within the image (half a pixel beyond the edge centres at most). */
  function inImage(view, [row, col]) {
    const { rows, cols } = planeShape(view.plane, S.shape);
    const clip = (v, n) => Math.max(-0.5, Math.min(n - 0.5, v));
    return [clip(row, rows), clip(col, cols)];
  }

  // The ruler is a navigate-mode tool: picking the brush or eraser turns it off.
  const setTool = app.setTool;
  app.setTool = (tool) => { setTool(tool); if (tool !== "navigate") setRuler(false); };

  function onDown(view, ev) {
    if (!S.measure.ruler || ev.button !== 0 || ev.shiftKey || ev.ctrlKey || ev.metaKey || !view.hasImage()) return;
    // Taken before input.js's bubbling listener on the same element: no window/level.
    ev.stopImmediatePropagation();
    ev.preventDefault();
    S.active = view.plane;
    view.el.focus();
    const p = inImage(view, view.imagePoint(ev));
    drag = { view, prev: S.measure.lines[view.plane] };
    S.measure.lines[view.plane] = { k: view.k, a: p, b: p, mm: 0 };
    view.redraw();
  }
  function onMove(ev) {
    if (!drag) return;
    const { view } = drag;
    const line = S.measure.lines[view.plane];
    line.b = inImage(view, view.imagePoint(ev));
    line.mm = distanceMm(view.plane, S.spacing, line.a, line.b);
    view.redraw();
  }
  function onUp() {
    if (!drag) return;
    const { view, prev } = drag;
    drag = null;
    const line = S.measure.lines[view.plane];
    if (!line) return;
    // A click without a drag measures nothing: the plane keeps the ruler it had.
    if (line.a[0] === line.b[0] && line.a[1] === line.b[1]) {
      if (prev) S.measure.lines[view.plane] = prev; else delete S.measure.lines[view.plane];
      view.redraw();
      return;
    }
    view.el.dataset.rulerMm = line.mm.toFixed(2);
    save(view, line);
  }

  /** The readout of the voxel under the mouse: position in mm and the image value. */
  function readout(view, ev) {
    const el = view.el.querySelector(".corner.readout");
    if (!el || !S.shape || !view.hasImage()) return;
    const [row, col] = view.imagePoint(ev);
    const { rows, cols } = planeShape(view.plane, S.shape);
    const r = Math.round(row), c = Math.round(col);
    if (r < 0 || c < 0 || r >= rows || c >= cols) { el.textContent = ""; return; }
    // In a MIP view the value shown is the slab's maximum: read the voxel that holds it.
    const depth = app.mipDepthAt ? app.mipDepthAt(view.plane, view.k, r, c) : view.k;
    const [z, y, x] = fromPlane(view.plane, depth, r, c, S.shape);
    const g = grid();
    const mm = voxelToMm([z, y, x], S.spacing, g.origin_xyz_mm, g.direction);
    const idx = (z * S.shape[1] + y) * S.shape[2] + x;
    const value = (ch) => { const v = getVolume(app.studyId, ch); return v ? v.data[idx] : null; };
    const mr = value("mr"), ct = value("ct");
    const vals = [];
    if (S.channel !== "ct" && mr != null) vals.push(`MR ${mr}`);
    if (S.channel !== "mr" && ct != null) vals.push(`CT ${ct} HU`);
    const frame = mm.frame === "grid" ? "grid mm" : `${mm.frame} mm`;
    el.textContent = `${mm.xyz.map((v) => v.toFixed(1)).join(", ")} (${frame})\n` +
      `${depth !== view.k ? "MIP max at " : ""}voxel z${z} y${y} x${x}${vals.length ? " · " + vals.join(" · ") : ""}`;
    el.dataset.value = S.channel === "ct" ? (ct == null ? "" : String(ct)) : (mr == null ? "" : String(mr));
  }

  for (const view of Object.values(views)) {
    const el = view.el;
    el.addEventListener("mousedown", (ev) => onDown(view, ev), true);
    el.addEventListener("mousemove", (ev) => readout(view, ev));
    el.addEventListener("mouseleave", () => { const r = el.querySelector(".corner.readout"); if (r) r.textContent = ""; });
    const add = (cls) => { const d = document.createElement("div"); d.className = cls; el.appendChild(d); return d; };
    add("corner readout").style.whiteSpace = "pre";
    for (const side of ["left", "right", "top", "bottom"]) add(`orient o-${side}`).dataset.side = side;
  }
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || document.querySelector("dialog[open]")) return;
    if (typingTarget(ev.target)) return;
    if (ev.key === "Escape" && Object.keys(S.measure.lines).length) { ev.preventDefault(); clear(); }
    else if (ev.key === "d" || ev.key === "D") { ev.preventDefault(); if (!S.measure.ruler) app.setTool("navigate"); setRuler(!S.measure.ruler); }
  });

  /** Orientation letters of every plane, from the grid's direction cosines (once the
   * study is known; the model grid is LPS-axial, so R | L, A / P, S / I). */
  function renderOrientation(view) {
    const labels = orientationLabels(view.plane, grid().direction);
    for (const o of view.el.querySelectorAll(".orient")) o.textContent = labels[o.dataset.side];
  }

  /** Drawn in image pixel coordinates (follows zoom and pan): rings around small lesions
   * on this slice. `info`: the overlay's slice info (extents per label). */
  function drawImage(view, ctx, px, info) {
    const marked = S.measure.markSmall && info && S.smallLabels ? [...info.extents].filter(([l]) => S.smallLabels.has(l)) : [];
    mark(view.el, "smallMarks", String(marked.length));
    const sp = planeSpacing(view.plane, S.spacing);
    for (const [l, e] of marked) {
      const cx = (e.c0 + e.c1 + 1) / 2, cy = (e.r0 + e.r1 + 1) / 2;
      // At least 14 screen pixels beyond the lesion's half-diagonal, so the ring never
      // covers the few voxels it points at.
      const halfMm = Math.hypot((e.c1 - e.c0 + 1) * sp.col, (e.r1 - e.r0 + 1) * sp.row) / 2;
      const rScreen = halfMm * px.x / sp.col + 14;
      ctx.beginPath();
      ctx.ellipse(cx, cy, rScreen / px.x, rScreen / px.y, 0, 0, Math.PI * 2);
      ctx.lineWidth = 1.5 / Math.min(px.x, px.y);
      ctx.strokeStyle = labelCss(l, 0.9);
      ctx.stroke();
    }
  }

  /** Drawn in canvas coordinates after the image: the ruler of this plane (on its slice)
   * and the scale bar. */
  function drawScreen(view, ctx, viewport) {
    if (!view.el.dataset.orient && S.study) { renderOrientation(view); view.el.dataset.orient = "1"; }
    const line = S.measure.lines[view.plane];
    if (line && line.k === view.k) drawRuler(view, ctx, line);
    const sp = planeSpacing(view.plane, S.spacing);
    const pxPerMm = view.pixelScale(viewport).x / sp.col;
    const w = ctx.canvas.width, h = ctx.canvas.height;
    const bar = scaleBar(pxPerMm, w * 0.25);
    if (!bar) return;
    const x0 = Math.round(w / 2 - bar.px / 2), y = h - 52;
    ctx.strokeStyle = "rgba(230,237,243,0.9)"; ctx.fillStyle = "rgba(230,237,243,0.95)";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(x0, y - 5); ctx.lineTo(x0, y); ctx.lineTo(x0 + bar.px, y); ctx.lineTo(x0 + bar.px, y - 5);
    ctx.stroke();
    ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    haloText(ctx, `${bar.mm} mm`, w / 2, y - 6);
    mark(view.el, "scaleBarMm", String(bar.mm));
    mark(view.el, "scaleBarPx", bar.px.toFixed(1));
  }

  function drawRuler(view, ctx, line) {
    const a = canvasPoint(view, line.a), b = canvasPoint(view, line.b);
    ctx.strokeStyle = RULER_CSS; ctx.fillStyle = RULER_CSS; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(a.x, a.y); ctx.lineTo(b.x, b.y); ctx.stroke();
    // End ticks across the line.
    const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
    const nx = -(b.y - a.y) / len * 5, ny = (b.x - a.x) / len * 5;
    ctx.beginPath();
    for (const p of [a, b]) { ctx.moveTo(p.x - nx, p.y - ny); ctx.lineTo(p.x + nx, p.y + ny); }
    ctx.stroke();
    ctx.font = "600 13px system-ui, sans-serif"; ctx.textAlign = "left"; ctx.textBaseline = "middle";
    haloText(ctx, `${line.mm.toFixed(1)} mm`, b.x + 8, b.y - 10);
  }

  $("ruler-on")?.addEventListener("click", () => { if (!S.measure.ruler) app.setTool("navigate"); setRuler(!S.measure.ruler); app.focusActive(); });
  $("ruler-clear")?.addEventListener("click", () => { clear(); app.focusActive(); });
  $("outline-on")?.addEventListener("change", (e) => { S.overlay.setOutline(e.target.checked); app.views.redrawAll(); });
  $("small-marks")?.addEventListener("change", (e) => { S.measure.markSmall = e.target.checked; app.views.redrawAll(); });
  const small = $("small-marks-label");
  if (small) small.textContent = `Ring lesions < ${SMALL_MM3} mm³`;
  setRuler(false);
  load();

  app.measure = { drawImage, drawScreen, clear, setRuler };
}
