/* The lesion panel: lesions ranked by volume (mm³ throughout), with the longest axial and
 * 3D diameters (mm, the server's, measured at each save), probability, disagreement,
 * decision and an *unsaved* tag, under a header that names each column and its unit; ticks along the slice slider; selecting a lesion centres all
 * three planes on it and rings it. Installs on `app`: allLesions, sortedLesions,
 * lesionByLabel, selectLesion, stepLesion, renderLesions, rejectedLabels. */
import { mergeLesions, sortLesions, shownVolume, pendingLesions, stepLesion, SMALL_MM3, COLUMN_HELP, diameterCell, rowState } from "./lesion-data.js";
import { smallLabels } from "./measure.js";
import { labelCss } from "./overlay.js";

const { esc, fmtVol, fmtNum } = window.LL;

/** The column header above the list: what each number is, in which unit (hover: why). */
function columnHeader() {
  const h = (cls, text, key) => `<span class="${cls}" title="${esc(COLUMN_HELP[key])}">${text}</span>`;
  return `${h("lname", "Lesion", "lesion")}${h("vol num", "Vol<br>mm³", "volume")}${h("dax num", "⌀ ax<br>mm", "axial")}${h("d3d num", "⌀ 3D<br>mm", "longest")}` +
    `${h("metrics", "p · Δ", "pd")}${h("dec", "Decision", "decision")}`;
}

