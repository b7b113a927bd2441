// node --test tests/js: MR window presets (frontend_static/js/case/windowing.js).
import test from "node:test";
import assert from "node:assert/strict";
import { mrPercentiles, autoWindowMR, contrastWindowMR, CT_PRESETS } from "../../frontend_static/js/case/windowing.js";

test("percentiles of the non-zero voxels; zeros (air) are left out", () => {
  // 1000 zeros and the values 1..1000.
  const data = new Int16Array(2000);
  for (let i = 0; i < 1000; i++) data[1000 + i] = i + 1;
  const p = mrPercentiles(data);
  assert.deepEqual(p, { p1: 11, p50: 501, p90: 901, p999: 1000 });
  assert.equal(mrPercentiles(new Int16Array(10)), null);
});

test("Auto reaches the brightest voxels; Enhancement starts at the median", () => {
  const p = { p1: 10, p50: 500, p90: 900, p999: 1000 };
  // hi = max(p999, 1.25 * p90) = 1125
  assert.deepEqual(autoWindowMR(p), { wc: (10 + 1125) / 2, ww: 1115 });
  assert.deepEqual(contrastWindowMR(p), { wc: (500 + 1125) / 2, ww: 625 });
  assert.equal(autoWindowMR(null), null);
  assert.deepEqual(autoWindowMR({ p1: 5, p50: 5, p90: 0, p999: 5 }), { wc: 5, ww: 1 });
  assert.deepEqual(CT_PRESETS.Brain, [40, 80]);
});
