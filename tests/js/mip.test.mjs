// node --test tests/js: thick-slab MIP of the case viewer (frontend_static/js/case/mip.js).
import test from "node:test";
import assert from "node:assert/strict";
import { slabHalfWidth, slabRange, slabThicknessMm, mipSlice, mipDepth, SLAB_WIDTHS_MM } from "../../frontend_static/js/case/mip.js";
import { extractSlice, planeShape } from "../../frontend_static/js/case/planes.js";

// An odd 5 x 3 x 4 (D, H, W) volume, zero but for a few bright voxels placed by hand.
const SHAPE = [5, 3, 4];
const idx = (z, y, x) => z * 12 + y * 4 + x;
function volume(points, Type = Int16Array) {
  const v = new Type(60);
  for (const [z, y, x, value] of points) v[idx(z, y, x)] = value;
  return v;
}

test("slab half-widths: slices whose centres are within width / 2", () => {
  const table = [
    // [width mm, spacing mm, half]  (hand: floor(width / (2 * spacing)))
    [10, 2, 2],     // 5 slices of 2 mm = 10 mm
    [10, 1, 5],     // 11 slices of 1 mm, centres -5 .. +5 mm
    [5, 2, 1],      // 3 slices (6 mm): 2.5 / 2 = 1.25
    [20, 0.6, 16],  // 33 slices: 10 / 0.6 = 16.67
    [3, 3, 0],      // a slab no thicker than a slice is the slice
    [1, 5, 0],
    [6, 3, 1],      // exactly on the boundary: centres at +-3 mm are inside
    [0.3, 0.1, 1],  // 1.5 -> 1 despite floating point (0.3 / 0.2 = 1.4999...)
  ];
  for (const [w, s, half] of table) assert.equal(slabHalfWidth(w, s), half, `${w} mm on ${s} mm`);
  for (const bad of [[0, 1], [-5, 1], [NaN, 1], [10, 0], [10, -1], [Infinity, 1]]) {
    assert.throws(() => slabHalfWidth(...bad), /not a positive number/, String(bad));
  }
  assert.deepEqual(SLAB_WIDTHS_MM, [5, 10, 20]);
});

test("slab ranges are clipped at the ends of the volume and follow each axis's spacing", () => {
  const spacing = [2, 1, 0.5];  // anisotropic: dz 2, dy 1, dx 0.5 mm
  const table = [
    // [plane, k, width mm, [lo, hi], thickness mm]
    ["axial", 2, 4, [1, 3], 6],        // half 1 on 2 mm slices
    ["axial", 0, 10, [0, 2], 6],       // half 2, cut at the first slice
    ["axial", 4, 10, [2, 4], 6],       // cut at the last slice
    ["axial", 2, 100, [0, 4], 10],     // wider than the volume: all of it
    ["coronal", 1, 2, [0, 2], 3],      // half 1 on 1 mm rows: every y
    ["coronal", 1, 1, [1, 1], 1],      // half 0
    ["sagittal", 1, 2, [0, 3], 2],     // half 2 on 0.5 mm columns, cut at 0 and W - 1
    ["sagittal", 3, 1, [2, 3], 1],     // half 1, cut at the last column
  ];
  for (const [plane, k, w, range, mm] of table) {
    assert.deepEqual(slabRange(plane, k, w, SHAPE, spacing), range, `${plane} ${k} ${w}`);
    assert.equal(slabThicknessMm(plane, k, w, SHAPE, spacing), mm, `${plane} ${k} ${w}`);
  }
  assert.throws(() => slabRange("axial", 5, 10, SHAPE, spacing), /outside/);
  assert.throws(() => slabRange("axial", 1.5, 10, SHAPE, spacing), /outside/);
  assert.throws(() => slabRange("oblique", 0, 10, SHAPE, spacing), /unknown plane/);
});

// Bright voxels: 50 at (0,0,0), 90 at (1,2,3), 70 at (3,1,1), 30 at (4,2,0), -5 at (2,0,1)
// on a background of 0; a negative value must never beat the 0 beside it in the slab.
const POINTS = [[0, 0, 0, 50], [1, 2, 3, 90], [3, 1, 1, 70], [4, 2, 0, 30], [2, 0, 1, -5]];

test("axial MIP: hand-computed maxima, edges and a negative voxel", () => {
  const v = volume(POINTS);
  const iso = [1, 1, 1];
  const table = [
    // [k, width mm, {"row,col": value}] (all other pixels 0)
    [2, 1, {}],                                 // the slice alone: only -5, shown as is
    [2, 3, { "2,3": 90, "1,1": 70 }],           // z 1..3; the -5 at z 2 loses to 0 at z 1
    [0, 3, { "0,0": 50, "2,3": 90 }],           // z 0..1, cut at the first slice
    [4, 3, { "1,1": 70, "2,0": 30 }],           // z 3..4, cut at the last slice
    [2, 100, { "0,0": 50, "2,3": 90, "1,1": 70, "2,0": 30 }],
  ];
  for (const [k, w, hot] of table) {
    const img = mipSlice(v, SHAPE, "axial", k, w, iso);
    assert.equal(img.length, 12);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) {
      const expected = k === 2 && w === 1 && r === 0 && c === 1 ? -5 : hot[`${r},${c}`] || 0;
      assert.equal(img[r * 4 + c], expected, `k ${k} w ${w} (${r}, ${c})`);
    }
  }
});

