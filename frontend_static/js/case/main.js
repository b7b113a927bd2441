/* Case viewer entry point (an ES module, no build step): builds the state and the
 * `app` context that the other modules install their parts on, wires the image
 * controls, and opens the study. Module map: docs/VIEWER.md. */
import { createStore } from "./store.js";
import { MaskOverlay, FusedCT } from "./overlay.js";
import { loadVolume, getVolume, setGeometry } from "./volume.js";
import { CT_PRESETS, mrPercentiles, autoWindowMR, contrastWindowMR } from "./windowing.js";
import { createViews } from "./views.js";
import { installInput } from "./input.js";
import { installLesionPanel } from "./lesion-panel.js";
import { installReview } from "./review.js";
import { installSave } from "./save.js";
import { installLease } from "./lease.js";
import { installHeader } from "./header.js";
import { installMip } from "./mip-control.js";
import { installAssist } from "./assist.js";
import { installMeasure } from "./measure-ui.js";

const LL = window.LL;
const cs = window.cornerstone;
const $ = (id) => document.getElementById(id);
const root = $("case");
const studyId = root.dataset.study;

const S = {
  study: null, shape: null, spacing: null, origin: null, pos: [0, 0, 0],
  channel: "mr", voi: { mr: null, ct: { wc: 40, ww: 80 } }, layout: "3", active: "axial",
  lesions: [], localLesions: new Map(), selected: 0, sortAsc: true, selMark: null,
  mask: null, etag: null, editor: null, overlay: new MaskOverlay(), fused: new FusedCT(),
  tool: "navigate", radiusMm: 3, lease: null, leaseOk: false, leaseHolder: null, history: null, keeper: null,
  conflict: null, firstImageAt: null, allSlicesAt: null, planesAt: null, cursor: null, frameStats: [],
};
// The axial slice, as the browser tests and the benchmark read it.
Object.defineProperty(S, "z", { get: () => S.pos[0], enumerable: true });
window.LLViewer = S;

const store = createStore(S);
const app = {
  S, store, $, root, studyId, api: LL.studyApi(studyId),
  roleCanEdit: root.dataset.editable === "1",
  leaseSeconds: Number(root.dataset.leaseSeconds) || 120,
};
S.app = app;  // for the browser tests (views, planes)

app.baseChannel = () => (S.channel === "ct" ? "ct" : "mr");
/** Patient coordinate (mm) of slice k along axis 0 = z, 1 = y, 2 = x. */
app.axisMm = (axis, k) => (S.origin ? Number(S.origin[2 - axis]) : 0) + k * S.spacing[axis];
app.sliceMm = (z) => app.axisMm(0, z);
app.focusActive = () => app.views.views[S.active || "axial"].el.focus();

app.onFirstImage = (plane) => {
  if (plane === "axial" && !S.firstImageAt) {
    S.firstImageAt = performance.now();
    performance.mark("ll-first-image");
    $("loading").hidden = true;
  }
  const all = app.views.shown().every((v) => v.el.dataset.firstImage === "1");
  if (S.layout === "3" && all && !S.planesAt) {
    S.planesAt = performance.now();
    performance.mark("ll-all-planes");
    $("viewports").dataset.allPlanes = "1";
  }
};

app.setVoi = (ch, wc, ww) => {
  S.voi[ch] = { wc, ww: Math.max(1, ww) };
  if (app.baseChannel() === ch) app.views.setVoiAll(wc, Math.max(1, ww));
};

let mrStats = null;
function mrStatsNow() {
  if (mrStats) return mrStats;
  const vol = getVolume(studyId, "mr");
  mrStats = vol ? mrPercentiles(vol.data) : null;
  return mrStats;
}

