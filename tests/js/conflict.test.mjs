// node --test tests/js: save conflicts (frontend_static/js/case/conflict.js).
import test from "node:test";
import assert from "node:assert/strict";
import {
  baseBeforeEdits, labelChanges, describeChanges, labelsIn, relabelPlan, relabelChanges,
} from "../../frontend_static/js/case/conflict.js";

test("baseBeforeEdits undoes my changes newest first and leaves the mask alone", () => {
  const mask = Uint16Array.from([0, 3, 3, 0]);
  // First I painted voxel 1 with 2, then over it... (a brush never overwrites: values chain)
  const changes = [
    { label: 2, idx: [1], old: [0], neu: [2] },
    { label: 3, idx: [1, 2], old: [2, 0], neu: [3, 3] },
  ];
  assert.deepEqual([...baseBeforeEdits(mask, changes)], [0, 0, 0, 0]);
  assert.deepEqual([...mask], [0, 3, 3, 0]);
});

test("labelChanges: added, changed, erased", () => {
  const table = [
    [[0, 1, 1, 2], [0, 1, 1, 2], { added: [], changed: [], erased: [] }],
    [[0, 1, 1, 2], [4, 1, 0, 0], { added: [4], changed: [1], erased: [2] }],
    [[0, 0, 0, 0], [0, 0, 5, 5], { added: [5], changed: [], erased: [] }],
    [[3, 0], [0, 0], { added: [], changed: [], erased: [3] }],
  ];
  for (const [base, theirs, expected] of table) {
    assert.deepEqual(labelChanges(Uint16Array.from(base), Uint16Array.from(theirs)), expected);
  }
  assert.throws(() => labelChanges(new Uint16Array(2), new Uint16Array(3)), /differ in size/);
});

test("describeChanges reads as a sentence", () => {
  assert.equal(describeChanges({ added: [4], changed: [1, 2], erased: [] }), "They added lesion 4; changed lesions 1, 2.");
  assert.equal(describeChanges({ added: [], changed: [], erased: [7] }), "They erased lesion 7.");
  assert.equal(describeChanges({ added: [], changed: [], erased: [] }), "Their revision draws the same lesions as yours started from.");
});

test("relabelPlan renumbers only my new labels they also used, above every used label", () => {
  const theirs = labelsIn(Uint16Array.from([0, 4, 4, 5, 0]));
  assert.deepEqual([...theirs].sort(), [4, 5]);
  const plan = relabelPlan(new Set([4, 6]), theirs, [1, 2, 3, 6]);
  assert.deepEqual([...plan], [[4, 7]]);
  assert.equal(relabelPlan([9], theirs, [1]).size, 0);
  // Two clashes: consecutive fresh labels in label order.
  assert.deepEqual([...relabelPlan([5, 4], theirs, [8])], [[4, 9], [5, 10]]);
});

test("relabelChanges rewrites the painted values and labels, not the old values", () => {
  const changes = [{ label: 4, kind: "brush", idx: [0, 1], old: [0, 4], neu: [4, 4] }, { label: 2, kind: "eraser", idx: [3], old: [2], neu: [0] }];
  const out = relabelChanges(changes, new Map([[4, 7]]));
  assert.deepEqual(out[0].neu, [7, 7]);
  assert.deepEqual(out[0].old, [0, 4]);
  assert.equal(out[0].label, 7);
  assert.equal(out[1].label, 2);
  assert.deepEqual(changes[0].neu, [4, 4]);   // the input is not modified
  assert.equal(relabelChanges(changes, new Map()), changes);
});
