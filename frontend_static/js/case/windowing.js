/* Window (VOI) presets (pure, no DOM; unit-tested in tests/js). */

/** CT presets as [window centre, window width] in HU. */
export const CT_PRESETS = { Brain: [40, 80], Bone: [500, 2000], "Soft tissue": [50, 400], Subdural: [75, 215] };

/** Percentiles of the non-zero voxels of a sample of at most ~maxSamples voxels, or null
 * for an all-zero volume. Enhancing lesions are the brightest and rarest voxels: the top
 * of an MR window must reach them, or they vanish in the white. */
export function mrPercentiles(data, maxSamples = 300000) {
  const step = Math.max(1, Math.floor(data.length / maxSamples));
  const vals = [];
  for (let i = 0; i < data.length; i += step) if (data[i] !== 0) vals.push(data[i]);
  if (!vals.length) return null;
  vals.sort((a, b) => a - b);
  const q = (f) => vals[Math.min(vals.length - 1, Math.floor(vals.length * f))];
  return { p1: q(0.01), p50: q(0.5), p90: q(0.9), p999: q(0.999) };
}

function windowFrom(lo, hi) { return { wc: (lo + hi) / 2, ww: Math.max(1, hi - lo) }; }

/** MR *Auto*: 1st percentile .. max(99.9th, 1.25 x 90th) of the non-zero voxels. */
export function autoWindowMR(p) {
  return p ? windowFrom(p.p1, Math.max(p.p999, p.p90 * 1.25)) : null;
}

/** MR *Enhancement*: from the median, so only enhancing tissue stays bright. */
export function contrastWindowMR(p) {
  return p ? windowFrom(p.p50, Math.max(p.p999, p.p90 * 1.25)) : null;
}
