/* Geometry of the three planes on the model grid (pure, no DOM; unit-tested in tests/js).
 *
 * The volume is a flat C-order array of shape (D, H, W) = (z, y, x) with spacing_mm
 * (dz, dy, dx). Images of a plane are (rows, cols):
 *   axial    slice k = z: rows y (H), cols x (W), pixel spacing (dy, dx)
 *   coronal  slice k = y: rows z (D), cols x (W), pixel spacing (dz, dx)
 *   sagittal slice k = x: rows z (D), cols y (H), pixel spacing (dz, dy)
 * In coronal and sagittal images row 0 is the highest z (superior at the top, as
 * radiologists read them): row = D - 1 - z. Anisotropic pixels (2 mm slices on a 1 mm
 * grid) are drawn at their physical aspect by the viewport from the pixel spacings. */

export const PLANES = ["axial", "coronal", "sagittal"];

function check(plane) {
  if (!PLANES.includes(plane)) throw new Error(`unknown plane ${plane}`);
}

/** rows, cols and the number of slices of a plane for a volume of `shape` (D, H, W). */
export function planeShape(plane, shape) {
  check(plane);
  const [D, H, W] = shape;
  if (plane === "axial") return { rows: H, cols: W, count: D };
  if (plane === "coronal") return { rows: D, cols: W, count: H };
  return { rows: D, cols: H, count: W };
}

/** Pixel spacing in mm of a plane's rows (vertical) and columns (horizontal). */
export function planeSpacing(plane, spacing) {
  check(plane);
  const [dz, dy, dx] = spacing;
  if (plane === "axial") return { row: dy, col: dx };
  if (plane === "coronal") return { row: dz, col: dx };
  return { row: dz, col: dy };
}

/** Width / height in mm of a whole plane image (what the screen must show). */
export function physicalAspect(plane, shape, spacing) {
  const { rows, cols } = planeShape(plane, shape);
  const s = planeSpacing(plane, spacing);
  return (cols * s.col) / (rows * s.row);
}

/** The slice index of `plane` through voxel pos = [z, y, x]. */
export function sliceIndex(plane, pos) {
  check(plane);
  return plane === "axial" ? pos[0] : plane === "coronal" ? pos[1] : pos[2];
}

/** Voxel [z, y, x] (fractions allowed) -> {k, row, col} in a plane's image. */
export function toPlane(plane, pos, shape) {
  check(plane);
  const [z, y, x] = pos;
  const top = shape[0] - 1;
  if (plane === "axial") return { k: z, row: y, col: x };
  if (plane === "coronal") return { k: y, row: top - z, col: x };
  return { k: x, row: top - z, col: y };
}

/** (row, col) of slice k of a plane -> voxel [z, y, x]. Inverse of toPlane. */
export function fromPlane(plane, k, row, col, shape) {
  check(plane);
  const top = shape[0] - 1;
  if (plane === "axial") return [k, row, col];
  if (plane === "coronal") return [top - row, k, col];
  return [top - row, col, k];
}

/** Voxel indices clamped into the volume and rounded. */
export function clampPos(pos, shape) {
  return pos.map((v, i) => Math.max(0, Math.min(shape[i] - 1, Math.round(v))));
}

/** Slice k of a plane from a flat (D, H, W) array. Axial slices are views (no copy);
 * coronal and sagittal ones are copied into `out` (or a new array of data's type). */
export function extractSlice(data, shape, plane, k, out = null) {
  const [D, H, W] = shape;
  const { rows, cols, count } = planeShape(plane, shape);
  if (k < 0 || k >= count || !Number.isInteger(k)) throw new Error(`slice ${k} outside 0..${count - 1} of ${plane}`);
  if (plane === "axial") return data.subarray(k * H * W, (k + 1) * H * W);
  const dst = out || new data.constructor(rows * cols);
  if (plane === "coronal") {
    for (let r = 0; r < D; r++) {
      const src = (D - 1 - r) * H * W + k * W;
      dst.set(data.subarray(src, src + W), r * W);
    }
  } else {
    for (let r = 0; r < D; r++) {
      const base = (D - 1 - r) * H * W + k;
      const row = r * H;
      for (let c = 0; c < H; c++) dst[row + c] = data[base + c * W];
    }
  }
  return dst;
}

/** Range [lo, hi) of slices of a plane crossed by a lesion's bounding box
 * bbox = [z0, y0, x0, z1, y1, x1] (ends exclusive, as the API gives it). */
export function bboxSlices(plane, bbox) {
  check(plane);
  const axis = plane === "axial" ? 0 : plane === "coronal" ? 1 : 2;
  return [bbox[axis], bbox[axis + 3]];
}

/** A coronal or sagittal slice as the server sends it (rows in z order, shape (D, n))
 * turned superior-up like extractSlice's (row = D - 1 - z). Returns a new array. */
export function flipRows(px, rows, cols) {
  if (px.length !== rows * cols) throw new Error(`slice of ${px.length} values is not ${rows} x ${cols}`);
  const out = new px.constructor(px.length);
  for (let r = 0; r < rows; r++) out.set(px.subarray((rows - 1 - r) * cols, (rows - r) * cols), r * cols);
  return out;
}
