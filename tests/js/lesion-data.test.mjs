// node --test tests/js: lesion rows of the panel (frontend_static/js/case/lesion-data.js).
import test from "node:test";
import assert from "node:assert/strict";
import { mergeLesions, sortLesions, pendingLesions, stepLesion, nextFreeLabel, shownVolume, rowState, unsavedChangedLabels } from "../../frontend_static/js/case/lesion-data.js";

const server = [
  { label: 1, volume_mm3: 50, decision: "pending" },
  { label: 2, volume_mm3: 500, decision: "accepted" },
  { label: 3, volume_mm3: 50, decision: "pending" },
];

test("merge: local volumes from the editor, changed when they differ", () => {
  const counts = { 1: 50, 2: 0, 3: 60, 9: 12 };
  const list = mergeLesions(server, [{ label: 9, local: true, decision: "added", volume_mm3: null }], (l) => counts[l]);
  assert.deepEqual(list.map((l) => [l.label, l.localVolume, l.changed]), [[1, 50, false], [2, 0, true], [3, 60, true], [9, 12, false]]);
  assert.equal(server[0].localVolume, undefined);   // rows are copies
  const noEditor = mergeLesions(server, [], null);
  assert.deepEqual(noEditor.map((l) => [l.localVolume, l.changed]), [[50, false], [500, false], [50, false]]);
});

test("sorted by shown volume, ties by label, both directions", () => {
  const list = mergeLesions(server, [], null);
  assert.deepEqual(sortLesions(list, true).map((l) => l.label), [1, 3, 2]);
  assert.deepEqual(sortLesions(list, false).map((l) => l.label), [2, 1, 3]);
  assert.equal(shownVolume({ localVolume: null, volume_mm3: 7 }), 7);
});

test("pending: local lesions need no decision; wholly erased ones neither (when asked)", () => {
  const list = mergeLesions(server, [{ label: 9, local: true }], (l) => ({ 1: 0, 2: 500, 3: 50, 9: 3 })[l]);
  assert.deepEqual(pendingLesions(list).map((l) => l.label), [1, 3]);
  assert.deepEqual(pendingLesions(list, { erasedCounts: true }).map((l) => l.label), [3]);
  assert.deepEqual(pendingLesions([]), []);
});

test("stepLesion wraps both ways; starts at an end when nothing is selected", () => {
  const list = [{ label: 4 }, { label: 1 }, { label: 7 }];
  const table = [[4, 1, 1], [7, 1, 4], [4, -1, 7], [0, 1, 4], [0, -1, 7]];
  for (const [from, dir, to] of table) assert.equal(stepLesion(list, from, dir).label, to, `${from} ${dir}`);
  assert.equal(stepLesion([], 1, 1), null);
});

test("nextFreeLabel is one above every label in use", () => {
  assert.equal(nextFreeLabel([3], [1, 5], new Map([[9, {}]]).keys()), 10);
  assert.equal(nextFreeLabel([], []), 1);
});

test("rowState: a new empty lesion is 'empty', a lesion with no voxels left is 'erased'", () => {
  // [row, volumeOf label (the editor's mm³; null = no editor), expected]
  const cases = [
    [{ label: 7, local: true, volume_mm3: null }, 0, "empty"],        // Shift+N, nothing painted
    [{ label: 7, local: true, volume_mm3: null }, 12, "live"],        // painted, not saved
    [{ label: 2, volume_mm3: 26 }, 0, "erased"],                      // deleted here, unsaved
    [{ label: 2, volume_mm3: 0, decision: "rejected" }, 0, "erased"], // deleted and saved
    [{ label: 2, volume_mm3: 0, decision: "rejected" }, null, "erased"], // read-only page
    [{ label: 2, volume_mm3: 26 }, null, "live"],
    [{ label: 2, volume_mm3: null }, null, "live"],                   // volume unknown
  ];
  for (const [row, vol, expected] of cases) {
    const [merged] = row.local
      ? mergeLesions([], [row], () => vol)
      : mergeLesions([row], [], vol == null ? null : () => vol);
    assert.equal(rowState(merged), expected, JSON.stringify([row, vol]));
  }
  // Deleted and saved: the server's 0 mm³ equals the editor's, so the row is not "changed" (unsaved).
  const [saved] = mergeLesions([{ label: 2, volume_mm3: 0, decision: "rejected" }], [], () => 0);
  assert.equal(saved.changed, false);
});

test("unsavedChangedLabels: saved lesions edited here, not drawn-here ones", () => {
  const rows = mergeLesions(
    [{ label: 3, volume_mm3: 40 }, { label: 2, volume_mm3: 26 }, { label: 5, volume_mm3: 9 }],
    [{ label: 7, local: true, volume_mm3: null }],
    (label) => ({ 2: 0, 3: 40, 5: 4, 7: 12 })[label],   // 2 deleted, 5 partly erased, 3 untouched
  );
  assert.deepEqual(unsavedChangedLabels(rows), [2, 5]);
  assert.deepEqual(unsavedChangedLabels(mergeLesions([{ label: 2, volume_mm3: 26 }], [], null)), []);  // no editor
});

test("sortLesions: erased rows (0 voxels left) go last in both directions", () => {
  const rows = mergeLesions(
    [{ label: 1, volume_mm3: 50 }, { label: 2, volume_mm3: 0, decision: "rejected" }, { label: 3, volume_mm3: 500 }, { label: 4, volume_mm3: 20 }],
    [{ label: 7, local: true, volume_mm3: null }],
    (label) => ({ 1: 50, 2: 0, 3: 500, 4: 0, 7: 0 })[label],   // 2 saved erased, 4 erased here, 7 new and empty
  );
  assert.deepEqual(sortLesions(rows, true).map((l) => l.label), [7, 1, 3, 2, 4]);
  assert.deepEqual(sortLesions(rows, false).map((l) => l.label), [3, 1, 7, 2, 4]);
});
