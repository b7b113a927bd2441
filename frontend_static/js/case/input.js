/* Mouse and keyboard on the viewports.
 * Every plane: drag = window/level (shared by the planes), right/middle or shift-drag =
 * pan, ctrl-drag or ctrl+wheel = zoom, wheel = that plane's slice, a click (no drag) =
 * move the cursor there (the other planes follow). Brush/eraser paint with the left
 * button in any plane; the brush outline follows the mouse (the 3D brush's in every plane
 * its ball reaches). Keys act on the plane last used (S.active). */
const cs = window.cornerstone;

export function installInput(app) {
  const { S } = app;
  const { views } = app.views;
  let drag = null;

  function painting(ev, view) {
    return ev.button === 0 && (S.tool === "brush" || S.tool === "eraser") &&
      app.canEdit() && !ev.shiftKey && !app.selectedRejected();
  }

  /** The overlay bitmaps of the slices the stroke so far has touched. */
  function touchPainted() {
    const ch = S.editor.current;
    if (ch) for (const z of ch.slices) S.overlay.touchSlice(z);
  }

  function onDown(view, ev) {
    if (!S.shape || !view.hasImage()) return;
    S.active = view.plane;
    view.el.focus();
    ev.preventDefault();
    if (painting(ev, view)) {
      if (!S.selected) { if (S.tool === "eraser") return; app.newLesion(); }
      const p = view.imagePoint(ev);
      S.editor.begin(S.selected, S.tool);
      drag = { view, mode: "paint", last: p, k: view.k };
      S.editor.dabIn(view.plane, drag.k, p[0], p[1], S.radiusMm, S.tool === "eraser", S.brush3d);
      touchPainted(); app.views.redrawAll();
      return;
    }
    const mode = ev.button === 2 || ev.button === 1 || ev.shiftKey ? "pan" : ev.ctrlKey ? "zoom" : S.tool === "add" && app.canEdit() ? "add" : "wl";
    drag = { view, mode, x: ev.clientX, y: ev.clientY, moved: false, vp: JSON.parse(JSON.stringify(cs.getViewport(view.el))) };
  }

  function onMove(ev) {
    if (!S.shape) return;
    if (S.tool === "brush" || S.tool === "eraser") {
      // The brush outline follows the mouse in the plane under it.
      const was = S.cursor;
      const under = (drag && drag.view) || app.views.shown().find((v) => {
        const r = v.el.getBoundingClientRect();
        return ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
      });
      S.cursor = under && under.hasImage() ? { plane: under.plane, point: under.imagePoint(ev) } : null;
      if (!drag) {
        // The 3D brush is outlined in every plane its ball reaches: redraw them all.
        if (S.brush3d) { if (was || S.cursor) app.views.redrawAll(); }
        else {
          if (was && (!S.cursor || was.plane !== S.cursor.plane)) views[was.plane].redraw();
          if (S.cursor) under.redraw();
        }
      }
    }
    if (!drag) return;
    const { view } = drag;
    if (drag.mode === "paint") {
      const p = view.imagePoint(ev);
      S.editor.lineIn(view.plane, drag.k, drag.last, p, S.radiusMm, S.tool === "eraser", S.brush3d);
      drag.last = p;
      touchPainted(); app.views.redrawAll();
      return;
    }
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 3) return;
    drag.moved = true;
    const vp = cs.getViewport(view.el);
    if (drag.mode === "pan") {
      const px = view.pixelScale(vp);
      vp.translation = { x: drag.vp.translation.x + dx / px.x, y: drag.vp.translation.y + dy / px.y };
      cs.setViewport(view.el, vp);
    } else if (drag.mode === "zoom") {
      vp.scale = Math.max(0.1, Math.min(20, drag.vp.scale * Math.exp(-dy / 200)));
      cs.setViewport(view.el, vp);
    } else {  // wl, and a drag with the click-to-add tool
      const ww0 = drag.vp.voi.windowWidth, wc0 = drag.vp.voi.windowCenter;
      const k = Math.max(1, ww0) / 300;
      app.setVoi(app.baseChannel(), wc0 + dy * k, ww0 + dx * k);
      S.userWindowed = true;
    }
  }

  function onUp(ev) {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.mode === "paint") { S.editor.end(); return; }
    // Click to add: a click (no drag) asks the server for a lesion grown from that voxel.
    // In a MIP view the click goes to the slice of the slab where the MR is brightest under
    // it (the voxel the MIP shows): every plane moves there and the server is asked there.
    if (d.mode === "add" && !d.moved && ev.button === 0) {
      const [row, col] = d.view.imagePoint(ev);
      const depth = app.mipDepthAt ? app.mipDepthAt(d.view.plane, d.view.k, row, col) : d.view.k;
      app.views.linkFrom(d.view.plane, row, col);
      app.proposeAt(d.view.plane, depth, row, col);
      return;
    }
    // A click without a drag moves the cursor: the other planes go through that point.
    if (d.mode === "wl" && !d.moved && ev.button === 0) {
      const [row, col] = d.view.imagePoint(ev);
      app.views.linkFrom(d.view.plane, row, col);
    }
  }

  for (const view of Object.values(views)) {
    const el = view.el;
    el.addEventListener("mousedown", (ev) => onDown(view, ev));
    el.addEventListener("mouseleave", () => {
      if (S.cursor && S.cursor.plane === view.plane && !drag) { S.cursor = null; if (S.brush3d) app.views.redrawAll(); else view.redraw(); }
    });
    el.addEventListener("wheel", (ev) => {
      if (!S.shape || !view.hasImage()) return;
      ev.preventDefault();
      S.active = view.plane;
      if (ev.ctrlKey || ev.metaKey) app.zoomBy(ev.deltaY < 0 ? 1.1 : 1 / 1.1, view);
      else app.views.stepPlane(view.plane, stepSign(view.plane, ev.deltaY));
    }, { passive: false });
  }
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);

  /** Wheel down = towards the feet in axial (lower z), as before; in coronal and
   * sagittal wheel down moves to higher y / x. */
  function stepSign(plane, deltaY) {
    const down = deltaY > 0;
    if (plane === "axial") return down ? -1 : 1;
    return down ? 1 : -1;
  }

  const steps = (n) => () => app.views.stepPlane(S.active || "axial", n);
  const keys = {
    ArrowUp: steps(1), ArrowDown: steps(-1), PageUp: steps(5), PageDown: steps(-5),
    // Home = slice 1 (the slider's left end), End = the last slice, in every plane.
    Home: () => app.views.setSlice(S.active || "axial", 0),
    End: () => app.views.setSlice(S.active || "axial", app.views.counts()[S.active || "axial"] - 1),
    n: () => app.stepLesion(1), "]": () => app.stepLesion(1), p: () => app.stepLesion(-1), "[": () => app.stepLesion(-1),
    a: () => app.decide("accepted"), r: () => app.decide("rejected"), x: () => app.decide("rejected"),
    i: () => app.interpolate(), g: () => app.setTool("add"),  // grow; T is the MIP slab
    b: () => app.setTool("brush"), e: () => app.setTool("eraser"), v: () => app.setTool("navigate"),
    o: () => app.toggleOverlay(), "+": () => app.zoomBy(1.25), "=": () => app.zoomBy(1.25), "-": () => app.zoomBy(0.8),
    m: () => app.setChannel("mr"), c: () => app.setChannel("ct"), f: () => app.setChannel("fused"),
    l: () => app.views.setLayout(S.layout === "3" ? "1" : "3"),
    0: () => app.resetView(),
  };
  // N alone is the next lesion; Shift+N draws a new one (the button's tooltip says so).
  const shiftKeys = { N: () => app.newLesion() };
  document.addEventListener("keydown", (ev) => {
    if (typingTarget(ev.target) || document.querySelector("dialog[open]")) return;
    const k = ev.key;
    const mod = ev.ctrlKey || ev.metaKey;
    if (mod && (k === "z" || k === "Z")) { ev.preventDefault(); app.historyStep(ev.shiftKey ? 1 : -1); return; }
    if (mod && (k === "y" || k === "Y")) { ev.preventDefault(); app.historyStep(1); return; }
    if (mod && (k === "s" || k === "S")) { ev.preventDefault(); app.save(); return; }
    if (mod || ev.altKey) return;
    const fn = (ev.shiftKey && shiftKeys[k.toUpperCase()]) || keys[k] || keys[k.toLowerCase && k.toLowerCase()];
    // A slider keeps its arrows (the slice slider's arrows are the slice keys).
    if (fn && !(ev.target.matches("input[type=range]") && k.startsWith("Arrow") && ev.target.id !== "slice")) {
      ev.preventDefault(); fn();
    }
  });
}

/** True for an element that takes typed keys: every input but a slider, checkbox, radio
 * or button (sliders keep their arrows, see above), a textarea, a select, or
 * contenteditable content. Viewer shortcuts never fire there, so "20" can be typed in a
 * number box. */
export function typingTarget(el) {
  if (!el || !el.matches) return false;
  if (el.isContentEditable || el.matches("textarea, select, [contenteditable]:not([contenteditable=false])")) return true;
  if (!el.matches("input")) return false;
  const type = (el.getAttribute("type") || "text").toLowerCase();
  return !["range", "checkbox", "radio", "button", "submit", "reset", "image", "file", "color"].includes(type);
}
