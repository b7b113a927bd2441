/* Mask editing: brush and eraser (radius in mm, in any plane, on the selected lesion; a
 * disc on the slice, or a sphere through the neighbouring slices), interpolation fills, new
 * lesion, delete lesion, undo/redo, and voxel counts per label kept up to date so that
 * lesion volumes follow every edit (count x voxel volume). An edit is a list of voxel
 * changes (index, old, new); undo writes the old values back, redo the new ones. */

import { sphereOffsets } from "./shapes.js";

class Change {
  constructor(label, kind) {
    this.label = label; this.kind = kind;
    this.idx = []; this.old = []; this.neu = []; this.slices = new Set(); this.seen = new Map();
  }
}

export class MaskEditor {
  constructor(mask, shape, spacing, { onChange } = {}) {
    this.onChange = onChange || (() => {});
    this.setMask(mask, shape, spacing);
  }
  setMask(mask, shape, spacing) {
    this.mask = mask; this.shape = shape; this.spacing = spacing;
    const [D, H, W] = shape;
    this.D = D; this.H = H; this.W = W;
    this.voxelMm3 = spacing[0] * spacing[1] * spacing[2];
    this.undoStack = []; this.redoStack = []; this.current = null;
    this.savedDepth = 0;   // undo depth at the last save/load: dirty when different
    this.recount();
  }
  recount() {
    const counts = new Map();
    const m = this.mask;
    for (let i = 0; i < m.length; i++) {
      const l = m[i];
      if (l) counts.set(l, (counts.get(l) || 0) + 1);
    }
    this.counts = counts;
  }
  volumeMm3(label) { return (this.counts.get(label) || 0) * this.voxelMm3; }
  maxLabel() { let mx = 0; for (const l of this.counts.keys()) if (l > mx) mx = l; return mx; }
  get dirty() { return this.undoStack.length !== this.savedDepth || this.savedDepth < 0; }
  markSaved() { this.savedDepth = this.undoStack.length; }
  /** Edits made since the last save, oldest first. */
  unsavedChanges() { return this.savedDepth < 0 ? this.undoStack.slice() : this.undoStack.slice(this.savedDepth); }

  _set(ch, i, v) {
    const old = this.mask[i];
    if (old === v) return;
    const at = ch.seen.get(i);
    if (at === undefined) { ch.seen.set(i, ch.idx.length); ch.idx.push(i); ch.old.push(old); ch.neu.push(v); }
    else { ch.neu[at] = v; }
    this.mask[i] = v;
    if (old) { const c = (this.counts.get(old) || 0) - 1; if (c > 0) this.counts.set(old, c); else this.counts.delete(old); }
    if (v) this.counts.set(v, (this.counts.get(v) || 0) + 1);
    ch.slices.add((i / (this.H * this.W)) | 0);
  }

  begin(label, kind) { this.current = new Change(label, kind); return this.current; }
  end() {
    const ch = this.current; this.current = null;
    if (!ch || !ch.idx.length) return null;
    ch.seen = null;
    this.undoStack.push(ch); this.redoStack = [];
    if (this.savedDepth > this.undoStack.length - 1) this.savedDepth = -1; // saved state lost from redo
    this.onChange(ch, "do");
    return ch;
  }

  /** Paint (brush) or erase a disc of radius_mm around (cy, cx) on axial slice z. */
  dab(z, cy, cx, radiusMm, erase) { this.dabIn("axial", z, cy, cx, radiusMm, erase); }
  /** A stroke segment on axial slice z (see lineIn). */
  line(z, a, b, radiusMm, erase) { this.lineIn("axial", z, a, b, radiusMm, erase); }

  /** How (row, col) of slice k of a plane maps to the flat mask (planes.js layout:
   * coronal / sagittal rows run superior to inferior). */
  _planeIndex(plane, k) {
    const { D, H, W } = this;
    const [dz, dy, dx] = this.spacing;
    if (plane === "axial") return { rows: H, cols: W, rowMm: dy, colMm: dx, at: (r, c) => k * H * W + r * W + c };
    if (plane === "coronal") return { rows: D, cols: W, rowMm: dz, colMm: dx, at: (r, c) => (D - 1 - r) * H * W + k * W + c };
    if (plane === "sagittal") return { rows: D, cols: H, rowMm: dz, colMm: dy, at: (r, c) => (D - 1 - r) * H * W + c * W + k };
    throw new Error(`unknown plane ${plane}`);
  }

