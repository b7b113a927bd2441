// node --test tests/js: the pure shapes of faster editing (frontend_static/js/case/shapes.js)
// and the 3D brush / fill of the mask editor (tools.js). Answers are worked by hand.
import test from "node:test";
import assert from "node:assert/strict";
import { sphereOffsets, sphereSection, pixelOutline, interpolateSlices, signedDistance, gapsBetween, decodeRuns } from "../../frontend_static/js/case/shapes.js";
import { MaskEditor } from "../../frontend_static/js/case/tools.js";

function perSlice(offsets) {
  const n = {};
  for (const [dz] of offsets) n[dz] = (n[dz] || 0) + 1;
  return n;
}

test("sphere offsets: voxels per slice for radius and anisotropic spacing", () => {
  const cases = [
    // radius, spacing (dz, dy, dx), voxels on each slice offset
    // 2 mm slices, r = 1.5 > 1: centre 3 x 3 (corners 1.41 mm), neighbours r' = sqrt(2.25 - 1) = 1.12: a plus
    [1.5, [2, 1, 1], { "-1": 5, 0: 9, 1: 5 }],
    // r = 0.9 < half of 2 mm: one slice only, a plus (diagonals 1.41 mm)
    [0.9, [2, 1, 1], { 0: 1 }],
    [1, [2, 1, 1], { 0: 5 }],
    // isotropic 1 mm, r = 1: the neighbouring slab face is 0.5 mm away, r' = 0.87: the centre voxel
    [1, [1, 1, 1], { "-1": 1, 0: 5, 1: 1 }],
    // rows 0.5 mm, cols 1 mm, 5 mm slices, r = 1: an ellipse on one slice (2 rows up and down)
    [1, [5, 0.5, 1], { 0: 7 }],
    [0, [1, 1, 1], {}],
    [-2, [1, 1, 1], {}],
  ];
  for (const [r, spacing, expected] of cases) {
    assert.deepEqual(perSlice(sphereOffsets(r, spacing)), expected, `r=${r} spacing=${spacing}`);
  }
});

test("sphere offsets are symmetric and unique", () => {
  const off = sphereOffsets(3.2, [2.5, 0.9, 1.1]);
  const keys = new Set(off.map((o) => o.join(",")));
  assert.equal(keys.size, off.length);
  for (const [a, b, c] of off) assert.ok(keys.has([-a, -b, -c].join(",")));
});

function square(rows, cols, half, cr = (rows - 1) / 2, cc = (cols - 1) / 2) {
  const m = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (Math.abs(r - cr) <= half && Math.abs(c - cc) <= half) m[r * cols + c] = 1;
  return m;
}
const count = (m) => m.reduce((s, v) => s + (v ? 1 : 0), 0);

test("interpolating two centred squares of different sizes over 3 gap slices", () => {
  // 3 x 3 and 11 x 11 on a 15 x 15 grid: half widths 1 and 5 -> 2, 3, 4 (5 x 5, 7 x 7, 9 x 9)
  const out = interpolateSlices(square(15, 15, 1), square(15, 15, 5), 15, 15, 3);
  assert.equal(out.length, 3);
  out.forEach((m, j) => assert.deepEqual(m, square(15, 15, j + 2), `gap slice ${j + 1}`));
});

test("interpolation: empty inputs, no gap, identical shapes, odd shapes", () => {
  const a = square(7, 9, 1);
  const empty = new Uint8Array(63);
  const cases = [
    ["empty first", empty, a, 2, 0],
    ["empty second", a, empty, 2, 0],
    ["no gap", a, a, 0, 0],
  ];
  for (const [name, p, q, gap, n] of cases) assert.equal(interpolateSlices(p, q, 7, 9, gap).length, n, name);
  // The same shape on both sides comes back unchanged on every gap slice.
  const ell = new Uint8Array(7 * 9); [[2, 3], [3, 3], [3, 4], [3, 5], [4, 5], [4, 6]].forEach(([r, c]) => { ell[r * 9 + c] = 1; });
  for (const m of interpolateSlices(ell, ell, 7, 9, 4, 1, 1)) assert.deepEqual(m, ell);
  // A single pixel moving from one corner to the other: half-way there is nothing in
  // common, yet no slice may spill beyond the two pixels' bounding box.
  const p = new Uint8Array(63), q = new Uint8Array(63); p[0] = 1; q[62] = 1;
  const out = interpolateSlices(p, q, 7, 9, 1);
  assert.equal(out.length, 1);
  assert.ok(count(out[0]) <= 63);
});

