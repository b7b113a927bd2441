/* The lesion rows the panel shows (pure, no DOM; unit-tested in tests/js): the server's
 * lesions plus lesions drawn here and not saved yet, with volumes that follow the edits. */

/** Under this volume a lesion is marked *small* (the kind that gets missed). */
export const SMALL_MM3 = 100;

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

/** Ranked by volume (smallest first when asc), ties by label. Returns a new list. */
export function sortLesions(list, asc = true) {
  const out = list.slice();
  out.sort((a, b) => {
    const va = shownVolume(a) || 0, vb = shownVolume(b) || 0;
    return asc ? va - vb || a.label - b.label : vb - va || a.label - b.label;
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
