/* Thick-slab maximum intensity projection (MIP) of one plane (pure, no DOM; unit-tested in
 * tests/js/mip.test.mjs).
 *
 * The volume is a flat C-order array of shape (D, H, W) = (z, y, x) with spacing_mm
 * (dz, dy, dx), as in planes.js. The slab of a plane is centred on its current slice k
 * and runs along that plane's normal (axial: z, spacing dz; coronal: y, dy; sagittal: x,
 * dx). It holds the slices whose centres lie within widthMm / 2 of slice k's centre:
 *   half = floor(widthMm / (2 * spacing) + 1e-9), slices k - half .. k + half,
 * clipped to the volume at its ends (the slab is cut there, never shifted). So a 10 mm
 * slab is 5 slices of 2 mm, or 11 slices of 1 mm (centres -5 .. +5 mm); a slab thinner
 * than one slice is the slice itself. Each pixel of the result is the maximum over the
 * slab at that (row, col) (Wallis et al., IEEE TMI 1989, MIP; thin/thick-slab MIP for
 * small brain metastases: e.g. Kakeda et al., AJNR 2007). Images come out oriented like
 * planes.extractSlice: coronal / sagittal rows are superior first (row = D - 1 - z). */
import { planeShape } from "./planes.js";

/** Slab widths (mm) the viewer offers. */
export const SLAB_WIDTHS_MM = [5, 10, 20];

const AXIS = { axial: 0, coronal: 1, sagittal: 2 };

function axisOf(plane) {
  const a = AXIS[plane];
  if (a === undefined) throw new Error(`unknown plane ${plane}`);
  return a;
}

/** Slices on each side of the centre slice for a slab of widthMm along an axis of
 * spacingMm. Throws on a width or spacing that is not a positive number. */
export function slabHalfWidth(widthMm, spacingMm) {
  if (!(widthMm > 0) || !Number.isFinite(widthMm)) throw new Error(`slab width ${widthMm} mm is not a positive number`);
  if (!(spacingMm > 0) || !Number.isFinite(spacingMm)) throw new Error(`spacing ${spacingMm} mm is not a positive number`);
  return Math.floor(widthMm / (2 * spacingMm) + 1e-9);
}

/** [lo, hi] (inclusive) slice indices of the slab of `plane` centred on slice k. */
export function slabRange(plane, k, widthMm, shape, spacing) {
  const axis = axisOf(plane);
  const count = shape[axis];
  if (!Number.isInteger(k) || k < 0 || k >= count) throw new Error(`slice ${k} outside 0..${count - 1} of ${plane}`);
  const half = slabHalfWidth(widthMm, spacing[axis]);
  return [Math.max(0, k - half), Math.min(count - 1, k + half)];
}

/** The slab's thickness in mm actually covered (slices x spacing, after clipping). */
export function slabThicknessMm(plane, k, widthMm, shape, spacing) {
  const [lo, hi] = slabRange(plane, k, widthMm, shape, spacing);
  return (hi - lo + 1) * spacing[axisOf(plane)];
}

/** The MIP image (rows x cols of planeShape) of the slab centred on slice k of `plane`,
 * from the flat (D, H, W) `data` (any typed array); written into `out` when given (its
 * length must be rows * cols), else into a new array of data's type. */
export function mipSlice(data, shape, plane, k, widthMm, spacing, out = null) {
  const [D, H, W] = shape;
  if (data.length !== D * H * W) throw new Error(`volume of ${data.length} values is not ${shape.join(" x ")}`);
  const [lo, hi] = slabRange(plane, k, widthMm, shape, spacing);
  const { rows, cols } = planeShape(plane, shape);
  const dst = out || new data.constructor(rows * cols);
  if (dst.length !== rows * cols) throw new Error(`output of ${dst.length} values is not ${rows} x ${cols}`);
  if (plane === "axial") {
    const n = H * W;
    dst.set(data.subarray(lo * n, (lo + 1) * n));
    for (let z = lo + 1; z <= hi; z++) {
      const base = z * n;
      for (let i = 0; i < n; i++) { const v = data[base + i]; if (v > dst[i]) dst[i] = v; }
    }
  } else if (plane === "coronal") {
    for (let z = 0; z < D; z++) {
      const r = (D - 1 - z) * W;
      dst.set(data.subarray(z * H * W + lo * W, z * H * W + lo * W + W), r);
      for (let y = lo + 1; y <= hi; y++) {
        const base = z * H * W + y * W;
        for (let x = 0; x < W; x++) { const v = data[base + x]; if (v > dst[r + x]) dst[r + x] = v; }
      }
    }
  } else {
    for (let z = 0; z < D; z++) {
      const r = (D - 1 - z) * H;
      for (let y = 0; y < H; y++) {
        const base = z * H * W + y * W;
        let m = data[base + lo];
        for (let x = lo + 1; x <= hi; x++) { const v = data[base + x]; if (v > m) m = v; }
        dst[r + y] = m;
      }
    }
  }
  return dst;
}

/** The slice (index along the plane's normal) that holds the maximum of the slab at
 * image pixel (row, col) of `plane`: where a bright dot seen in the MIP really is. On
 * ties the slice nearest k wins (then the lower index). */
export function mipDepth(data, shape, plane, k, widthMm, spacing, row, col) {
  const [D, H, W] = shape;
  const [lo, hi] = slabRange(plane, k, widthMm, shape, spacing);
  const { rows, cols } = planeShape(plane, shape);
  const r = Math.round(row), c = Math.round(col);
  if (r < 0 || r >= rows || c < 0 || c >= cols) return k;
  const at = plane === "axial" ? (s) => s * H * W + r * W + c
    : plane === "coronal" ? (s) => (D - 1 - r) * H * W + s * W + c
      : (s) => (D - 1 - r) * H * W + c * W + s;
  let best = k, bestV = data[at(k)];
  for (let s = lo; s <= hi; s++) {
    const v = data[at(s)];
    if (v > bestV || (v === bestV && Math.abs(s - k) < Math.abs(best - k))) { best = s; bestV = v; }
  }
  return best;
}

/** What the *MIP slab* buttons show: the width actually projected on screen (0 = Off)
 * and whether they can be pressed. A width is projected only on MR (the MR and fused
 * views; CT is never projected) once the whole MR volume is in memory; in CT view the
 * buttons read Off and are disabled, whatever width was chosen before.
 * `mipMm`: the width chosen (0 = off); `channel`: "mr" | "ct" | "fused". */
export function mipButtonState(mipMm, channel, mrLoaded) {
  const usable = channel !== "ct" && !!mrLoaded;
  const mm = Number(mipMm);
  return { shownMm: usable && SLAB_WIDTHS_MM.includes(mm) ? mm : 0, disabled: !usable };
}