export function installLesionPanel(app) {
  const { S, $, store } = app;

  app.allLesions = () => mergeLesions(S.lesions, [...S.localLesions.values()], S.editor ? (l) => S.editor.volumeMm3(l) : null);
  app.sortedLesions = () => sortLesions(app.allLesions(), S.sortAsc);
  app.lesionByLabel = (label) => app.allLesions().find((l) => l.label === label) || null;
  app.rejectedLabels = () => S.lesions.filter((l) => l.decision === "rejected").map((l) => l.label);

  function decisionBadge(l) {
    const d = l.local ? "added" : l.decision || "pending";
    const unsaved = l.local || l.changed;
    return `<span class="badge dec-${esc(d)}">${esc(d)}</span>${unsaved ? ' <span class="badge unsaved" title="Edited here, not saved yet">unsaved</span>' : ""}`;
  }

  function renderLesions() {
    const list = app.sortedLesions();
    S.smallLabels = new Set(smallLabels(list.map((l) => ({ label: l.label, volume: shownVolume(l), decision: l.decision })), SMALL_MM3));
    let head = $("lesion-cols");
    if (!head) {
      head = document.createElement("div");
      head.id = "lesion-cols"; head.className = "lesion lesion-cols";
      head.innerHTML = columnHeader();
      $("lesion-list").before(head);
    }
    $("l-count").textContent = `(${list.length})`;
    $("sort-dir").innerHTML = (S.sortAsc ? "smallest first" : "largest first") + " &#8645;";
    const pending = pendingLesions(list).length;
    $("l-summary").textContent = !list.length ? "No lesions proposed. Add any you see with + New lesion."
      : pending ? `${pending} of ${list.length} awaiting a decision` : "Every lesion has a decision.";
    $("lesion-list").innerHTML = list.map((l, i) => {
      const vol = shownVolume(l);
      const state = rowState(l);  // a new lesion with no voxel yet is not "erased"
      const gone = state !== "live";
      const small = !gone && vol != null && vol < SMALL_MM3;
      return `<li class="lesion ${l.label === S.selected ? "selected" : ""} ${gone ? state === "empty" ? "empty" : "gone" : ""}" data-label="${l.label}" data-state="${state}" tabindex="-1">
        <span class="swatch" style="background:${labelCss(l.label)}"></span>
        <span class="rank">${i + 1}</span>
        <span class="lname">Lesion ${l.label}${small ? ` <span class="badge small-lesion" title="Under ${SMALL_MM3} mm³: the kind that gets missed">small</span>` : ""}</span>
        <span class="vol num" data-vol="${vol == null ? "" : vol}" title="Volume in mm³">${volumeText(state, vol)}</span>
        ${diameterSpan("dax", l, "longest_axial_diameter_mm", gone)}${diameterSpan("d3d", l, "longest_diameter_mm", gone)}
        <span class="metrics muted">${l.local ? "drawn here" : `<span class="p" title="${esc(COLUMN_HELP.p)}">p ${fmtNum(l.mean_prob, 2)}</span> · <span class="dis" title="${esc(COLUMN_HELP.disagreement)}">Δ ${fmtNum(l.disagreement, 2)}</span>`}</span>
        <span class="dec">${decisionBadge(l)}</span>
      </li>`;
    }).join("");
    renderTicks();
  }

  function volumeText(state, vol) {
    if (state === "empty") return '<span class="new-empty" title="A new lesion: paint it with the brush (B)">new · paint it</span>';
    return state === "erased" ? "erased" : fmtVol(vol, { unit: false });
  }

  function diameterSpan(cls, l, field, gone) {
    const cell = diameterCell(l, field);
    const text = gone ? "" : cell.mm == null ? cell.text : fmtNum(cell.mm, 1);
    return `<span class="${cls} num${cell.stale ? " stale" : ""}" data-mm="${cell.mm == null ? "" : cell.mm}" title="${esc(cell.title)}">${esc(text)}</span>`;
  }

  /** Where the lesions are along the slice slider: a small lesion is easy to scroll past. */
  function renderTicks() {
    const box = $("slice-ticks");
    if (!box || !S.shape) return;
    const D = Math.max(1, S.shape[0] - 1);
    box.innerHTML = app.allLesions().filter((l) => l.largest_slice != null && rowState(l) === "live")
      .map((l) => `<i class="${l.decision === "rejected" ? "rejected" : ""}" title="Lesion ${l.label}" style="left:${(100 * l.largest_slice / D).toFixed(2)}%;background:${labelCss(l.label)}"></i>`).join("");
  }

  app.selectLesion = (label, { jump = true } = {}) => {
    S.selected = label;
    S.overlay.setSelected(label);
    document.querySelectorAll("#lesion-list li").forEach((li) => li.classList.toggle("selected", Number(li.dataset.label) === label));
    const li = document.querySelector(`#lesion-list li[data-label="${label}"]`);
    if (li) li.scrollIntoView({ block: "nearest" });
    if (jump) jumpTo(label);
    else app.views.redrawAll();
    store.notify("selection", label);
  };

  /** The lesion's largest axial slice and its centre there (recomputed from the mask for
   * a lesion edited here): every plane goes through it and is centred on it. */
  function jumpTo(label) {
    const l = app.lesionByLabel(label);
    if (!l || !S.shape) return;
    let z = l.largest_slice, centre = null;
    const edited = l.local || l.changed;
    if ((z == null || edited) && S.editor) { const zz = S.editor.largestSlice(label); if (zz >= 0) z = zz; }
    if (z == null && l.centroid_vox) z = Math.round(l.centroid_vox[0]);
    if (z == null) return;
    if (S.editor) centre = S.editor.centreOn(label, z);
    if (!centre && l.bbox) centre = [(l.bbox[1] + l.bbox[4] - 1) / 2, (l.bbox[2] + l.bbox[5] - 1) / 2];
    if (!centre && l.centroid_vox) centre = [l.centroid_vox[1], l.centroid_vox[2]];
    if (!centre) { app.views.setPos([z, S.pos[1], S.pos[2]]); return; }
    const voxel = [z, centre[0], centre[1]];
    const inPlaneMm = Math.min(S.spacing[1], S.spacing[2]);
    let bbox = [z, Math.floor(centre[0]), Math.floor(centre[1]), z + 1, Math.floor(centre[0]) + 1, Math.floor(centre[1]) + 1];
    let rMm = 4 * inPlaneMm;
    if (l.bbox && !edited) {
      bbox = l.bbox;
      rMm = Math.max((l.bbox[4] - l.bbox[1]) * S.spacing[1], (l.bbox[5] - l.bbox[2]) * S.spacing[2], (l.bbox[3] - l.bbox[0]) * S.spacing[0]) / 2 + 2 * inPlaneMm;
    }
    S.selMark = { label, centre: voxel, rMm, bbox };
    app.views.centreAll(voxel);
  }

  app.stepLesion = (dir) => {
    const next = stepLesion(app.sortedLesions(), S.selected, dir);
    if (next) app.selectLesion(next.label);
  };
  app.renderLesions = renderLesions;

  store.subscribe("lesions", () => { renderLesions(); app.updateSelectedActions(); app.updateApprove(); });
  $("sort-dir").addEventListener("click", () => { S.sortAsc = !S.sortAsc; store.notify("lesions"); });
  $("lesion-list").addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-label]");
    if (li) { app.selectLesion(Number(li.dataset.label)); app.focusActive(); }
  });
}
