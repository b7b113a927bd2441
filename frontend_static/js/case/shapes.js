/* Shapes for faster editing (pure, no DOM; unit-tested in tests/js/shapes.test.mjs):
 * the voxel offsets of a 3D brush sphere on anisotropic voxels and its footprint on a
 * slice of any plane (the outline drawn in every plane), shape-based
 * interpolation between two drawn slices, and decoding a proposal's run lengths.
 *
 * Volumes are flat C-order arrays (z, y, x; x fastest) with spacing_mm (dz, dy, dx);
 * slices are flat row-major (rows, cols) arrays with pixel spacing (rowMm, colMm). */

/** Voxel offsets [dz, dy, dx] of a sphere of `radiusMm` on voxels of `spacing` (dz, dy, dx).
 *
 * In-plane (y, x) a voxel is in when its centre is within the sphere's cross-section, as
 * for the 2D brush disc. Along z a slice counts from the nearest face of its slab
 * (|dz| * sz - sz / 2): the sphere covers the neighbouring slices as soon as the radius
 * exceeds half the slice spacing, with the cross-section it has at that face
 * (r' = sqrt(r² - zFace²)). Example: r = 1.5 mm on 2 x 1 x 1 mm voxels gives 9 voxels
 * on the centre slice (the 3 x 3 square: its corners are 1.41 mm away) and 5 (a plus,
 * r' = 1.12 mm) on the slice above and below: 19. Returns [] for a radius <= 0. */
export function sphereOffsets(radiusMm, spacing) {
  const [sz, sy, sx] = spacing.map(Number);
  const r = Number(radiusMm);
  if (!(r > 0) || !(sz > 0 && sy > 0 && sx > 0)) return [];
  const out = [];
  const nz = Math.ceil(r / sz + 0.5);
  for (let dz = -nz; dz <= nz; dz++) {
    const face = Math.max(0, Math.abs(dz) * sz - sz / 2);
    if (face >= r && dz !== 0) continue;
    const r2 = r * r - face * face;
    const ny = Math.floor(Math.sqrt(r2) / sy), nx = Math.floor(Math.sqrt(r2) / sx);
    for (let dy = -ny; dy <= ny; dy++) {
      for (let dx = -nx; dx <= nx; dx++) {
        if ((dy * sy) ** 2 + (dx * sx) ** 2 <= r2 + 1e-9) out.push([dz, dy, dx]);
      }
    }
  }
  return out;
}

/** The 3D brush on one slice of a plane: the in-plane offsets [dRow, dCol] from the ball's
 * centre voxel of the voxels `offsets` (sphereOffsets) paints on the slice `dk` slices away
 * from the centre's along the plane's normal (axial: z, coronal: y, sagittal: x). Rows of
 * coronal and sagittal images run towards lower z (planes.js: row = D - 1 - z), so
 * dRow = -dz there. The brush outline is drawn around these voxels, in every plane:
 * what is outlined is what a dab paints (before the background-only rule). */
export function sphereSection(offsets, plane, dk) {
  const out = [];
  for (const [dz, dy, dx] of offsets) {
    if (plane === "axial") { if (dz === dk) out.push([dy, dx]); }
    else if (plane === "coronal") { if (dy === dk) out.push([-dz, dx]); }
    else if (plane === "sagittal") { if (dx === dk) out.push([-dz, dy]); }
    else throw new Error(`unknown plane ${plane}`);
  }
  return out;
}

/** The outline of a set of pixels given as [row, col] (offsets allowed): the unit edges
 * [r0, c0, r1, c1] between a pixel of the set and one outside it, in pixel-corner
 * coordinates (pixel (r, c) spans rows r..r+1 and columns c..c+1). A 3 x 3 square has
 * 12 edges; an empty set none. */
