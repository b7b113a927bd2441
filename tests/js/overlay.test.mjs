// node --test tests/js: the label bitmap of the lesion overlay (frontend_static/js/case/overlay.js).
import test from "node:test";
import assert from "node:assert/strict";
import { paintLabels, outlineSegments, projectSlab, brushOutlineStrokes, labelColor, REJECTED_RGB, REJECTED_ALPHA } from "../../frontend_static/js/case/overlay.js";

const alpha = (v) => v >>> 24;
const red = (v) => v & 255;
const style = (over = {}) => ({ opacity: 0.4, selected: 0, rejected: new Set(), showRejected: true, hidden: new Set(), ...over });

// A 4 x 4 image with a 3 x 3 block of label 2 (one interior pixel at (1, 1)... (2,2) is edge).
const labels = Uint16Array.from([
  2, 2, 2, 0,
  2, 2, 2, 0,
  2, 2, 2, 0,
  0, 0, 0, 0,
]);

test("outline opaque, interior at the fill opacity, background transparent", () => {
  const out = new Uint32Array(16);
  assert.equal(paintLabels(labels, 4, 4, style(), out), true);
  assert.equal(alpha(out[0]), 255);             // image border: edge
  assert.equal(alpha(out[5]), Math.round(0.4 * 255));  // (1,1): all four neighbours are 2
  assert.equal(alpha(out[3]), 0);
  assert.equal(red(out[5]), labelColor(2)[0]);
});

test("the selected lesion's fill is brighter", () => {
  const out = new Uint32Array(16);
  paintLabels(labels, 4, 4, style({ selected: 2 }), out);
  assert.equal(alpha(out[5]), Math.round(0.4 * 255) + 50);
});

test("rejected: faint red outline only, or nothing; hidden labels are not drawn", () => {
  let out = new Uint32Array(16);
  paintLabels(labels, 4, 4, style({ rejected: new Set([2]) }), out);
  assert.equal(alpha(out[0]), REJECTED_ALPHA);
  assert.equal(red(out[0]), REJECTED_RGB[0]);
  assert.equal(alpha(out[5]), 0);
  out = new Uint32Array(16);
  assert.equal(paintLabels(labels, 4, 4, style({ rejected: new Set([2]), showRejected: false }), out), false);
  assert.equal(out.some((v) => v !== 0), false);
  assert.equal(paintLabels(labels, 4, 4, style({ hidden: new Set([2]) }), new Uint32Array(16)), false);
  assert.equal(paintLabels(new Uint16Array(16), 4, 4, style(), new Uint32Array(16)), false);
});

test("anisotropic reformat sizes (rows != cols) paint row by row", () => {
  const l = Uint16Array.from([0, 1, 0, 0, 0, 0]);   // 2 rows x 3 cols
  const out = new Uint32Array(6);
  paintLabels(l, 2, 3, style(), out);
  assert.deepEqual([...out].map(alpha), [0, 255, 0, 0, 0, 0]);
});

/** Segments as sorted strings "x0,y0-x1,y1" (direction as emitted), for comparison. */
const segs = (flat) => { const out = []; for (let i = 0; i < flat.length; i += 4) out.push(`${flat[i]},${flat[i + 1]}-${flat[i + 2]},${flat[i + 3]}`); return out.sort(); };

test("outline: contour lines between voxels, merged into runs (3 x 3 block in a 4 x 4 image)", () => {
  const out = outlineSegments(labels, 4, 4);
  // The block spans x 0..3, y 0..3: four sides of length 3, nothing inside.
  assert.deepEqual(segs(out.get(2)), ["0,0-0,3", "0,0-3,0", "0,3-3,3", "3,0-3,3"].sort());
  assert.deepEqual([...out.keys()], [2]);
});

test("outline: a single voxel is a unit square around it, its signal left uncovered", () => {
  const one = new Uint16Array(15);  // odd 3 x 5 image
  one[1 * 5 + 3] = 4;               // (row 1, col 3)
  assert.deepEqual(segs(outlineSegments(one, 3, 5).get(4)), ["3,1-3,2", "3,1-4,1", "3,2-4,2", "4,1-4,2"].sort());
});

test("outline: two touching labels each get the shared edge; skipped labels and empty images give none", () => {
  const two = Uint16Array.from([1, 1, 3, 0, 0, 0]);  // 2 x 3
  const out = outlineSegments(two, 2, 3);
  assert.ok(segs(out.get(1)).includes("2,0-2,1"));
  assert.ok(segs(out.get(3)).includes("2,0-2,1"));
  assert.deepEqual(segs(out.get(1)), ["0,0-0,1", "0,0-2,0", "0,1-2,1", "2,0-2,1"].sort());
  assert.equal(outlineSegments(two, 2, 3, (l) => l === 3).has(3), false);
  assert.equal(outlineSegments(new Uint16Array(6), 2, 3).size, 0);
});

