/* The thick-slab MIP control of the case page: Off / 5 / 10 / 20 mm buttons and the T
 * key (MIP on at the last width / off). MR only (CT and the fused CT layer stay slices);
 * every shown plane projects the slab centred on its current slice along its normal
 * (mip.js, computed from the in-memory int16 volume by volume.planeImage), while the
 * lesion overlay shows the current slice's lesions plus, dashed and dimmer, those within
 * the slab (app.mipSlab). A click in a MIP view sends every plane to the slice where the
 * maximum under the click lies (app.mipDepthAt, used by views.linkFrom), and click to add
 * asks there. Painting tools and the MIP exclude each other (a brush or eraser turns the
 * MIP off; the MIP turns the window tool back on); click to add keeps the MIP. The buttons show the width really
 * projected (mip.mipButtonState): CT view turns the MIP off, and its buttons read Off and
 * are disabled. Installs on `app`: setMip, mipDepthAt, mipSlab, mipCaption; wraps app.setTool and
 * app.setChannel. */
import { getVolume, loadVolume, setMipWidth, mipWidth, mipStats } from "./volume.js";
import { mipButtonState, mipDepth, slabRange, SLAB_WIDTHS_MM } from "./mip.js";
import { typingTarget } from "./input.js";

const DEFAULT_MM = 10;

export function installMip(app) {
  const { S, $, studyId } = app;
  const box = $("mip-seg");
  let lastOn = DEFAULT_MM;
  S.mipMm = 0;
  app.mipStats = mipStats;  // the benchmark reads the time of the last slab

  const setTool = app.setTool;
  app.setTool = (tool) => {
    setTool(tool);  // may refuse (read-only, rejected lesion): then the MIP stays
    // Click to add works in the MIP (the click goes to the slice of the voxel it shows).
    if (S.tool !== "navigate" && S.tool !== "add" && S.mipMm) { app.setMip(0); window.LL.toast("MIP off: painting works on single slices", "info", 2500); }
  };

  const active = () => S.mipMm > 0 && S.channel !== "ct" && !!getVolume(studyId, "mr");

  /** The buttons, the seam colour and T from the real state (mipButtonState). */
  function render() {
    const st = mipButtonState(S.mipMm, S.channel, getVolume(studyId, "mr"));
    box.querySelectorAll("button").forEach((b) => {
      const on = Number(b.dataset.mip) === st.shownMm;
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.disabled = st.disabled;
    });
    box.title = S.channel === "ct" ? "MIP slab: MR and fused views only (CT is shown as single slices)" : "";
    $("viewports").dataset.mip = String(st.shownMm);
  }

  const setChannel = app.setChannel;
  app.setChannel = (ch) => {
    // CT is never projected: leaving the MIP chosen would keep a button lit over plain CT.
    if (ch === "ct" && S.mipMm) { S.mipMm = 0; setMipWidth(0); window.LL.toast("MIP off: CT is shown as single slices", "info", 2500); }
    setChannel(ch);
    render();
  };

  app.setMip = (mm) => {
    mm = SLAB_WIDTHS_MM.includes(Number(mm)) ? Number(mm) : 0;
    if (mm && !getVolume(studyId, "mr")) return;  // the slab needs the whole volume
    if (mm && S.channel === "ct") { window.LL.toast("MIP slab: switch to MR or fused (CT is shown as single slices)", "info", 2500); return; }
    // A MIP is for looking: the brush would paint the current slice under enhancement that
    // may lie on another slice of the slab, so painting and the MIP exclude each other.
    if (mm && S.tool !== "navigate" && S.tool !== "add") { setTool("navigate"); window.LL.toast("MIP on: the window tool is back (painting needs single slices)", "info", 2500); }
    S.mipMm = mm;
    if (mm) lastOn = mm;
    setMipWidth(mm);
    render();
    app.views.showAll();
  };

  /** The slice under image pixel (row, col) of `plane` that holds the slab's maximum,
   * or the plane's current slice when MIP is off. */
  app.mipDepthAt = (plane, k, row, col) => {
    if (!active()) return k;
    const vol = getVolume(studyId, "mr");
    return mipDepth(vol.data, vol.shape, plane, k, S.mipMm, vol.spacing, row, col);
  };

  /** [lo, hi] slices of the slab shown in `plane` around slice k, or null when no MIP is
   * shown there (the overlay draws the lesions within the slab). */
  app.mipSlab = (plane, k) => (active() ? slabRange(plane, k, S.mipMm, S.shape, S.spacing) : null);

  /** Corner text of a view showing a slab: width asked and the slices it covers. */
  app.mipCaption = (plane, k) => {
    if (!active()) return "";
    const [lo, hi] = slabRange(plane, k, S.mipMm, S.shape, S.spacing);
    return `<br><span class="mip-caption">MIP ${S.mipMm} mm · slices ${lo + 1}–${hi + 1}</span>`;
  };

  box.querySelectorAll("button").forEach((b) => {
    b.addEventListener("click", () => { app.setMip(b.dataset.mip); app.focusActive(); });
  });
  render();
  loadVolume(studyId, "mr").then(render, () => {});

  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "t" && ev.key !== "T") return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typingTarget(ev.target) || document.querySelector("dialog[open]")) return;
    ev.preventDefault();
    app.setMip(S.mipMm ? 0 : lastOn);
  });
  app.store.subscribe("layout", () => { if (mipWidth()) app.views.showAll(); });
}
