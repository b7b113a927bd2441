/* Overlays drawn on cornerstone's own canvas after each render, in image pixel
 * coordinates, so they stay in register with zoom and pan, in every plane: the fused CT
 * blend and the lesion label mask (one colour per lesion, outline always opaque, fill at
 * the chosen opacity, the selected lesion brighter, rejected lesions a faint red outline
 * or hidden), or in outline mode contour lines between voxels only (outlineSegments); in
 * a MIP view also the dashed, dimmer outline of every lesion within the slab (projectSlab). Slice bitmaps are cached per plane and rebuilt only when that slice (axial),
 * any slice (coronal, sagittal), the selection or the style changes.
 * `paintLabels` and `outlineSegments` are pure (unit-tested in tests/js); the classes make canvases. */
import { extractSlice, planeShape } from "./planes.js";
import { labelExtents } from "./measure.js";
import { labelBoxes, slabOutline } from "./slab.js";

// Distinct hues that read well on a dark grey MR; red is kept out (it means "rejected").
const PALETTE = [
  [255, 214, 0], [0, 200, 255], [80, 255, 120], [255, 120, 220], [255, 150, 40],
  [150, 130, 255], [0, 255, 200], [220, 255, 80], [255, 90, 140], [90, 170, 255],
  [200, 120, 255], [120, 255, 255],
];
export const REJECTED_RGB = [200, 70, 70];
export const REJECTED_ALPHA = 130;
export function labelColor(label) { return PALETTE[(Math.max(1, label) - 1) % PALETTE.length]; }
export function labelCss(label, a = 1) { const c = labelColor(label); return `rgba(${c[0]},${c[1]},${c[2]},${a})`; }

function packRgba(c, a) { return (((a & 255) << 24) | (c[2] << 16) | (c[1] << 8) | c[0]) >>> 0; } // little-endian RGBA

/** How the brush / eraser outline is stroked, in order (`width` in screen pixels, `dash`
 * in screen pixels or null): a dark halo under a white line, so the outline reads over
 * the lesion being painted whatever its colour, and over bright or dark MR. The eraser
 * is dashed. */
export function brushOutlineStrokes(tool) {
  const dash = tool === "eraser" ? [3, 3] : null;
  return [
    { colour: "rgba(0,0,0,0.75)", width: 3, dash },
    { colour: "rgba(255,255,255,0.95)", width: 1.25, dash },
  ];
}

/** Paint a (rows x cols) label image into `out` (Uint32Array of little-endian RGBA, 0 =
 * transparent). style: {opacity 0..1, selected, rejected: Set, showRejected, hidden: Set}.
 * Returns whether any pixel was painted. */
export function paintLabels(labels, rows, cols, style, out) {
  const fill = Math.round(style.opacity * 255);
  const colours = new Map();
  let any = false;
  for (let y = 0; y < rows; y++) {
    const row = y * cols;
    for (let x = 0; x < cols; x++) {
      const l = labels[row + x];
      if (!l || style.hidden.has(l)) continue;
      const rejected = style.rejected.has(l);
      if (rejected && !style.showRejected) continue;
      const edge = x === 0 || x === cols - 1 || y === 0 || y === rows - 1 ||
        labels[row + x - 1] !== l || labels[row + x + 1] !== l || labels[row + x - cols] !== l || labels[row + x + cols] !== l;
      if (rejected) {
        if (edge) { out[row + x] = packRgba(REJECTED_RGB, REJECTED_ALPHA); any = true; }
        continue;
      }
      const sel = l === style.selected;
      const k = l * 4 + (edge ? 1 : 0) + (sel ? 2 : 0);
      let c = colours.get(k);
      if (c === undefined) {
        c = packRgba(labelColor(l), edge ? 255 : Math.min(255, sel ? fill + 50 : fill));
        colours.set(k, c);
      }
      out[row + x] = c;
      any = true;
    }
  }
  return any;
}

/** Contour lines of a (rows x cols) label image, for the outline display: the voxel
 * edges between a label and anything else (another label, background, the image border),
 * merged into straight runs. Returns Map label -> flat array [x0, y0, x1, y1, ...] in
 * pixel-corner coordinates (pixel (r, c) spans x c..c+1, y r..r+1), so lines run between
 * voxels and never cover one: a 1-voxel lesion keeps its signal visible inside a square.
 * `skip(label)` leaves a label out (hidden or rejected-and-hidden). */