function renderPresets() {
  const ch = app.baseChannel();
  const mr = (fn) => () => { const w = fn(mrStatsNow()); if (w) app.setVoi("mr", w.wc, w.ww); };
  let items = ch === "ct" ? Object.entries(CT_PRESETS).map(([k, v]) => [k, () => app.setVoi("ct", v[0], v[1])])
    : [["Auto", mr(autoWindowMR)], ["Enhancement", mr(contrastWindowMR)]];
  if (S.channel === "fused") items = items.concat(Object.entries(CT_PRESETS).filter(([k]) => k === "Bone" || k === "Brain")
    .map(([k, v]) => [`CT ${k.toLowerCase()}`, () => { S.fused.setWindow(v[0], v[1]); app.views.redrawAll(); }]));
  const box = $("presets");
  box.innerHTML = "";
  items.forEach(([label, fn]) => {
    const b = document.createElement("button"); b.textContent = label; b.className = "small";
    b.addEventListener("click", () => { fn(); app.focusActive(); });
    box.appendChild(b);
  });
}

async function loadCT() {
  $("load-state").textContent = "loading CT…";
  try {
    await loadVolume(studyId, "ct");
    $("load-state").textContent = "";
    app.views.redrawAll();
  } catch (e) {
    $("load-state").textContent = "";
    LL.toast(`CT is not available: ${e.message}`, "bad");
  }
}

app.setChannel = (ch) => {
  S.channel = ch;
  document.querySelectorAll("#channel-seg button").forEach((b) => b.classList.toggle("on", b.dataset.channel === ch));
  $("blend-row").hidden = ch !== "fused";
  if (ch !== "mr" && !getVolume(studyId, "ct")) loadCT().then(() => app.views.showAll());
  renderPresets();
  app.views.showAll();
};
app.toggleOverlay = (force) => {
  S.overlay.visible = force === undefined ? !S.overlay.visible : force;
  $("overlay-on").checked = S.overlay.visible;
  app.views.redrawAll();
};
app.resetView = () => {
  app.views.fitAll();
  if (app.baseChannel() === "mr") { const w = autoWindowMR(mrStatsNow()); if (w) app.setVoi("mr", w.wc, w.ww); }
  else app.setVoi("ct", CT_PRESETS.Brain[0], CT_PRESETS.Brain[1]);
  app.views.redrawAll();
};
app.zoomBy = (f, view = app.views.views[S.active || "axial"]) => {
  if (!view.hasImage()) return;
  const vp = cs.getViewport(view.el);
  vp.scale = Math.max(0.1, Math.min(20, vp.scale * f));
  cs.setViewport(view.el, vp);
};

app.views = createViews(app);
installHeader(app);
installLesionPanel(app);
installReview(app);
installSave(app);
installLease(app);
installAssist(app);
installInput(app);
installMip(app);
installMeasure(app);

/** The axial slider and its label follow the cursor. */
store.subscribe("position", () => {
  if (!S.shape) return;
  $("slice").value = String(S.z);
  $("slice-label").textContent = `${S.z + 1} / ${S.shape[0]}   z = ${app.sliceMm(S.z).toFixed(1)} mm`;
});

function bindControls() {
  document.querySelectorAll(".toolbar [data-tool]").forEach((b) => b.addEventListener("click", () => { app.setTool(b.dataset.tool); app.focusActive(); }));
  document.querySelectorAll("#channel-seg button").forEach((b) => b.addEventListener("click", () => { app.setChannel(b.dataset.channel); app.focusActive(); }));
  document.querySelectorAll("#layout-seg button").forEach((b) => b.addEventListener("click", () => { app.views.setLayout(b.dataset.layout); app.focusActive(); }));
  $("radius").addEventListener("input", (e) => { S.radiusMm = Number(e.target.value); $("radius-val").textContent = S.radiusMm.toFixed(1) + " mm"; app.views.redrawAll(); });
  $("opacity").addEventListener("input", (e) => { S.overlay.setOpacity(Number(e.target.value) / 100); $("opacity-val").textContent = e.target.value + "%"; app.views.redrawAll(); });
  $("blend").addEventListener("input", (e) => { S.fused.blend = Number(e.target.value) / 100; $("blend-val").textContent = e.target.value + "%"; app.views.redrawAll(); });
  $("overlay-on").addEventListener("change", (e) => app.toggleOverlay(e.target.checked));
  $("rejected-on").addEventListener("change", (e) => { S.overlay.setRejected(app.rejectedLabels(), e.target.checked); app.views.redrawAll(); });
  $("slice").addEventListener("input", (e) => { S.active = "axial"; app.views.setSlice("axial", Number(e.target.value)); });
  $("slice").addEventListener("focus", () => { S.active = "axial"; });
  $("slice-prev").addEventListener("click", () => app.views.stepPlane("axial", -1));
  $("slice-next").addEventListener("click", () => app.views.stepPlane("axial", 1));
  $("reset-view").addEventListener("click", app.resetView);
  $("zoom-in").addEventListener("click", () => app.zoomBy(1.25));
  $("zoom-out").addEventListener("click", () => app.zoomBy(0.8));
  window.addEventListener("resize", () => app.views.resizeAll());
}

