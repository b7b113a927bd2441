// node --test tests/js: plane geometry of the case viewer (frontend_static/js/case/planes.js).
import test from "node:test";
import assert from "node:assert/strict";
import {
  planeShape, planeSpacing, physicalAspect, sliceIndex, toPlane, fromPlane, clampPos, extractSlice, bboxSlices,
} from "../../frontend_static/js/case/planes.js";

// A 3 x 4 x 5 volume whose value is its own index z*20 + y*5 + x.
const SHAPE = [3, 4, 5];
const vol = Int16Array.from({ length: 60 }, (_, i) => i);
const at = (z, y, x) => z * 20 + y * 5 + x;

test("plane shapes and pixel spacings", () => {
  const spacing = [2.0, 0.8, 0.5];
  const cases = [
    ["axial", { rows: 4, cols: 5, count: 3 }, { row: 0.8, col: 0.5 }],
    ["coronal", { rows: 3, cols: 5, count: 4 }, { row: 2.0, col: 0.5 }],
    ["sagittal", { rows: 3, cols: 4, count: 5 }, { row: 2.0, col: 0.8 }],
  ];
  for (const [plane, shape, sp] of cases) {
    assert.deepEqual(planeShape(plane, SHAPE), shape, plane);
    assert.deepEqual(planeSpacing(plane, spacing), sp, plane);
  }
  assert.throws(() => planeShape("oblique", SHAPE), /unknown plane/);
});

test("physical aspect of 2 mm slices on a 1 mm grid", () => {
  // 40 slices of 2 mm = 80 mm tall; 128 columns of 1 mm = 128 mm wide.
  const shape = [40, 128, 128], spacing = [2, 1, 1];
  assert.equal(physicalAspect("axial", shape, spacing), 1);
  assert.equal(physicalAspect("coronal", shape, spacing), 128 / 80);
  assert.equal(physicalAspect("sagittal", shape, spacing), 128 / 80);
});

test("toPlane and fromPlane are inverses; superior is row 0", () => {
  const table = [
    ["axial", [1, 2, 3], { k: 1, row: 2, col: 3 }],
    ["coronal", [1, 2, 3], { k: 2, row: 1, col: 3 }],
    ["coronal", [2, 0, 0], { k: 0, row: 0, col: 0 }],   // top slice -> top row
    ["sagittal", [0, 2, 3], { k: 3, row: 2, col: 2 }],
  ];
  for (const [plane, pos, expected] of table) {
    const got = toPlane(plane, pos, SHAPE);
    assert.deepEqual(got, expected, `${plane} ${pos}`);
    assert.deepEqual(fromPlane(plane, got.k, got.row, got.col, SHAPE), pos);
    assert.equal(sliceIndex(plane, pos), expected.k);
  }
});

test("clampPos rounds and clamps into the volume", () => {
  assert.deepEqual(clampPos([-1, 3.6, 9], SHAPE), [0, 3, 4]);
  assert.deepEqual(clampPos([1.4, 0.5, 2], SHAPE), [1, 1, 2]);
});

test("extractSlice: axial is a view, coronal and sagittal are flipped copies", () => {
  const axial = extractSlice(vol, SHAPE, "axial", 1);
  assert.equal(axial.buffer, vol.buffer);
  assert.deepEqual([...axial.slice(0, 5)], [20, 21, 22, 23, 24]);
  const cor = extractSlice(vol, SHAPE, "coronal", 2);
  assert.equal(cor.length, 15);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 5; c++) assert.equal(cor[r * 5 + c], at(2 - r, 2, c));
  const sag = extractSlice(vol, SHAPE, "sagittal", 4);
  assert.equal(sag.length, 12);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 4; c++) assert.equal(sag[r * 4 + c], at(2 - r, c, 4));
  assert.ok(sag instanceof Int16Array);
  assert.throws(() => extractSlice(vol, SHAPE, "sagittal", 5), /outside/);
  assert.throws(() => extractSlice(vol, SHAPE, "axial", -1), /outside/);
});

test("extractSlice of a uint16 mask keeps the type and writes into out", () => {
  const mask = new Uint16Array(60); mask[at(0, 1, 2)] = 7;
  const out = new Uint16Array(15);
  const cor = extractSlice(mask, SHAPE, "coronal", 1, out);
  assert.equal(cor, out);
  assert.equal(out[2 * 5 + 2], 7);   // z = 0 is the bottom row (row 2)
  assert.equal(out.reduce((a, b) => a + b, 0), 7);
});

test("bboxSlices gives the slice range of each plane", () => {
  const bbox = [1, 2, 3, 4, 6, 9];
  assert.deepEqual(bboxSlices("axial", bbox), [1, 4]);
  assert.deepEqual(bboxSlices("coronal", bbox), [2, 6]);
  assert.deepEqual(bboxSlices("sagittal", bbox), [3, 9]);
});

test("flipRows turns a server slice (z order) superior-up, like extractSlice", async () => {
  const { flipRows } = await import("../../frontend_static/js/case/planes.js");
  // The server's coronal slice y=2: rows z = 0, 1, 2.
  const server = Int16Array.from({ length: 15 }, (_, i) => at(Math.floor(i / 5), 2, i % 5));
  assert.deepEqual([...flipRows(server, 3, 5)], [...extractSlice(vol, SHAPE, "coronal", 2)]);
  assert.throws(() => flipRows(server, 4, 5), /not 4 x 5/);
});