test("interpolation honours anisotropic pixels: shapes in mm", () => {
  // Rows 2 mm, cols 1 mm, 9 x 13: A = row 4, cols 1..11; B = rows 2..6, cols 1..11.
  // Centre column, row 3 (one row = 2 mm off): sd(A) = -(2 - 0.5) = -1.5, sd(B) = 4 - 0.5
  // = 3.5 (2 rows to row 7; the sides are 6 mm away): half-way +1, in. Row 2: sd(A) =
  // -(4 - 0.5), sd(B) = 2 - 0.5: -1, out. So the middle slice has rows 3..5 there.
  const bar = (r0, r1) => { const m = new Uint8Array(9 * 13); for (let r = r0; r <= r1; r++) for (let c = 1; c <= 11; c++) m[r * 13 + c] = 1; return m; };
  const [mid] = interpolateSlices(bar(4, 4), bar(2, 6), 9, 13, 1, 2, 1);
  const centreColumn = Array.from({ length: 9 }, (_, r) => mid[r * 13 + 6]);
  assert.deepEqual(centreColumn, [0, 0, 0, 1, 1, 1, 0, 0, 0]);
  // Never wider than B, never outside the union of the two.
  for (let i = 0; i < mid.length; i++) if (mid[i]) assert.equal(bar(2, 6)[i], 1);
});

test("signed distance: positive inside, negative outside, in mm", () => {
  const m = new Uint8Array(5); m[1] = 1; m[2] = 1;
  // one row of 5 pixels 2 mm apart: an edge pixel is 2 mm from the nearest pixel on the
  // other side, less half the smaller pixel size (0.5 mm)
  assert.deepEqual([...signedDistance(m, 1, 5, 1, 2)], [-1.5, 1.5, 1.5, -1.5, -3.5]);
  assert.deepEqual([...signedDistance(new Uint8Array(3), 1, 3, 1, 1)], [-Infinity, -Infinity, -Infinity]);
});

test("gaps between drawn slices", () => {
  const cases = [[[], []], [[3], []], [[3, 4, 5], []], [[2, 5], [[2, 5]]], [[9, 2, 5, 5, 6], [[2, 5], [6, 9]]]];
  for (const [drawn, gaps] of cases) assert.deepEqual(gapsBetween(drawn), gaps, String(drawn));
});

test("decoding a proposal's run lengths into flat voxel indices", () => {
  const shape = [3, 4, 5];
  const cases = [
    // box 1 x 2 x 2 at (1, 1, 2): runs 1 out, 2 in, 1 out -> box voxels 1 and 2
    [[1, 2, 1], [1, 1, 2, 2, 3, 4], [1 * 20 + 1 * 5 + 3, 1 * 20 + 2 * 5 + 2]],
    // a leading 0: the first voxel is inside
    [[0, 1, 3], [0, 0, 0, 1, 2, 2], [0]],
    [[4], [0, 0, 0, 1, 2, 2], []],
    [[], [0, 0, 0, 0, 0, 0], []],
  ];
  for (const [runs, bbox, expected] of cases) assert.deepEqual(decodeRuns(runs, bbox, shape), expected, JSON.stringify(bbox));
  assert.throws(() => decodeRuns([3], [0, 0, 0, 1, 2, 2], shape), /cover 3 voxels, its box 4/);
  assert.throws(() => decodeRuns([8], [2, 0, 0, 4, 2, 2], shape), /outside the volume/);
});

test("the 3D brush: a sphere through neighbouring slices, same rules, one change per stroke", () => {
  const shape = [5, 7, 7];
  const mask = new Uint16Array(5 * 49);
  mask[1 * 49 + 3 * 7 + 3] = 2;    // another lesion, just below the centre
  const ed = new MaskEditor(mask, shape, [2, 1, 1]);
  ed.begin(1, "brush");
  ed.dabIn("axial", 2, 3, 3, 1.5, false, true);
  ed.lineIn("axial", 2, [3, 3], [3, 3.2], 1.5, false, true);   // the same voxel again: nothing new
  const ch = ed.end();
  assert.equal(ed.counts.get(1), 19 - 1);    // 9 + 5 + 5, less the other lesion's voxel
  assert.equal(mask[1 * 49 + 3 * 7 + 3], 2);
  assert.deepEqual([...ch.slices].sort(), [1, 2, 3]);
  assert.equal(ed.undoStack.length, 1);
  // In the coronal plane (slice k = y = 3, row = D - 1 - z): the same ball at z = 2.
  ed.begin(2, "eraser"); ed.dabIn("coronal", 3, 2, 3, 1.5, true, true); ed.end();
  assert.equal(ed.counts.get(2), undefined);
  assert.equal(ed.counts.get(1), 18);        // the eraser leaves lesion 1 alone
  ed.undo(); ed.undo();
  assert.equal(ed.counts.get(1), undefined);
  assert.equal(ed.counts.get(2), 1);
});

