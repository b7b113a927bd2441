// node --test tests/js: the case page's store (frontend_static/js/case/store.js).
import test from "node:test";
import assert from "node:assert/strict";
import { createStore } from "../../frontend_static/js/case/store.js";

test("subscribe, notify with arguments, unsubscribe", () => {
  const store = createStore({ z: 0 });
  const seen = [];
  const off = store.subscribe("position", (a, b) => seen.push([a, b]));
  assert.equal(store.notify("position", 1, 2), 1);
  assert.equal(store.notify("lesions"), 0);      // nobody listens
  off();
  store.notify("position", 3, 4);
  assert.deepEqual(seen, [[1, 2]]);
  assert.deepEqual(store.state, { z: 0 });
});

test("a batch delivers each topic once, with its last arguments", () => {
  const store = createStore();
  const seen = [];
  store.subscribe("lesions", (n) => seen.push(["lesions", n]));
  store.subscribe("draw", () => seen.push(["draw"]));
  const result = store.batch(() => {
    store.notify("lesions", 1); store.notify("draw"); store.notify("lesions", 2);
    assert.equal(seen.length, 0);
    return "done";
  });
  assert.equal(result, "done");
  assert.deepEqual(seen, [["lesions", 2], ["draw"]]);
});

test("a throwing batch still delivers, and a bad subscriber is refused", () => {
  const store = createStore();
  let n = 0;
  store.subscribe("edit", () => n++);
  assert.throws(() => store.batch(() => { store.notify("edit"); throw new Error("boom"); }), /boom/);
  assert.equal(n, 1);
  assert.throws(() => store.subscribe("edit", null), /not a function/);
});
