/* The MIP slab's projected lesion outline, computed only where the lesions are.
 *
 * Projecting every slice of a 20 mm slab of a 512 x 512 label volume and tracing the
 * outline of the whole image took ~35 ms a slice step (the MIP redraw budget is 50 ms).
 * The lesions' bounding boxes (one pass over the mask, cached until the mask changes)
 * tell which slices of the slab hold a lesion and which rows and columns they cover: only
 * that crop is projected and traced. The result equals outlineSegments(projectSlab(...))
 * of overlay.js, which tests/js/overlay.test.mjs checks on random volumes; the crop is
 * read straight from the volume (no whole-slice extraction). */

/** Per-label bounding boxes of a flat (D, H, W) label volume: Map label -> [z0, y0, x0,
 * z1, y1, x1] (voxel indices, ends inclusive). One pass over the volume. */
export function labelBoxes(mask, shape) {
  const [D, H, W] = shape;
  const boxes = new Map();
  for (let z = 0; z < D; z++) {
    for (let y = 0; y < H; y++) {
      const row = (z * H + y) * W;
      for (let x = 0; x < W; x++) {
        const l = mask[row + x];
        if (l === 0) continue;
        const b = boxes.get(l);
        if (b === undefined) { boxes.set(l, [z, y, x, z, y, x]); continue; }
        b[3] = z;  // z only grows
        if (y < b[1]) b[1] = y; if (y > b[4]) b[4] = y;
        if (x < b[2]) b[2] = x; if (x > b[5]) b[5] = x;
      }
    }
  }
  return boxes;
}

/** A (z, y, x) box (ends inclusive) in a plane's terms: slices s0..s1, rows r0..r1 and
 * columns c0..c1 of that plane's images (coronal and sagittal rows run superior first). */
export function planeBox(plane, box, D) {
  const [z0, y0, x0, z1, y1, x1] = box;
  if (plane === "axial") return { s0: z0, s1: z1, r0: y0, r1: y1, c0: x0, c1: x1 };
  if (plane === "coronal") return { s0: y0, s1: y1, r0: D - 1 - z1, r1: D - 1 - z0, c0: x0, c1: x1 };
  return { s0: x0, s1: x1, r0: D - 1 - z1, r1: D - 1 - z0, c0: y0, c1: y1 };
}

/** Where pixel (r, c) of slice s of a plane lies in the flat (D, H, W) volume:
 * base(s) + r * row + c * col (the layout extractSlice of planes.js reads). */
function planeStrides(plane, shape) {
  const [D, H, W] = shape;
  const top = (D - 1) * H * W;  // coronal and sagittal rows run superior first
  if (plane === "axial") return { base: (s) => s * H * W, row: W, col: 1 };
  if (plane === "coronal") return { base: (s) => top + s * W, row: -H * W, col: 1 };
  return { base: (s) => top + s, row: -H * W, col: W };
}

/** The crop of a plane that every lesion within slices lo..hi lies in, or null. */
function slabCrop(plane, lo, hi, boxes, D) {
  let crop = null;
  for (const box of boxes.values()) {
    const b = planeBox(plane, box, D);
    if (b.s1 < lo || b.s0 > hi) continue;
    if (!crop) { crop = { ...b }; continue; }
    crop.s0 = Math.min(crop.s0, b.s0); crop.s1 = Math.max(crop.s1, b.s1);
    crop.r0 = Math.min(crop.r0, b.r0); crop.r1 = Math.max(crop.r1, b.r1);
    crop.c0 = Math.min(crop.c0, b.c0); crop.c1 = Math.max(crop.c1, b.c1);
  }
  return crop;
}

/** Outline segments (Map label -> [x0, y0, x1, y1, ...] in the plane's pixel
 * coordinates) of the labels of slices lo..hi of `plane` projected as projectSlab does
 * (the slab slice nearest k wins a pixel; ties: the lower slice). `boxes`: labelBoxes of
 * `mask`; `outline`: overlay.js's outlineSegments (passed in: no import cycle); `skip`:
 * labels not drawn (they still occlude in the projection, as in projectSlab). */
export function slabOutline(mask, shape, plane, lo, hi, k, boxes, outline, skip = () => false) {
  const crop = slabCrop(plane, lo, hi, boxes, shape[0]);
  if (!crop) return new Map();
  const nr = crop.r1 - crop.r0 + 1, nc = crop.c1 - crop.c0 + 1;
  const img = new mask.constructor(nr * nc);
  const order = [];
  for (let s = Math.max(lo, crop.s0); s <= Math.min(hi, crop.s1); s++) order.push(s);
  order.sort((a, b) => Math.abs(b - k) - Math.abs(a - k) || b - a);  // nearest written last
  const st = planeStrides(plane, shape);
  for (const s of order) {
    const base = st.base(s) + crop.r0 * st.row + crop.c0 * st.col;
    for (let r = 0; r < nr; r++) {
      let src = base + r * st.row;
      const dst = r * nc;
      for (let c = 0; c < nc; c++, src += st.col) { const v = mask[src]; if (v) img[dst + c] = v; }
    }
  }
  const segments = outline(img, nr, nc, skip);
  for (const seg of segments.values()) {
    for (let i = 0; i < seg.length; i += 2) { seg[i] += crop.c0; seg[i + 1] += crop.r0; }
  }
  return segments;
}