test("coronal and sagittal MIP: superior row first, anisotropic in-plane spacing", () => {
  const v = volume(POINTS);
  const spacing = [3, 1, 0.5];
  // Coronal k = 1 (y), 2 mm slab on 1 mm rows: y 0..2. Rows are z from the top (row 0 = z 4).
  const cor = mipSlice(v, SHAPE, "coronal", 1, 2, spacing);
  const corHot = { "4,0": 50, "3,3": 90, "1,1": 70, "0,0": 30 };
  // Sagittal k = 1 (x), 1 mm slab on 0.5 mm columns: x 0..2 (half 1), so x = 3 (the 90) is out.
  const sag = mipSlice(v, SHAPE, "sagittal", 1, 1, spacing);
  const sagHot = { "4,0": 50, "1,1": 70, "0,2": 30 };
  for (const [img, plane, hot] of [[cor, "coronal", corHot], [sag, "sagittal", sagHot]]) {
    const { rows, cols } = planeShape(plane, SHAPE);
    assert.equal(img.length, rows * cols, plane);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      assert.equal(img[r * cols + c], hot[`${r},${c}`] || 0, `${plane} (${r}, ${c})`);
    }
  }
  // Same slab in mm but 1 mm columns: half 0, the sagittal MIP is just the slice.
  const thin = mipSlice(v, SHAPE, "sagittal", 1, 1, [3, 1, 1]);
  assert.deepEqual([...thin], [...extractSlice(v, SHAPE, "sagittal", 1)]);
});

test("a one-slice slab equals the slice in every plane; out and the array type are kept", () => {
  const v = Int16Array.from({ length: 60 }, (_, i) => (i * 37) % 101 - 50);
  for (const plane of ["axial", "coronal", "sagittal"]) {
    const { rows, cols, count } = planeShape(plane, SHAPE);
    for (let k = 0; k < count; k++) {
      const out = new Int16Array(rows * cols);
      const img = mipSlice(v, SHAPE, plane, k, 0.5, [1, 1, 1], out);
      assert.equal(img, out);
      assert.deepEqual([...img], [...extractSlice(v, SHAPE, plane, k)], `${plane} ${k}`);
    }
  }
  const u = mipSlice(new Uint16Array(60), SHAPE, "coronal", 0, 10, [1, 1, 1]);
  assert.ok(u instanceof Uint16Array);
  assert.throws(() => mipSlice(v, SHAPE, "axial", 0, 5, [1, 1, 1], new Int16Array(5)), /output of 5/);
  assert.throws(() => mipSlice(v.subarray(1), SHAPE, "axial", 0, 5, [1, 1, 1]), /volume of 59/);
});

test("a brute-force MIP agrees on a random odd volume with anisotropic spacing", () => {
  const shape = [7, 5, 9], spacing = [2.5, 0.7, 1.3];
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const v = Int16Array.from({ length: 7 * 5 * 9 }, () => (rnd() % 2000) - 1000);
  const [D, H, W] = shape;
  for (const plane of ["axial", "coronal", "sagittal"]) {
    const { count } = planeShape(plane, shape);
    for (const w of [3, 5, 10]) for (let k = 0; k < count; k++) {
      const [lo, hi] = slabRange(plane, k, w, shape, spacing);
      const slices = [];
      for (let s = lo; s <= hi; s++) slices.push(extractSlice(v, shape, plane, s));
      const expected = slices[0].map((_, i) => Math.max(...slices.map((sl) => sl[i])));
      assert.deepEqual([...mipSlice(v, shape, plane, k, w, spacing)], [...expected], `${plane} k ${k} w ${w}`);
    }
  }
  assert.equal(D * H * W, v.length);
});

test("mipDepth finds the slice of the maximum under a pixel", () => {
  const v = volume(POINTS);
  const iso = [1, 1, 1];
  const table = [
    // [plane, k, width, row, col, depth]
    ["axial", 2, 3, 2, 3, 1],      // the 90 at z 1
    ["axial", 2, 3, 1, 1, 3],      // the 70 at z 3
    ["axial", 2, 3, 0, 2, 2],      // all 0: the centre slice
    ["axial", 2, 3, 0, 1, 1],      // -5 at z 2, 0 at z 1 and z 3: tie at distance 1, lower wins
    ["coronal", 0, 100, 3, 3, 2],  // row 3 = z 1, col x 3: the 90 is at y 2
    ["sagittal", 0, 100, 1, 1, 1], // row 1 = z 3, col y 1: the 70 at x 1
    ["axial", 2, 3, -1, 0, 2],     // outside the image: the current slice
    ["axial", 2, 3, 1.4, 0.6, 3],  // fractions round to the pixel (1, 1)
  ];
  for (const [plane, k, w, row, col, depth] of table) {
    assert.equal(mipDepth(v, SHAPE, plane, k, w, iso, row, col), depth, `${plane} ${k} (${row}, ${col})`);
  }
});

test("MIP buttons show the width really projected: Off and disabled in CT view", async () => {
  const { mipButtonState } = await import("../../frontend_static/js/case/mip.js");
  const table = [
    // [chosen mm, channel, MR volume loaded, shown mm, disabled]
    [0, "mr", true, 0, false],
    [10, "mr", true, 10, false],
    [10, "fused", true, 10, false],  // the fused view projects its MR layer
    [10, "ct", true, 0, true],       // CT is never projected: Off, not 10
    [20, "ct", false, 0, true],
    [10, "mr", false, 0, true],      // the slab needs the whole MR volume
    [7, "mr", true, 0, false],       // not a width offered
  ];
  for (const [mm, ch, loaded, shownMm, disabled] of table) {
    assert.deepEqual(mipButtonState(mm, ch, loaded), { shownMm, disabled }, `${mm} ${ch} ${loaded}`);
  }
});