export function outlineSegments(labels, rows, cols, skip = () => false) {
  const out = new Map();
  const push = (l, x0, y0, x1, y1) => {
    if (skip(l)) return;
    let a = out.get(l);
    if (!a) { a = []; out.set(l, a); }
    a.push(x0, y0, x1, y1);
  };
  // side(i, j): the label on one side of boundary j of line i whose edge is drawn there
  // (0 when both sides agree); runs of equal labels along a line become one segment.
  const runs = (lines, len, side, emit) => {
    for (let i = 0; i <= lines; i++) {
      for (const which of [0, 1]) {
        let start = 0, cur = 0;
        for (let j = 0; j <= len; j++) {
          const l = j < len ? side(i, j, which) : 0;
          if (l === cur) continue;
          if (cur) emit(cur, i, start, j);
          cur = l; start = j;
        }
      }
    }
  };
  const at = (r, c) => (r < 0 || r >= rows || c < 0 || c >= cols ? 0 : labels[r * cols + c]);
  runs(rows, cols, (y, c, which) => {
    const a = at(y - 1, c), b = at(y, c);
    return a === b ? 0 : which ? b : a;
  }, (l, y, c0, c1) => push(l, c0, y, c1, y));
  runs(cols, rows, (x, r, which) => {
    const a = at(r, x - 1), b = at(r, x);
    return a === b ? 0 : which ? b : a;
  }, (l, x, r0, r1) => push(l, x, r0, x, r1));
  return out;
}

/** The labels of slices lo..hi (inclusive) of `plane` projected onto one (rows x cols)
 * image, for the MIP view: a pixel takes the label of the slab slice nearest slice k
 * that has one there (ties: the lower slice), so lesions anywhere in the slab show
 * where the MIP shows their signal. `mask` is the flat (D, H, W) label volume. */
export function projectSlab(mask, shape, plane, lo, hi, k) {
  const { rows, cols } = planeShape(plane, shape);
  const out = new mask.constructor(rows * cols);
  const order = [];
  for (let s = lo; s <= hi; s++) order.push(s);
  order.sort((a, b) => Math.abs(b - k) - Math.abs(a - k) || b - a);  // nearest written last
  const tmp = plane === "axial" ? null : new mask.constructor(rows * cols);
  for (const s of order) {
    const slice = extractSlice(mask, shape, plane, s, tmp);
    for (let i = 0; i < slice.length; i++) if (slice[i]) out[i] = slice[i];
  }
  return out;
}

function canvasOf(rows, cols, reuse) {
  const canvas = reuse || document.createElement("canvas");
  canvas.width = cols; canvas.height = rows;
  return canvas;
}

export class MaskOverlay {
  constructor() {
    this.mask = null; this.shape = null;
    this.opacity = 0.35; this.visible = true; this.selected = 0;
    this.hidden = new Set();          // labels not drawn
    this.rejected = new Set();        // drawn dimmed (outline only), or not at all
    this.showRejected = true;
    this.outline = false;             // contour lines instead of filled labels
    this.cache = new Map();           // "plane/k" -> {canvas, version}
    this.slabCache = new Map();       // plane -> {version, segments} of the MIP slab's outline
    this.boxes = null;                // {version, boxes}: labelBoxes of the mask (slab.js)
    this.maskSerial = 0;              // a new mask (setMask)
    this.sliceVersion = null;         // Uint32Array(D): axial slice z edited
    this.editVersion = 0;             // any slice edited (coronal and sagittal cross them all)
    this.globalVersion = 1;
  }
  setMask(mask, shape) {
    this.shape = shape;
    this.mask = mask;
    this.sliceVersion = new Uint32Array(shape[0]);
    this.maskSerial++;
    this.cache.clear();
    this.globalVersion++;
  }
  touchSlice(z) { if (this.sliceVersion) { this.sliceVersion[z]++; this.editVersion++; } }
  touchAll() { this.globalVersion++; }
  setOpacity(v) { this.opacity = v; this.touchAll(); }
  setSelected(label) { if (label !== this.selected) { this.selected = label; this.touchAll(); } }
  /** Rejected lesions are not exported: draw them as a faint red outline, or hide them. */
  setRejected(labels, show = this.showRejected) {
    const next = new Set(labels);
    const same = next.size === this.rejected.size && [...next].every((l) => this.rejected.has(l));
    if (same && show === this.showRejected) return;
    this.rejected = next; this.showRejected = show; this.touchAll();
  }

  /** Contour lines only (no fill): the signal inside a tiny lesion stays visible. */
  setOutline(on) { if (on !== this.outline) { this.outline = on; this.touchAll(); } }
  skip(l) { return this.hidden.has(l) || (this.rejected.has(l) && !this.showRejected); }

  /** The bitmap of slice k of a plane (null when no lesion crosses it, or in outline mode). */
  sliceCanvas(plane, k) { const info = this.sliceInfo(plane, k); return info ? info.canvas : null; }