async function openDetail() {
  const embedded = document.getElementById("case-initial");
  if (embedded) {
    // Rendered into the page by the server (same serializers as the API).
    const init = JSON.parse(embedded.textContent);
    S.lesions = init.lesions || [];
    return init.study;
  }
  const [detail] = await Promise.all([app.api.detail(), app.loadLesions().catch(() => { S.lesions = []; })]);
  return detail;
}

async function start() {
  let detail;
  try { detail = await openDetail(); } catch (e) {
    $("loading").textContent = `Could not open this study: ${e.message}`;
    $("loading").classList.add("error");
    return;
  }
  S.study = detail;
  const grid = detail.grid || {};
  app.renderHeader();
  if (!grid.shape_dhw || !grid.spacing_mm) {
    $("loading").textContent = detail.status === "failed" ? `This study failed: ${detail.status_reason || ""}` : `No images yet (status: ${detail.status}).`;
    return;
  }
  S.shape = grid.shape_dhw; S.spacing = grid.spacing_mm; S.origin = grid.origin_xyz_mm;
  setGeometry(studyId, S.shape, S.spacing);
  $("slice").max = String(S.shape[0] - 1);
  // Open on the smallest lesion: small ones are the ones that get missed.
  const first = app.sortedLesions()[0];
  S.selected = first ? first.label : 0;
  S.overlay.setSelected(S.selected);
  const z0 = first && first.largest_slice != null ? first.largest_slice : Math.floor(S.shape[0] / 2);
  const mrAll = loadVolume(studyId, "mr");
  const maskP = app.loadMask().catch((e) => { LL.toast(`No lesion mask: ${e.message}`, "warn"); });
  S.pos = [z0, Math.floor(S.shape[1] / 2), Math.floor(S.shape[2] / 2)];
  app.views.views.axial.enable();
  // Every plane shows a slice fetched alone until the whole volume is in memory.
  app.views.setLayout(S.layout, { remember: false });
  app.views.setPos(S.pos);
  store.notify("lesions");
  if (app.roleCanEdit && !app.approved()) S.keeper.take().then(() => S.keeper.start());
  else app.renderLease();
  $("load-state").textContent = "loading all slices…";
  mrAll.then(() => {
    S.allSlicesAt = performance.now();
    performance.mark("ll-all-slices");
    $("viewport").dataset.allSlices = "1";
    $("load-state").textContent = "";
    app.views.setLayout(S.layout, { remember: false });  // views still without an image
    const w = autoWindowMR(mrStatsNow());
    if (w && !S.userWindowed) app.setVoi("mr", w.wc, w.ww);
  }).catch((e) => { $("load-state").textContent = `images failed: ${e.message}`; });
  await maskP;
  if (S.editor) {
    $("viewport").dataset.maskLoaded = "1";
    app.refreshEditability(); store.notify("lesions");
    if (S.selected) app.selectLesion(S.selected);
    else app.views.redrawAll();
  }
  renderPresets();
  app.refreshEditability();
  app.focusActive();
}

bindControls();
S.layout = app.views.savedLayout();
$("viewports").dataset.layout = S.layout;
document.querySelectorAll("#layout-seg button").forEach((b) => b.classList.toggle("on", b.dataset.layout === S.layout));
renderPresets();
start();