export function pixelOutline(cells) {
  const key = (r, c) => `${r},${c}`;
  const has = new Set(cells.map(([r, c]) => key(r, c)));
  const edges = [];
  for (const [r, c] of cells) {
    if (!has.has(key(r - 1, c))) edges.push([r, c, r, c + 1]);
    if (!has.has(key(r + 1, c))) edges.push([r + 1, c, r + 1, c + 1]);
    if (!has.has(key(r, c - 1))) edges.push([r, c, r + 1, c]);
    if (!has.has(key(r, c + 1))) edges.push([r, c + 1, r + 1, c + 1]);
  }
  return edges;
}

/** Squared Euclidean distance transform along one line (Felzenszwalb & Huttenlocher,
 * "Distance transforms of sampled functions", 2012), samples `step` mm apart:
 * d[p] = min_q (step * (p - q))² + f[q]. */
function edt1d(f, n, step) {
  const s2 = step * step;
  const d = new Float64Array(n), v = new Int32Array(n), z = new Float64Array(n + 1);
  let k = -1;
  for (let q = 0; q < n; q++) {
    if (f[q] === Infinity) continue;
    let s = -Infinity;
    while (k >= 0) {
      s = ((f[q] + s2 * q * q) - (f[v[k]] + s2 * v[k] * v[k])) / (2 * s2 * (q - v[k]));
      if (s > z[k]) break;
      k--;
    }
    k++; v[k] = q; z[k] = k === 0 ? -Infinity : s; z[k + 1] = Infinity;
  }
  if (k < 0) { d.fill(Infinity); return d; }
  let j = 0;
  for (let p = 0; p < n; p++) {
    while (z[j + 1] < p) j++;
    d[p] = s2 * (p - v[j]) ** 2 + f[v[j]];
  }
  return d;
}

/** Squared distance in mm² from every pixel to the nearest pixel where `on(i)` holds
 * (Infinity when none does). */
export function squaredDistance(on, rows, cols, rowMm, colMm) {
  const g = new Float64Array(rows * cols);
  const col = new Float64Array(rows);
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < rows; r++) col[r] = on(r * cols + c) ? 0 : Infinity;
    const d = edt1d(col, rows, rowMm);
    for (let r = 0; r < rows; r++) g[r * cols + c] = d[r];
  }
  const line = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) line[c] = g[r * cols + c];
    const d = edt1d(line, cols, colMm);
    for (let c = 0; c < cols; c++) g[r * cols + c] = d[c];
  }
  return g;
}

/** Signed distance in mm of a binary slice: positive inside, negative outside, the
 * boundary half a pixel from the edge pixels' centres (inside: distance to the nearest
 * outside pixel - 1/2 pixel; outside: -(distance to the nearest inside pixel - 1/2 pixel),
 * the half pixel in the smaller spacing). An empty slice is -Infinity everywhere. */
export function signedDistance(mask, rows, cols, rowMm, colMm) {
  const half = Math.min(rowMm, colMm) / 2;
  const toIn = squaredDistance((i) => mask[i] !== 0, rows, cols, rowMm, colMm);
  const toOut = squaredDistance((i) => mask[i] === 0, rows, cols, rowMm, colMm);
  const sd = new Float64Array(rows * cols);
  for (let i = 0; i < sd.length; i++) sd[i] = mask[i] ? Math.sqrt(toOut[i]) - half : half - Math.sqrt(toIn[i]);
  return sd;
}

/** Shape-based interpolation (Raya & Udupa, IEEE TMI 1990; Herman et al. 1992): the
 * slices between two drawn slices `a` and `b` (flat (rows, cols) 0/1 arrays) that are
 * `gap + 1` slices apart. Slice j of the gap (1..gap, t = j / (gap + 1)) is where
 * (1 - t) * sd(a) + t * sd(b) > 0, sd the signed distances of the two contours in mm.
 * Returns `gap` Uint8Arrays (a's side first); none when a or b is empty or gap < 1.
 * Example: centred squares 3 x 3 and 11 x 11 on a 1 mm grid with 3 slices between give
 * 5 x 5, 7 x 7 and 9 x 9. */