test("projectSlab: lesions of the slab slices projected, the slice nearest k wins a pixel", () => {
  // (D, H, W) = (5, 2, 3); label 1 on slice 0, 2 on slice 2 (= k), 3 on slice 4, 4 on slices 1 and 3.
  const shape = [5, 2, 3];
  const m = new Uint16Array(30);
  const put = (z, y, x, l) => { m[z * 6 + y * 3 + x] = l; };
  put(0, 0, 0, 1); put(2, 1, 1, 2); put(4, 1, 2, 3); put(1, 0, 1, 4); put(3, 0, 1, 5);
  put(0, 1, 1, 1);  // under lesion 2 (k): k wins
  put(1, 0, 2, 4); put(3, 0, 2, 5);  // same distance from k: the lower slice wins
  assert.deepEqual([...projectSlab(m, shape, "axial", 0, 4, 2)], [1, 4, 4, 0, 2, 3]);
  assert.deepEqual([...projectSlab(m, shape, "axial", 1, 3, 2)], [0, 4, 4, 0, 2, 0]);  // slab 1..3
  assert.deepEqual([...projectSlab(m, shape, "axial", 2, 2, 2)], [0, 0, 0, 0, 2, 0]);  // the slice itself
  // Coronal y = 0..1 around k = 0: rows are superior first (row = D - 1 - z).
  const cor = projectSlab(m, shape, "coronal", 0, 1, 0);
  assert.equal(cor.length, 5 * 3);
  assert.deepEqual([...cor.slice(4 * 3, 5 * 3)], [1, 1, 0]);  // z = 0: (y0,x0)=1; x1: y0 empty, y1 = 1
  assert.deepEqual([...cor.slice(0, 3)], [0, 0, 3]);           // z = 4: lesion 3 at y1
});

test("brushOutlineStrokes: a wide dark halo, then a thin white line; the eraser dashed", () => {
  for (const tool of ["brush", "eraser"]) {
    const [halo, line] = brushOutlineStrokes(tool);
    assert.match(halo.colour, /^rgba\(0,0,0,/);
    assert.match(line.colour, /^rgba\(255,255,255,/);
    assert.ok(halo.width > line.width);
    assert.deepEqual(halo.dash, tool === "eraser" ? [3, 3] : null);
    assert.deepEqual(line.dash, halo.dash);
  }
  // Never the lesion's colour: the same strokes whatever lesion is selected.
  assert.deepEqual(brushOutlineStrokes("brush"), brushOutlineStrokes("brush"));
});

test("slabOutline equals outlineSegments(projectSlab(...)) in every plane, on random volumes", async () => {
  const { labelBoxes, slabOutline } = await import("../../frontend_static/js/case/slab.js");
  const { planeShape } = await import("../../frontend_static/js/case/planes.js");
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const shape = [7, 9, 11];
  const [D, H, W] = shape;
  for (let trial = 0; trial < 20; trial++) {
    const m = new Uint16Array(D * H * W);
    for (let n = 0; n < 4; n++) {  // a few boxes of labels 1..3, some overlapping
      const l = 1 + Math.floor(rand() * 3);
      const z0 = Math.floor(rand() * D), y0 = Math.floor(rand() * H), x0 = Math.floor(rand() * W);
      for (let z = z0; z < Math.min(D, z0 + 2); z++) for (let y = y0; y < Math.min(H, y0 + 3); y++)
        for (let x = x0; x < Math.min(W, x0 + 2); x++) m[(z * H + y) * W + x] = l;
    }
    const boxes = labelBoxes(m, shape);
    const skip = (l) => l === 3 && trial % 2 === 0;  // hidden labels still occlude
    for (const plane of ["axial", "coronal", "sagittal"]) {
      const { rows, cols, count } = planeShape(plane, shape);
      for (const [lo, hi, k] of [[0, count - 1, 2], [1, 3, 2], [2, 2, 2], [count - 2, count - 1, count - 1]]) {
        const want = outlineSegments(projectSlab(m, shape, plane, lo, hi, k), rows, cols, skip);
        const got = slabOutline(m, shape, plane, lo, hi, k, boxes, outlineSegments, skip);
        const norm = (map) => [...map].map(([l, a]) => [l, [...a]]).sort((a, b) => a[0] - b[0]);
        assert.deepEqual(norm(got), norm(want), `${plane} ${lo}..${hi} k=${k} trial ${trial}`);
      }
    }
  }
  assert.equal(slabOutline(new Uint16Array(D * H * W), shape, "axial", 0, 3, 1, new Map(), outlineSegments).size, 0);
});

test("labelBoxes: per-label bounds, ends inclusive", async () => {
  const { labelBoxes } = await import("../../frontend_static/js/case/slab.js");
  const shape = [3, 4, 5];
  const m = new Uint16Array(60);
  m[(0 * 4 + 1) * 5 + 2] = 4; m[(2 * 4 + 3) * 5 + 0] = 4; m[(1 * 4 + 2) * 5 + 4] = 9;
  assert.deepEqual([...labelBoxes(m, shape)], [[4, [0, 1, 0, 2, 3, 2]], [9, [1, 2, 4, 1, 2, 4]]]);
});