  /** Slice k of a plane: {canvas (filled display, null in outline mode), segments
   * (outline mode: Map label -> [x0, y0, x1, y1, ...]), extents (Map label -> pixel
   * bounds, for the small-lesion markers)}; null when no lesion crosses it. Cached. */
  sliceInfo(plane, k) {
    if (!this.mask) return null;
    const local = plane === "axial" ? this.sliceVersion[k] : this.editVersion;
    const version = this.globalVersion * 1e7 + local;
    const id = `${plane}/${k}`;
    const hit = this.cache.get(id);
    if (hit && hit.version === version) return hit.info;
    const { rows, cols } = planeShape(plane, this.shape);
    const labels = extractSlice(this.mask, this.shape, plane, k);
    const extents = labelExtents(labels, rows, cols);
    let info = null;
    if (extents.size) {
      info = { canvas: null, segments: null, extents };
      if (this.outline) info.segments = outlineSegments(labels, rows, cols, (l) => this.skip(l));
      else {
        const canvas = canvasOf(rows, cols, hit && hit.info && hit.info.canvas);
        const ctx = canvas.getContext("2d");
        const img = ctx.createImageData(cols, rows);
        paintLabels(labels, rows, cols, this, new Uint32Array(img.data.buffer));
        ctx.putImageData(img, 0, 0);
        info.canvas = canvas;
      }
    }
    if (plane !== "axial" && this.cache.size > 600) this.cache.clear();
    this.cache.set(id, { info, version });
    return info;
  }

  /** Outline segments (Map label -> [x0, y0, x1, y1, ...]) of the lesions within the
   * MIP slab lo..hi of a plane, projected onto it as projectSlab does (slab.js: only the
   * crop the lesions lie in); cached per plane until the slab, its centre k, the mask or
   * the style changes. */
  slabSegments(plane, lo, hi, k) {
    if (!this.mask) return null;
    const version = `${this.globalVersion}/${this.editVersion}/${lo}/${hi}/${k}`;
    const hit = this.slabCache.get(plane);
    if (hit && hit.version === version) return hit.segments;
    // touchAll also follows a rebase that relabels the mask: the boxes follow it too.
    const maskVersion = `${this.maskSerial}/${this.editVersion}/${this.globalVersion}`;
    if (!this.boxes || this.boxes.version !== maskVersion) {
      this.boxes = { version: maskVersion, boxes: labelBoxes(this.mask, this.shape) };
    }
    const segments = slabOutline(this.mask, this.shape, plane, lo, hi, k, this.boxes.boxes, outlineSegments, (l) => this.skip(l));
    this.slabCache.set(plane, { version, segments });
    return segments;
  }

  /** Stroke the outline of slice info `info` (image pixel coordinates; `lineWidth` in
   * image pixels): each lesion in its colour, the selected one thicker, rejected ones
   * faint red. `dash` (image pixels) and `alpha`: the MIP slab's projected outline is
   * drawn dashed and dimmer than the current slice's. */
  strokeOutline(ctx, info, lineWidth, { dash = null, alpha = 1 } = {}) {
    if (!info || !info.segments) return;
    ctx.setLineDash(dash || []);
    for (const [l, seg] of info.segments) {
      const rejected = this.rejected.has(l);
      ctx.strokeStyle = rejected ? `rgba(${REJECTED_RGB.join(",")},${(alpha * REJECTED_ALPHA) / 255})` : labelCss(l, alpha);
      ctx.lineWidth = l === this.selected ? lineWidth * 2 : lineWidth;
      ctx.beginPath();
      for (let i = 0; i < seg.length; i += 4) { ctx.moveTo(seg[i], seg[i + 1]); ctx.lineTo(seg[i + 2], seg[i + 3]); }
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }
}

/** The CT slice windowed (bone by default) for blending over the MR. */
export class FusedCT {
  constructor() { this.cache = new Map(); this.blend = 0.45; this.wc = 400; this.ww = 1800; }
  setWindow(wc, ww) { if (wc !== this.wc || ww !== this.ww) { this.wc = wc; this.ww = ww; this.cache.clear(); } }
  sliceCanvas(vol, plane, k) {
    if (!vol) return null;
    const id = `${plane}/${k}`;
    const hit = this.cache.get(id);
    if (hit) return hit;
    const { rows, cols } = planeShape(plane, vol.shape);
    const px = extractSlice(vol.data, vol.shape, plane, k);
    const canvas = canvasOf(rows, cols, null);
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(cols, rows);
    const out = new Uint32Array(img.data.buffer);
    const lo = this.wc - this.ww / 2, scale = 255 / this.ww;
    for (let i = 0; i < px.length; i++) {
      let g = (px[i] - lo) * scale;
      g = g < 0 ? 0 : g > 255 ? 255 : g | 0;
      // Bone in a warm tint, opaque where the CT is bright and clear where it is dark,
      // so the MR stays readable and the skull (the frame of reference) shows on top.
      out[i] = (g << 24) | ((g * 0.55) << 16) | ((g * 0.85) << 8) | g;
    }
    ctx.putImageData(img, 0, 0);
    if (this.cache.size > 300) this.cache.clear();
    this.cache.set(id, canvas);
    return canvas;
  }
}
