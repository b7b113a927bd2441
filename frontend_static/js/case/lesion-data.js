/* The lesion rows the panel shows (pure, no DOM; unit-tested in tests/js): the server's
 * lesions plus lesions drawn here and not saved yet, with volumes that follow the edits. */

/** Under this volume a lesion is marked *small* (the kind that gets missed). */
export const SMALL_MM3 = 100;

/** Hover help of the panel's columns (the header's and the cells' `title`). */
export const COLUMN_HELP = {
  lesion: "Lesions ranked by volume; small = under 100 mm³, the kind that gets missed",
  volume: "Volume in mm³ (one unit throughout; 1 cm³ = 1000 mm³), from the mask, following your edits",
  axial: "Longest axial diameter in mm: the longest in-plane distance between voxel centres on any one axial slice (RANO-BM reads this one); measured by the server at each save",
  longest: "Longest 3D diameter in mm: the longest distance between any two voxel centres of the lesion, across slices; measured by the server at each save",
  pd: "p: the model's mean probability over the lesion; Δ: how much its two networks disagree there",
  p: "p = mean ensemble probability over the lesion's voxels (0-1): how sure the model is that this is a lesion",
  disagreement: "Δ = mean |U-Net − DeepMedic| probability over the lesion's voxels (0-1): high means the two networks disagree, so look closely",
  decision: "Your decision: pending, accepted, rejected (not exported), or added here",
};

/** A diameter cell of a row (`field` = longest_axial_diameter_mm | longest_diameter_mm):
 * {mm (null when not shown), text (when mm is null), stale (edited since measured), title}.
 * Diameters come from the server, measured on the saved mask: a lesion drawn here has
 * none until it is saved, an edited one shows its last saved value marked stale. */
export function diameterCell(l, field) {
  const help = field === "longest_axial_diameter_mm" ? COLUMN_HELP.axial : COLUMN_HELP.longest;
  if (l.local) return { mm: null, text: "…", stale: false, title: "Measured when saved" };
  const mm = l[field] == null ? null : Number(l[field]);
  if (mm == null) return { mm: null, text: "—", stale: false, title: "Not measured yet" };
  if (l.changed) return { mm, text: "", stale: true, title: `${mm.toFixed(1)} mm at the last save; edited since, measured again when saved` };
  return { mm, text: "", stale: false, title: help };
}

/** Copies of the server rows and the local rows, each with `localVolume` (from the
 * editor's voxel counts when there is an editor) and `changed` (edited here). */
export function mergeLesions(serverRows, localRows, volumeOf = null) {
  const list = serverRows.map((l) => ({ ...l }));
  for (const l of localRows) list.push({ ...l });
  for (const l of list) {
    l.localVolume = volumeOf ? volumeOf(l.label) : l.volume_mm3;
    l.changed = !!volumeOf && l.volume_mm3 != null && Math.abs(l.localVolume - l.volume_mm3) > 1e-6;
  }
  return list;
}

/** The volume shown for a row: the local one when known. */
export function shownVolume(l) {
  return l.localVolume != null ? l.localVolume : l.volume_mm3;
}

/** What a row's volume cell says: "empty" for a lesion drawn here with no voxel yet (a
 * new lesion waiting for the brush), "erased" for a lesion whose voxels are all gone
 * (erased here, or erased and saved: the server keeps the row at 0 mm³, rejected),
 * "live" otherwise (or when the volume is not known). */
export function rowState(l) {
  const v = shownVolume(l);
  if (v == null || v > 0) return "live";
  return l.local ? "empty" : "erased";
}

/** Labels of saved lesions edited here and not saved yet (their volume differs from the
 * saved one: erased whole or in part), ascending. Click to add sends them as
 * `ignore_labels`: the server checks the saved mask, so without them a click where a
 * lesion was erased on screen would hit "already belongs to lesion N". */
export function unsavedChangedLabels(list) {
  return list.filter((l) => !l.local && l.changed).map((l) => l.label).sort((a, b) => a - b);
}

/** Ranked by volume (smallest first when asc), ties by label; erased rows (no voxels
 * left, rowState "erased") go last either way, so "smallest first" opens on a lesion that
 * is there. Returns a new list. */
export function sortLesions(list, asc = true) {
  const out = list.slice();
  const gone = (l) => (rowState(l) === "erased" ? 1 : 0);
  out.sort((a, b) => {
    const va = shownVolume(a) || 0, vb = shownVolume(b) || 0;
    return gone(a) - gone(b) || (asc ? va - vb || a.label - b.label : vb - va || a.label - b.label);
  });
  return out;
}

/** Rows still waiting for a decision (lesions drawn here need none; a lesion erased here
 * whole will be rejected by the save, so it needs none either). */
export function pendingLesions(list, { erasedCounts = false } = {}) {
  return list.filter((l) => !l.local && (l.decision || "pending") === "pending" &&
    !(erasedCounts && l.localVolume === 0 && l.changed));
}

/** The next row after `label` going `dir` (+1 / -1), wrapping; the first/last when
 * `label` is not in the list; null for an empty list. */
export function stepLesion(list, label, dir) {
  if (!list.length) return null;
  const i = list.findIndex((l) => l.label === label);
  const j = i < 0 ? (dir > 0 ? 0 : list.length - 1) : (i + dir + list.length) % list.length;
  return list[j];
}

/** A label for a new lesion: one above every label in use. */
export function nextFreeLabel(...labelLists) {
  let top = 0;
  for (const labels of labelLists) for (const l of labels) if (l > top) top = l;
  return top + 1;
}
