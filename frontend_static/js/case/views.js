/* The viewports of the case page and how they are linked: one cursor voxel
 * S.pos = [z, y, x] drives all three planes (each shows the slice through it, and the
 * crosshair of the other two), a click in one plane moves the others, and the layout
 * is one plane (axial) or three (axial large, coronal and sagittal beside it). */
import { PLANES, planeShape, sliceIndex, toPlane, fromPlane, clampPos } from "./planes.js";
import { PlaneView } from "./viewport.js";

const LAYOUT_KEY = "lesionloop.viewer.layout";
// Below this width of the image area (e.g. an 800 x 600 window) three planes are too small
// to read: one plane is shown, without changing the layout the user chose.
export const THREE_PLANES_MIN_PX = 560;

export function createViews(app) {
  const { S, $ } = app;
  const elements = { axial: $("viewport"), coronal: $("viewport-coronal"), sagittal: $("viewport-sagittal") };
  const views = Object.fromEntries(PLANES.map((p) => [p, new PlaneView(app, p, elements[p])]));
  const container = $("viewports");

  function shown() { return S.layout === "3" ? PLANES.map((p) => views[p]) : [views.axial]; }
  function each(fn) { for (const v of shown()) fn(v); }

  /** Move the cursor voxel; views whose slice changed show it, the others redraw
   * their crosshair. */
  function setPos(pos) {
    if (!S.shape) return;
    const next = clampPos(pos, S.shape);
    const before = S.pos;
    S.pos = next;
    each((v) => {
      if (sliceIndex(v.plane, before) !== sliceIndex(v.plane, next) || v.shownK !== v.k) v.show();
      else if (S.layout === "3") v.redraw();
    });
    app.store.notify("position", next, before);
  }

  /** Step the slice of one plane by `delta` (wheel, keys, slider). */
  function stepPlane(plane, delta) { setSlice(plane, sliceIndex(plane, S.pos) + delta); }
  function setSlice(plane, k) {
    const pos = S.pos.slice();
    pos[{ axial: 0, coronal: 1, sagittal: 2 }[plane]] = k;
    setPos(pos);
  }
  /** A click at (row, col) of a plane: the cursor goes there, the other planes follow. */
  function linkFrom(plane, row, col) {
    if (!S.shape) return;
    // In a MIP view the click goes to the slice where the bright voxel under it lies.
    const k = sliceIndex(plane, S.pos);
    const depth = app.mipDepthAt ? app.mipDepthAt(plane, k, row, col) : k;
    setPos(fromPlane(plane, depth, row, col, S.shape));
  }

  /** Cursor to voxel `centre` (fractional) and every shown view panned to centre it. */
  function centreAll(centre) {
    setPos(centre);
    each((v) => { const c = toPlane(v.plane, centre, S.shape); v.centreOn(c.row, c.col); });
  }

  function showAll() { each((v) => v.show()); }
  function redrawAll() { each((v) => v.redraw()); }
  function resizeAll() { each((v) => v.resize()); }
  function fitAll() { each((v) => v.fit()); }
  function setVoiAll(wc, ww) { each((v) => v.setVoi(wc, ww)); }

  function narrow() { return container.clientWidth > 0 && container.clientWidth < THREE_PLANES_MIN_PX; }

  /** `remember`: the user's choice (kept in localStorage, and shown even when narrow);
   * otherwise three planes become one while the image area is narrow. */
  function setLayout(layout, { remember = true } = {}) {
    const wanted = layout === "1" ? "1" : "3";
    if (remember || !S.layoutWanted) S.layoutWanted = wanted;
    S.layout = !remember && wanted === "3" && narrow() ? "1" : wanted;
    container.dataset.layout = S.layout;
    container.dataset.autoLayout = S.layout !== S.layoutWanted ? "1" : "";
    document.getElementById("layout-seg").title = container.dataset.autoLayout ? "Three planes need a wider window: one is shown (3 planes or L shows them anyway)" : "";
    document.querySelectorAll("#layout-seg button").forEach((b) => b.classList.toggle("on", b.dataset.layout === S.layout));
    if (remember) { try { localStorage.setItem(LAYOUT_KEY, S.layout); } catch (e) { /* private mode */ } }
    if (S.layout === "1" && S.active !== "axial") S.active = "axial";
    if (!S.shape) return;
    each((v) => v.enable());
    resizeAll();
    each((v) => { if (!v.hasImage() || v.shownK !== v.k) v.show(); });
    redrawAll();
    app.store.notify("layout", S.layout);
  }
  /** After a resize: the layout the user chose, or one plane while too narrow for three. */
  function fitLayout() {
    const wanted = S.layoutWanted || S.layout;
    const fits = wanted === "3" && narrow() ? "1" : wanted;
    if (fits !== S.layout) setLayout(wanted, { remember: false });
  }
  window.addEventListener("resize", fitLayout);

  function savedLayout() {
    try { return localStorage.getItem(LAYOUT_KEY) || "3"; } catch (e) { return "3"; }
  }

  /** Plane sizes for the test hooks: slice counts per plane. */
  function counts() { return Object.fromEntries(PLANES.map((p) => [p, planeShape(p, S.shape).count])); }

  return { views, shown, setPos, stepPlane, setSlice, linkFrom, centreAll, showAll, redrawAll, resizeAll, fitAll, setVoiAll, setLayout, fitLayout, savedLayout, counts };
}