export function interpolateSlices(a, b, rows, cols, gap, rowMm = 1, colMm = 1) {
  if (!(gap >= 1) || !a.some((v) => v) || !b.some((v) => v)) return [];
  const box = unionBox([a, b], rows, cols);
  const crop = (m) => { const o = new Uint8Array(box.rows * box.cols); for (let r = 0; r < box.rows; r++) for (let c = 0; c < box.cols; c++) o[r * box.cols + c] = m[(r + box.r0) * cols + c + box.c0] ? 1 : 0; return o; };
  const sa = signedDistance(crop(a), box.rows, box.cols, rowMm, colMm);
  const sb = signedDistance(crop(b), box.rows, box.cols, rowMm, colMm);
  const out = [];
  for (let j = 1; j <= gap; j++) {
    const t = j / (gap + 1);
    const m = new Uint8Array(rows * cols);
    for (let r = 0; r < box.rows; r++) {
      for (let c = 0; c < box.cols; c++) {
        const i = r * box.cols + c;
        if ((1 - t) * sa[i] + t * sb[i] > 0) m[(r + box.r0) * cols + c + box.c0] = 1;
      }
    }
    out.push(m);
  }
  return out;
}

/** The box around the non-zero pixels of `masks`, one pixel wider on every side where
 * the slice allows (so that both shapes have outside pixels around them: a nearer outside
 * pixel beyond the box would be one on its border, clamped). */
function unionBox(masks, rows, cols) {
  let r0 = rows, r1 = -1, c0 = cols, c1 = -1;
  for (const m of masks) {
    for (let i = 0; i < m.length; i++) {
      if (!m[i]) continue;
      const r = (i / cols) | 0, c = i - r * cols;
      if (r < r0) r0 = r; if (r > r1) r1 = r; if (c < c0) c0 = c; if (c > c1) c1 = c;
    }
  }
  r0 = Math.max(0, r0 - 1); c0 = Math.max(0, c0 - 1); r1 = Math.min(rows - 1, r1 + 1); c1 = Math.min(cols - 1, c1 + 1);
  return { r0, c0, rows: r1 - r0 + 1, cols: c1 - c0 + 1 };
}

/** Given the indices of the slices that hold a lesion (any order, repeats allowed), the
 * pairs of consecutive ones with empty slices between: [[k0, k1], ...], k1 - k0 > 1. */
export function gapsBetween(drawn) {
  const ks = [...new Set(drawn)].sort((p, q) => p - q);
  const out = [];
  for (let i = 1; i < ks.length; i++) if (ks[i] - ks[i - 1] > 1) out.push([ks[i - 1], ks[i]]);
  return out;
}

/** A proposal's mask (ml.lesions.grow.run_lengths over bbox = [z0, y0, x0, z1, y1, x1],
 * exclusive ends; runs alternate outside / inside starting with outside) -> the flat
 * indices into a volume of `shape` (D, H, W) of its inside voxels, ascending. Throws
 * when the runs do not cover the box exactly or the box leaves the volume. */
export function decodeRuns(runs, bbox, shape) {
  const [z0, y0, x0, z1, y1, x1] = bbox;
  const [D, H, W] = shape;
  const bd = z1 - z0, bh = y1 - y0, bw = x1 - x0;
  if (!(z0 >= 0 && y0 >= 0 && x0 >= 0 && z1 <= D && y1 <= H && x1 <= W) || bd < 0 || bh < 0 || bw < 0) {
    throw new Error(`the proposal's box ${JSON.stringify(bbox)} is outside the volume ${JSON.stringify(shape)}`);
  }
  const total = runs.reduce((s, n) => s + n, 0);
  if (total !== bd * bh * bw) throw new Error(`the proposal's runs cover ${total} voxels, its box ${bd * bh * bw}`);
  const out = [];
  let pos = 0, inside = false;
  for (const n of runs) {
    if (inside) {
      for (let p = pos; p < pos + n; p++) {
        const bx = p % bw, by = ((p / bw) | 0) % bh, bz = (p / (bw * bh)) | 0;
        out.push((bz + z0) * H * W + (by + y0) * W + bx + x0);
      }
    }
    pos += n; inside = !inside;
  }
  return out;
}
