// node --test tests/js: measurement geometry of the case viewer (frontend_static/js/case/measure.js).
import test from "node:test";
import assert from "node:assert/strict";
import {
  distanceMm, voxelToMm, orientationLetter, orientationLabels, scaleBar, smallLabels, labelExtents,
} from "../../frontend_static/js/case/measure.js";

const close = (a, b, msg) => assert.ok(Math.abs(a - b) < 1e-9, `${msg}: ${a} != ${b}`);

test("ruler distances use the plane's row and column spacing (2 mm slices, 0.5 x 0.8 mm pixels)", () => {
  const spacing = [2.0, 0.8, 0.5];  // dz, dy, dx
  const cases = [
    // plane, a, b, mm
    ["axial", [0, 0], [0, 10], 5.0],          // 10 columns of dx 0.5
    ["axial", [0, 0], [10, 0], 8.0],          // 10 rows of dy 0.8
    ["axial", [0, 0], [3, 8], Math.hypot(2.4, 4.0)],  // 3 rows of 0.8, 8 columns of 0.5
    ["coronal", [0, 0], [5, 0], 10.0],        // a coronal row is a slice: 5 x 2 mm
    ["coronal", [0, 0], [0, 6], 3.0],         // coronal columns are x: 6 x 0.5
    ["sagittal", [2, 1], [2, 6], 4.0],        // sagittal columns are y: 5 x 0.8
    ["sagittal", [0, 0], [3, 5], Math.hypot(6, 4)],  // 3 slices of 2 mm, 5 columns of 0.8
    ["axial", [4.5, 4.5], [4.5, 4.5], 0.0],
  ];
  for (const [plane, a, b, mm] of cases) {
    close(distanceMm(plane, spacing, a, b), mm, `${plane} ${a}->${b}`);
    close(distanceMm(plane, spacing, b, a), mm, `${plane} symmetric`);
  }
});

test("voxel to mm: patient LPS with origin and direction, grid mm without", () => {
  const spacing = [2, 1, 0.5];
  // Identity direction: x = ox + 0.5 * x_idx, y = oy + 1 * y_idx, z = oz + 2 * z_idx.
  assert.deepEqual(voxelToMm([3, 4, 10], spacing, [-100, -50, 20], [1, 0, 0, 0, 1, 0, 0, 0, 1]),
    { frame: "LPS", xyz: [-95, -46, 26] });
  // A grid flipped along x and y (columns towards R, rows towards A): x = ox - 5, y = oy - 4.
  assert.deepEqual(voxelToMm([3, 4, 10], spacing, [0, 0, 0], [-1, 0, 0, 0, -1, 0, 0, 0, 1]).xyz, [-5, -4, 6]);
  assert.deepEqual(voxelToMm([3, 4, 10], spacing, null, null), { frame: "grid", xyz: [5, 4, 6] });
  assert.deepEqual(voxelToMm([3, 4, 10], spacing, [], []), { frame: "grid", xyz: [5, 4, 6] });
  assert.equal(voxelToMm([0, 0, 0], spacing, [1, 2, 3], []).frame, "LPS (axes assumed)");
});

test("orientation letters of LPS vectors, oblique ones with two letters", () => {
  const cases = [
    [[1, 0, 0], "L"], [[-1, 0, 0], "R"], [[0, 1, 0], "P"], [[0, -1, 0], "A"], [[0, 0, 1], "S"], [[0, 0, -1], "I"],
    [[0.8, -0.6, 0], "LA"], [[-0.6, 0, 0.8], "SR"], [[0.95, 0.1, 0], "L"], [[0, 0, 0], ""],
  ];
  for (const [v, letters] of cases) assert.equal(orientationLetter(v), letters, JSON.stringify(v));
});

test("edge labels per plane: identity grid gives the radiological convention; flips swap them", () => {
  const I = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  const cases = [
    ["axial", I, { left: "R", right: "L", top: "A", bottom: "P" }],
    ["coronal", I, { left: "R", right: "L", top: "S", bottom: "I" }],
    ["sagittal", I, { left: "A", right: "P", top: "S", bottom: "I" }],
    ["axial", null, { left: "R", right: "L", top: "A", bottom: "P" }],  // no direction: the model grid's identity
    // A grid whose x runs towards R and z towards I (columns flipped, slices reversed).
    ["axial", [-1, 0, 0, 0, 1, 0, 0, 0, -1], { left: "L", right: "R", top: "A", bottom: "P" }],
    ["coronal", [-1, 0, 0, 0, 1, 0, 0, 0, -1], { left: "L", right: "R", top: "I", bottom: "S" }],
    ["sagittal", [-1, 0, 0, 0, 1, 0, 0, 0, -1], { left: "A", right: "P", top: "I", bottom: "S" }],
  ];
  for (const [plane, dir, labels] of cases) assert.deepEqual(orientationLabels(plane, dir), labels, `${plane} ${dir}`);
  assert.throws(() => orientationLabels("oblique", I), /unknown plane/);
});

test("scale bar: the longest 1-2-5 step that fits, following zoom", () => {
  const cases = [
    // px per mm, max px, mm, px
    [2, 100, 50, 100], [2, 99, 20, 40], [1, 100, 100, 100], [0.3, 100, 200, 60],
    [10, 100, 10, 100], [40, 100, 2, 80], [200, 100, 1, 200],  // nothing fits: the shortest step
  ];
  for (const [pxPerMm, maxPx, mm, px] of cases) {
    const bar = scaleBar(pxPerMm, maxPx);
    assert.equal(bar.mm, mm, `${pxPerMm} px/mm`);
    close(bar.px, px, `${pxPerMm} px/mm length`);
  }
  assert.equal(scaleBar(0, 100), null);
  assert.equal(scaleBar(NaN, 100), null);
});

test("small-lesion markers: under the threshold, not erased, not rejected", () => {
  const rows = [
    { label: 1, volume: 20, decision: "pending" }, { label: 2, volume: 99.9, decision: "accepted" },
    { label: 3, volume: 100, decision: "pending" }, { label: 4, volume: 0, decision: "pending" },
    { label: 5, volume: 8, decision: "rejected" }, { label: 6, volume: null, decision: "pending" },
  ];
  assert.deepEqual(smallLabels(rows, 100), [1, 2]);
  assert.deepEqual(smallLabels([], 100), []);
});

test("label extents in a plane image (odd 3 x 5 image, two labels, one not asked for)", () => {
  const img = Uint16Array.from([
    0, 2, 2, 0, 7,
    0, 0, 2, 0, 0,
    1, 0, 2, 2, 0,
  ]);
  const ext = labelExtents(img, 3, 5, new Set([1, 2, 3]));
  assert.deepEqual(ext.get(2), { r0: 0, r1: 2, c0: 1, c1: 3 });
  assert.deepEqual(ext.get(1), { r0: 2, r1: 2, c0: 0, c1: 0 });
  assert.equal(ext.has(7), false);
  assert.equal(ext.has(3), false);
  assert.equal(labelExtents(new Uint16Array(15), 3, 5, new Set([1])).size, 0);
});