test("fill paints only over background, as one change", () => {
  const mask = new Uint16Array(8); mask[2] = 4;
  const ed = new MaskEditor(mask, [2, 2, 2], [1, 1, 1]);
  ed.begin(1, "interpolate"); ed.fill([1, 2, 3]); const ch = ed.end();
  assert.deepEqual([...mask], [0, 1, 4, 1, 0, 0, 0, 0]);
  assert.deepEqual(ch.idx, [1, 3]);
  ed.begin(1, "interpolate"); ed.fill([]); assert.equal(ed.end(), null);
});

// The 3D brush outline: the sphere's cross-section on a slice of each plane, in voxels.
const rows = (cells) => {
  const n = {};
  for (const [r] of cells) n[r] = (n[r] || 0) + 1;
  return n;
};

test("the 3D brush's footprint on a slice of each plane (r = 1.5 mm, 2 x 1 x 1 mm voxels)", () => {
  const ball = sphereOffsets(1.5, [2, 1, 1]);  // 9 + 5 + 5 = 19 voxels (worked above)
  const table = [
    // [plane, slices from the centre's, voxels, voxels per row]  (hand-worked)
    ["axial", 0, 9, { "-1": 3, 0: 3, 1: 3 }],   // the 3 x 3 square: corners 1.41 mm
    ["axial", 1, 5, { "-1": 1, 0: 3, 1: 1 }],   // the plus: r' = 1.12 mm at the face 1 mm up
    ["axial", -1, 5, { "-1": 1, 0: 3, 1: 1 }],
    ["axial", 2, 0, {}],                          // the face 3 mm away: beyond the ball
    // Coronal through the centre: rows are slices (2 mm), so the painted footprint is 3
    // rows tall (z -1..1) and 3 columns wide; a flat disc of 1.5 mm would be under a row.
    ["coronal", 0, 9, { "-1": 3, 0: 3, 1: 3 }],
    ["coronal", 1, 5, { "-1": 1, 0: 3, 1: 1 }],  // y = 1 mm: the ball's x-extent 1.12 mm
    ["sagittal", 0, 9, { "-1": 3, 0: 3, 1: 3 }],
    ["sagittal", -1, 5, { "-1": 1, 0: 3, 1: 1 }],
    ["sagittal", 2, 0, {}],                       // 2 mm off-centre: beyond 1.5 mm
  ];
  for (const [plane, dk, n, perRow] of table) {
    const cells = sphereSection(ball, plane, dk);
    assert.equal(cells.length, n, `${plane} ${dk}`);
    assert.deepEqual(rows(cells), perRow, `${plane} ${dk}`);
  }
  // Every voxel of the ball is on exactly one slice of each plane.
  for (const plane of ["axial", "coronal", "sagittal"]) {
    let total = 0;
    for (let dk = -3; dk <= 3; dk++) total += sphereSection(ball, plane, dk).length;
    assert.equal(total, 19, plane);
  }
  // Coronal rows run towards lower z: the voxel 1 slice above the centre is row -1.
  assert.deepEqual(sphereSection([[1, 0, 2]], "coronal", 0), [[-1, 2]]);
  assert.deepEqual(sphereSection([[1, 3, 2]], "sagittal", 2), [[-1, 3]]);
  assert.throws(() => sphereSection(ball, "oblique", 0), /unknown plane/);
});

test("pixel outline: the unit edges around a set of pixels", () => {
  assert.deepEqual(pixelOutline([]), []);
  assert.deepEqual(pixelOutline([[0, 0]]).sort(), [[0, 0, 0, 1], [1, 0, 1, 1], [0, 0, 1, 0], [0, 1, 1, 1]].sort());
  const square = [];
  for (let r = -1; r <= 1; r++) for (let c = -1; c <= 1; c++) square.push([r, c]);
  assert.equal(pixelOutline(square).length, 12);  // 3 per side
  const plus = [[-1, 0], [0, -1], [0, 0], [0, 1], [1, 0]];
  assert.equal(pixelOutline(plus).length, 12);    // 3 per arm
  // Every edge lies on the square's border (|coordinate| = 1.5 around the centre pixel's middle).
  for (const [r0, c0, r1, c1] of pixelOutline(square)) {
    const onBorder = (r0 === r1 && (r0 === -1 || r0 === 2)) || (c0 === c1 && (c0 === -1 || c0 === 2));
    assert.ok(onBorder, `${[r0, c0, r1, c1]}`);
  }
});