  /** Paint (brush) or erase a disc of radius_mm (an ellipse in voxels when the plane's
   * pixels are not square) around (row, col) on slice k of a plane; with `sphere` a ball
   * of radius_mm around that voxel instead (shapes.sphereOffsets: anisotropic spacing,
   * reaching the neighbouring slices once the radius exceeds half the slice spacing). */
  dabIn(plane, k, row, col, radiusMm, erase, sphere = false) {
    const ch = this.current; if (!ch) return;
    const g = this._planeIndex(plane, k);
    if (sphere) { this._sphereAt(g.at(Math.round(row), Math.round(col)), radiusMm, erase); return; }
    const rr = radiusMm / g.rowMm, rc = radiusMm / g.colMm;
    const r0 = Math.max(0, Math.floor(row - rr)), r1 = Math.min(g.rows - 1, Math.ceil(row + rr));
    const c0 = Math.max(0, Math.floor(col - rc)), c1 = Math.min(g.cols - 1, Math.ceil(col + rc));
    for (let r = r0; r <= r1; r++) {
      const dr = (r - row) / rr;
      for (let c = c0; c <= c1; c++) {
        const dc = (c - col) / rc;
        if (dc * dc + dr * dr > 1) continue;
        this._paint(g.at(r, c), erase);
      }
    }
  }
  /** Paint or erase the sphere around flat voxel index `centre` (same rules as a dab). */
  _sphereAt(centre, radiusMm, erase) {
    const { D, H, W } = this;
    if (this._lastBall && this._lastBall.ch === this.current && this._lastBall.centre === centre && this._lastBall.r === radiusMm) return;
    this._lastBall = { ch: this.current, centre, r: radiusMm };  // a slow drag repeats centres
    const key = `${radiusMm}|${this.spacing.join(",")}`;
    if (!this._ball || this._ball.key !== key) this._ball = { key, offsets: sphereOffsets(radiusMm, this.spacing) };
    const z = (centre / (H * W)) | 0, y = ((centre / W) | 0) % H, x = centre % W;
    for (const [dz, dy, dx] of this._ball.offsets) {
      const zz = z + dz, yy = y + dy, xx = x + dx;
      if (zz < 0 || zz >= D || yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
      this._paint(zz * H * W + yy * W + xx, erase);
    }
  }
  /** The brush never paints over another lesion; the eraser only removes the selected one. */
  _paint(i, erase) {
    const ch = this.current, v = this.mask[i];
    if (erase) { if (v === ch.label) this._set(ch, i, 0); }
    else if (v === 0) this._set(ch, i, ch.label);
  }
  /** Paint the current change's label on the flat voxel indices `indices`, over
   * background only (an interpolation fill, an accepted proposal). */
  fill(indices) {
    if (!this.current) return;
    for (const i of indices) this._paint(i, false);
  }

  /** A stroke segment in a plane: dabs along the line so that a fast drag leaves no gaps. */
  lineIn(plane, k, a, b, radiusMm, erase, sphere = false) {
    const g = this._planeIndex(plane, k);
    const step = Math.max(0.5, Math.min(radiusMm / g.rowMm, radiusMm / g.colMm) / 2);
    const dist = Math.hypot(b[0] - a[0], b[1] - a[1]);
    const n = Math.max(1, Math.ceil(dist / step));
    for (let s = 0; s <= n; s++) {
      const t = s / n;
      this.dabIn(plane, k, a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, radiusMm, erase, sphere);
    }
  }

  deleteLabel(label) {
    this.begin(label, "delete");
    const m = this.mask;
    for (let i = 0; i < m.length; i++) if (m[i] === label) this._set(this.current, i, 0);
    return this.end();
  }

  /** Forget what could be redone (a decision was made after undoing edits). */
  dropRedo() {
    if (!this.redoStack.length) return;
    this.redoStack = [];
    if (this.savedDepth > this.undoStack.length) this.savedDepth = -1; // saved state lost
  }

  undo() {
    const ch = this.undoStack.pop(); if (!ch) return null;
    for (let k = ch.idx.length - 1; k >= 0; k--) this._raw(ch.idx[k], ch.old[k]);
    this.redoStack.push(ch); this.onChange(ch, "undo"); return ch;
  }
  redo() {
    const ch = this.redoStack.pop(); if (!ch) return null;
    for (let k = 0; k < ch.idx.length; k++) this._raw(ch.idx[k], ch.neu[k]);
    this.undoStack.push(ch); this.onChange(ch, "redo"); return ch;
  }
  _raw(i, v) {
    const old = this.mask[i];
    if (old === v) return;
    this.mask[i] = v;
    if (old) { const c = (this.counts.get(old) || 0) - 1; if (c > 0) this.counts.set(old, c); else this.counts.delete(old); }
    if (v) this.counts.set(v, (this.counts.get(v) || 0) + 1);
  }

  /** After a conflict: take their mask and apply my unsaved edits on top of it. Each
   * change is re-recorded against their values so undo goes back to their version. */
  rebase(theirMask, changes) {
    this.mask.set(theirMask);
    this.recount();
    this.undoStack = []; this.redoStack = []; this.savedDepth = 0;
    for (const old of changes) {
      const ch = this.begin(old.label, old.kind);
      for (let k = 0; k < old.idx.length; k++) this._set(ch, old.idx[k], old.neu[k]);
      this.end();
    }
  }

  /** The slice where a label has most voxels (for lesions drawn here, not yet saved). */
  largestSlice(label) {
    const { H, W } = this; const n = H * W; let best = -1, bestCount = 0;
    for (let z = 0; z < this.D; z++) {
      let c = 0; const off = z * n;
      for (let i = off; i < off + n; i++) if (this.mask[i] === label) c++;
      if (c > bestCount) { bestCount = c; best = z; }
    }
    return best;
  }
  /** In-plane centre of a label on one slice. */
  centreOn(label, z) {
    const { H, W } = this; let sy = 0, sx = 0, c = 0; const off = z * H * W;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (this.mask[off + y * W + x] === label) { sy += y; sx += x; c++; }
    return c ? [sy / c, sx / c] : null;
  }
}
