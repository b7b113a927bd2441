/* Save conflicts (pure, no DOM; unit-tested in tests/js): what the other side changed,
 * and how my new lesions are renumbered before my edits are replayed on their mask.
 *
 * An edit ("change") is what MaskEditor records: {label, kind, idx: voxel indices,
 * old: values before, neu: values after}. */

/** The mask my unsaved edits started from: `mask` with `changes` undone (newest first).
 * Returns a copy; `mask` is not modified. */
export function baseBeforeEdits(mask, changes) {
  const base = mask.slice();
  for (let c = changes.length - 1; c >= 0; c--) {
    const ch = changes[c];
    for (let k = ch.idx.length - 1; k >= 0; k--) base[ch.idx[k]] = ch.old[k];
  }
  return base;
}

/** Labels that `theirs` added, changed or erased compared with `base` (sorted lists). */
export function labelChanges(base, theirs) {
  if (base.length !== theirs.length) throw new Error(`masks differ in size: ${base.length} vs ${theirs.length}`);
  const inBase = new Set(), inTheirs = new Set(), touched = new Set();
  for (let i = 0; i < base.length; i++) {
    const a = base[i], b = theirs[i];
    if (a) inBase.add(a);
    if (b) inTheirs.add(b);
    if (a !== b) { if (a) touched.add(a); if (b) touched.add(b); }
  }
  const added = [], changed = [], erased = [];
  for (const l of [...touched].sort((x, y) => x - y)) {
    if (!inBase.has(l)) added.push(l); else if (!inTheirs.has(l)) erased.push(l); else changed.push(l);
  }
  return { added, changed, erased };
}

/** One sentence for the conflict dialog. */
export function describeChanges({ added, changed, erased }) {
  const part = (name, list) => (list.length ? `${name} lesion${list.length > 1 ? "s" : ""} ${list.join(", ")}` : "");
  const parts = [part("added", added), part("changed", changed), part("erased", erased)].filter(Boolean);
  return parts.length ? `They ${parts.join("; ")}.` : "Their revision draws the same lesions as yours started from.";
}

/** Labels present in a mask. */
export function labelsIn(mask) {
  const out = new Set();
  for (let i = 0; i < mask.length; i++) if (mask[i]) out.add(mask[i]);
  return out;
}

/** New labels for my lesions drawn here whose label they also used (the two would merge
 * into one lesion): Map(mine -> a fresh label above every label in `used`). */
export function relabelPlan(myNewLabels, theirLabels, used) {
  let top = 0;
  for (const l of used) if (l > top) top = l;
  for (const l of theirLabels) if (l > top) top = l;
  const remap = new Map();
  for (const label of [...myNewLabels].sort((a, b) => a - b)) {
    if (theirLabels.has(label)) remap.set(label, ++top);
  }
  return remap;
}

/** My changes with labels renumbered by `remap` (changes are not modified). */
export function relabelChanges(changes, remap) {
  if (!remap.size) return changes;
  return changes.map((ch) => ({ ...ch, label: remap.get(ch.label) || ch.label, neu: ch.neu.map((v) => remap.get(v) || v) }));
}
