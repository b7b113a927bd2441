// node --test tests/js: the mask editor (frontend_static/js/case/tools.js) and the
// review history's decision mapping (history.js).
import test from "node:test";
import assert from "node:assert/strict";
import { MaskEditor } from "../../frontend_static/js/case/tools.js";
import { requestFor } from "../../frontend_static/js/case/history.js";

function editor(shape = [2, 9, 9], spacing = [2, 1, 1]) {
  const mask = new Uint16Array(shape[0] * shape[1] * shape[2]);
  const changes = [];
  return { mask, changes, ed: new MaskEditor(mask, shape, spacing, { onChange: (ch, kind) => changes.push(kind) }) };
}

test("a brush dab paints a disc in mm on one slice; volume = voxels x voxel volume", () => {
  const { ed, changes } = editor();
  ed.begin(1, "brush");
  ed.dab(1, 4, 4, 1, false);       // radius 1 mm on a 1 mm grid: the centre and 4 neighbours
  ed.end();
  assert.equal(ed.counts.get(1), 5);
  assert.equal(ed.volumeMm3(1), 5 * 2);
  assert.equal(ed.largestSlice(1), 1);
  assert.deepEqual(ed.centreOn(1, 1), [4, 4]);
  assert.deepEqual(changes, ["do"]);
  assert.equal(ed.dirty, true);
});

test("anisotropic in-plane spacing makes an ellipse in voxels", () => {
  const { ed } = editor([1, 9, 9], [1, 0.5, 1]);   // rows 0.5 mm, cols 1 mm
  ed.begin(1, "brush"); ed.dab(0, 4, 4, 1, false); ed.end();
  // Radius 1 mm = 2 rows and 1 column: column x=4 over rows 2..6, plus (4,3) and (4,5).
  assert.equal(ed.counts.get(1), 7);
});

test("the brush never paints over another lesion; the eraser only removes the selected one", () => {
  const { ed, mask } = editor([1, 5, 5], [1, 1, 1]);
  mask[12] = 2; ed.recount();
  ed.begin(1, "brush"); ed.dab(0, 2, 2, 1, false); ed.end();
  assert.equal(mask[12], 2);
  assert.equal(ed.counts.get(1), 4);
  ed.begin(2, "eraser"); ed.dab(0, 2, 2, 1, true); ed.end();
  assert.equal(mask[12], 0);
  assert.equal(ed.counts.get(1), 4);
});

test("undo / redo restore voxels and counts; saved depth decides dirty", () => {
  const { ed, mask } = editor();
  ed.begin(3, "brush"); ed.dab(0, 4, 4, 2, false); ed.end();
  const painted = ed.counts.get(3);
  ed.markSaved();
  assert.equal(ed.dirty, false);
  ed.undo();
  assert.equal(ed.counts.get(3), undefined);
  assert.equal(mask.reduce((a, b) => a + b, 0), 0);
  assert.equal(ed.dirty, true);
  ed.redo();
  assert.equal(ed.counts.get(3), painted);
  assert.equal(ed.dirty, false);
  assert.equal(ed.deleteLabel(3).idx.length, painted);
  assert.equal(ed.counts.get(3), undefined);
});

test("rebase replays my edits on their mask", () => {
  const { ed, mask } = editor([1, 3, 3], [1, 1, 1]);
  ed.begin(1, "brush"); ed.dab(0, 0, 0, 0.5, false); ed.end();
  const theirs = new Uint16Array(9); theirs[8] = 5;
  ed.rebase(theirs, ed.unsavedChanges());
  assert.deepEqual([...mask], [1, 0, 0, 0, 0, 0, 0, 0, 5]);
  assert.equal(ed.undoStack.length, 1);
});

test("requestFor: kept decisions go back as accepted", () => {
  const table = [["accepted", "accepted"], ["edited", "accepted"], ["added", "accepted"], ["rejected", "rejected"], ["pending", "pending"], [null, "pending"]];
  for (const [from, to] of table) assert.equal(requestFor(from), to);
});

test("brush in coronal and sagittal: an ellipse in (z, x) / (z, y) at that slice, superior row 0", () => {
  // 5 slices of 2 mm on a 1 mm grid; radius 2 mm = 1 slice up/down, 2 columns either side.
  const shape = [5, 6, 7], [D, H, W] = shape;
  const table = [
    ["coronal", 3, (z, y, x) => y === 3, (z, y, x) => [D - 1 - z, x]],
    ["sagittal", 4, (z, y, x) => x === 4, (z, y, x) => [D - 1 - z, y]],
  ];
  for (const [plane, k, onSlice, toRowCol] of table) {
    const { ed, mask } = editor(shape, [2, 1, 1]);
    ed.begin(1, "brush"); ed.dabIn(plane, k, 1, 2, 2, false); ed.end();
    // Rows 0..2 (z 4..2); at row 1 columns 0..4 (5), at rows 0 and 2 only column 2 (dr = 1).
    assert.equal(ed.counts.get(1), 7, plane);
    for (let i = 0; i < mask.length; i++) {
      if (!mask[i]) continue;
      const z = Math.floor(i / (H * W)), y = Math.floor(i / W) % H, x = i % W;
      assert.ok(onSlice(z, y, x), `${plane}: voxel ${[z, y, x]} off the slice`);
      const [r, c] = toRowCol(z, y, x);
      assert.ok((r - 1) ** 2 + ((c - 2) / 2) ** 2 <= 1, `${plane}: ${[r, c]} outside the ellipse`);
    }
    assert.deepEqual([...ed.undoStack[0].slices].sort(), [2, 3, 4]);
    ed.undo();
    assert.equal(mask.some((v) => v), false);
  }
  assert.throws(() => editor().ed._planeIndex("oblique", 0), /unknown plane/);
});
