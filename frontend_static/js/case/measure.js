/* Measurement geometry of the case viewer (pure, no DOM; unit-tested in tests/js):
 * ruler distances in mm, patient coordinates of a voxel, the orientation letters on a
 * plane's edges from the grid's direction cosines, the scale-bar length, and which
 * lesions get a small-lesion marker.
 *
 * Conventions (planes.js): the volume is (D, H, W) = (z, y, x) with spacing_mm
 * (dz, dy, dx); an image of a plane has (row, col) pixels with spacing planeSpacing();
 * coronal / sagittal rows run from the highest z down (row = D - 1 - z).
 * The grid's `direction` is nine values, row-major, column j = the unit vector of image
 * axis j (x, y, z; SimpleITK / ITK order) in patient LPS coordinates, and
 * `origin_xyz_mm` is the centre of voxel (0, 0, 0): point = origin + D @ (ijk * spacing)
 * (ml/imaging/geometry.py GridGeometry). */
import { planeSpacing } from "./planes.js";

/** Distance in mm between image points a = [row, col] and b of one plane:
 * sqrt((drow * row_mm)^2 + (dcol * col_mm)^2). In coronal and sagittal images a row
 * step is a slice step (dz), so 2 mm slices count 2 mm per row. */
export function distanceMm(plane, spacing, a, b) {
  const sp = planeSpacing(plane, spacing);
  return Math.hypot((b[0] - a[0]) * sp.row, (b[1] - a[1]) * sp.col);
}

function validDirection(direction) {
  return Array.isArray(direction) && direction.length === 9 && direction.every((v) => Number.isFinite(Number(v)));
}

/** Position in mm of voxel pos = [z, y, x] (fractions allowed). With the study's origin
 * and direction: patient coordinates {frame: "LPS", xyz}; otherwise grid millimetres
 * from voxel (0, 0, 0) {frame: "grid", xyz} (x, y, z order in both). */
export function voxelToMm(pos, spacing, origin = null, direction = null) {
  const ijk = [pos[2] * spacing[2], pos[1] * spacing[1], pos[0] * spacing[0]];
  const hasOrigin = Array.isArray(origin) && origin.length === 3 && origin.every((v) => Number.isFinite(Number(v)));
  if (!hasOrigin) return { frame: "grid", xyz: ijk };
  const d = validDirection(direction) ? direction.map(Number) : [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const xyz = [0, 1, 2].map((r) => Number(origin[r]) + d[r * 3] * ijk[0] + d[r * 3 + 1] * ijk[1] + d[r * 3 + 2] * ijk[2]);
  return { frame: validDirection(direction) ? "LPS" : "LPS (axes assumed)", xyz };
}

// Patient LPS axes: the letter a unit vector along +axis points to, and along -axis.
const LETTERS = [["L", "R"], ["P", "A"], ["S", "I"]];

/** The orientation letters of a patient-space direction v (LPS): the dominant axis
 * first, then any other axis with at least `minor` of it (oblique grids get two or
 * three letters, e.g. "LA"); "" for a zero vector. */
export function orientationLetter(v, minor = 0.25) {
  const mags = v.map((c) => Math.abs(c));
  const top = Math.max(...mags);
  if (!(top > 0)) return "";
  return [0, 1, 2].filter((i) => mags[i] >= minor * top && mags[i] > 1e-6)
    .sort((i, j) => mags[j] - mags[i])
    .map((i) => LETTERS[i][v[i] > 0 ? 0 : 1]).join("");
}

/** The patient directions of a plane's columns (+col, to the right on screen) and rows
 * (+row, down on screen), each as an LPS vector. */
export function planeAxes(plane, direction) {
  const d = validDirection(direction) ? direction.map(Number) : [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const axis = (j, sign = 1) => [d[j] * sign, d[3 + j] * sign, d[6 + j] * sign];
  if (plane === "axial") return { col: axis(0), row: axis(1) };
  if (plane === "coronal") return { col: axis(0), row: axis(2, -1) };
  if (plane === "sagittal") return { col: axis(1), row: axis(2, -1) };
  throw new Error(`unknown plane ${plane}`);
}

/** Letters on the four edges of a plane's image: {left, right, top, bottom}. The
 * identity (LPS) grid gives the radiological convention: axial R | L, A on top;
 * coronal R | L, S on top; sagittal A | P, S on top. */
export function orientationLabels(plane, direction) {
  const { col, row } = planeAxes(plane, direction);
  const neg = (v) => v.map((c) => -c);
  return { left: orientationLetter(neg(col)), right: orientationLetter(col), top: orientationLetter(neg(row)), bottom: orientationLetter(row) };
}

export const SCALE_STEPS_MM = [1, 2, 5, 10, 20, 50, 100, 200];

/** The scale bar: the longest of SCALE_STEPS_MM whose length on screen (pxPerMm screen
 * pixels per mm) fits in maxPx, and its length in pixels; the shortest step when none
 * fits. {mm, px}; null for a non-positive or non-finite pxPerMm. */
export function scaleBar(pxPerMm, maxPx) {
  if (!(pxPerMm > 0) || !Number.isFinite(pxPerMm)) return null;
  let mm = SCALE_STEPS_MM[0];
  for (const s of SCALE_STEPS_MM) if (s * pxPerMm <= maxPx) mm = s;
  return { mm, px: mm * pxPerMm };
}

/** Labels of lesions to mark as small: volume (mm3) under `thresholdMm3`, above 0 (an
 * erased lesion has nothing to point at), not rejected. rows: {label, volume, decision}. */
export function smallLabels(rows, thresholdMm3) {
  return rows.filter((r) => r.volume != null && r.volume > 0 && r.volume < thresholdMm3 && r.decision !== "rejected")
    .map((r) => r.label);
}

/** Per-label extent of a plane image: Map label -> {r0, r1, c0, c1} (inclusive pixel
 * bounds) of each label present in a (rows x cols) label image (only those in the Set
 * `only` when given). */
export function labelExtents(labels, rows, cols, only = null) {
  const out = new Map();
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const l = labels[base + c];
      if (!l || (only && !only.has(l))) continue;
      const e = out.get(l);
      if (!e) out.set(l, { r0: r, r1: r, c0: c, c1: c });
      else { if (r > e.r1) e.r1 = r; if (c < e.c0) e.c0 = c; if (c > e.c1) e.c1 = c; }
    }
  }
  return out;
}
