/* Image volumes on the model grid and the `ll:` cornerstone image loader.
 *
 * A whole int16 volume is fetched once per channel (gzip on the wire, decoded by the
 * browser); until it arrives, a single axial slice can be fetched with `?slice=k` so the
 * first image shows fast. Axial slices are views on the volume buffer (no copies);
 * coronal and sagittal slices are reformatted from it (planes.js) when shown.
 * imageIds: `ll:<study>/<channel>/<k>` (axial, also through the loader) and
 * `ll:<study>/<channel>/<plane>/<k>` (reformats, only when the volume is in memory). */
import { extractSlice, flipRows, planeShape, planeSpacing } from "./planes.js";
import { mipSlice } from "./mip.js";

const LL = window.LL;
const volumes = new Map();   // "study/channel" -> {data: Int16Array, shape, spacing}
const pending = new Map();   // "study/channel" -> Promise
const singles = new Map();   // "study/channel/k" -> Promise<Int16Array>; "study/channel/plane/k" -> Promise<image>
const geometry = new Map();  // study -> {shape, spacing} from the study detail
// Thick-slab MIP (mip.js) of the MR planes: slab width in mm, 0 = off. Read by planeImage,
// so every view shows the slab without knowing about it; `mipStats.lastMs` is the time
// the last slab took to compute (the benchmark reads it).
let mipWidthMm = 0;
export const mipStats = { lastMs: 0 };
export function setMipWidth(mm) { mipWidthMm = mm > 0 ? mm : 0; }
export function mipWidth() { return mipWidthMm; }

function parseTriple(s) { return (s || "").split(",").map((v) => Number(v.trim())); }
function key(study, channel) { return `${study}/${channel}`; }

/** Load (once) the whole display volume of one channel. */
export function loadVolume(study, channel) {
  const k = key(study, channel);
  if (volumes.has(k)) return Promise.resolve(volumes.get(k));
  if (pending.has(k)) return pending.get(k);
  const p = LL.getBinary(LL.urls.volume(study, channel)).then(({ buffer, headers }) => {
    const shape = parseTriple(headers.get("X-Volume-Shape"));
    const spacing = parseTriple(headers.get("X-Volume-Spacing"));
    const dtype = (headers.get("X-Volume-Dtype") || "int16").toLowerCase();
    if (dtype !== "int16") throw new Error(`unexpected volume dtype ${dtype}`);
    const data = new Int16Array(buffer);
    if (shape.length === 3 && shape[0] * shape[1] * shape[2] !== data.length) {
      throw new Error(`volume size ${data.length} does not match shape ${shape}`);
    }
    const vol = { data, shape, spacing, channel };
    volumes.set(k, vol);
    pending.delete(k);
    return vol;
  });
  p.catch(() => pending.delete(k));
  pending.set(k, p);
  return p;
}

function loadSingleSlice(study, channel, z) {
  const k = `${study}/${channel}/${z}`;
  if (!singles.has(k)) {
    singles.set(k, LL.getBinary(LL.urls.volume(study, channel, z)).then(({ buffer }) => new Int16Array(buffer)));
  }
  return singles.get(k);
}

export function getVolume(study, channel) { return volumes.get(key(study, channel)) || null; }
export function setGeometry(study, shape, spacing) { geometry.set(String(study), { shape, spacing }); }

export function minMax(px) {
  let lo = 32767, hi = -32768;
  for (let i = 0; i < px.length; i++) {
    const v = px[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) { lo = 0; hi = 1; }
  if (lo === hi) hi = lo + 1;
  return [lo, hi];
}

/** A cornerstone image; rowPixelSpacing / columnPixelSpacing make cornerstone draw
 * anisotropic pixels at their physical aspect. */
function makeImage(imageId, px, rows, cols, spacing) {
  const [lo, hi] = minMax(px);
  return {
    imageId, minPixelValue: lo, maxPixelValue: hi, slope: 1, intercept: 0,
    windowCenter: (lo + hi) / 2, windowWidth: hi - lo,
    getPixelData: () => px, rows, columns: cols, height: rows, width: cols, color: false,
    columnPixelSpacing: spacing.col, rowPixelSpacing: spacing.row,
    invert: false, sizeInBytes: px.byteLength,
  };
}

export function imageId(study, channel, plane, k) {
  return plane === "axial" ? `ll:${study}/${channel}/${k}` : `ll:${study}/${channel}/${plane}/${k}`;
}

/** Slice k of a plane as a cornerstone image, synchronously, when the volume is in
 * memory; null otherwise. With a MIP width set, MR images are the maximum over the slab
 * centred on slice k (mip.js); CT never is. */
export function planeImage(study, channel, plane, k) {
  const vol = getVolume(study, channel);
  if (!vol) return null;
  const { rows, cols } = planeShape(plane, vol.shape);
  const spacing = planeSpacing(plane, vol.spacing);
  if (mipWidthMm > 0 && channel === "mr") {
    const t0 = performance.now();
    const px = mipSlice(vol.data, vol.shape, plane, k, mipWidthMm, vol.spacing);
    mipStats.lastMs = performance.now() - t0;
    return makeImage(`${imageId(study, channel, plane, k)}/mip${mipWidthMm}`, px, rows, cols, spacing);
  }
  const px = extractSlice(vol.data, vol.shape, plane, k);
  return makeImage(imageId(study, channel, plane, k), px, rows, cols, spacing);
}

/** Slice k of a coronal or sagittal plane before the volume is in memory (one GET of
 * that slice, `?slice=k&plane=`), as a cornerstone image; null without the geometry. */
export function loadPlaneImage(study, channel, plane, k) {
  const geo = geometry.get(String(study));
  if (!geo || plane === "axial") return Promise.resolve(null);
  const key = `${study}/${channel}/${plane}/${k}`;
  if (!singles.has(key)) {
    const { rows, cols } = planeShape(plane, geo.shape);
    const p = LL.getBinary(LL.urls.volume(study, channel, k, plane))
      .then(({ buffer }) => makeImage(imageId(study, channel, plane, k), flipRows(new Int16Array(buffer), rows, cols), rows, cols, planeSpacing(plane, geo.spacing)));
    p.catch(() => singles.delete(key));
    singles.set(key, p);
  }
  return singles.get(key);
}

function parseId(id) {
  const m = /^ll:(\d+)\/(mr|ct)\/(\d+)$/.exec(id);
  if (!m) throw new Error(`bad image id ${id}`);
  return { study: m[1], channel: m[2], z: Number(m[3]) };
}

/** Axial slices before the volume is in memory: whichever comes first, the single
 * slice or the whole volume. */
function loader(id) {
  const promise = (async () => {
    const { study, channel, z } = parseId(id);
    const now = planeImage(study, channel, "axial", z);
    if (now) return now;
    const geo = geometry.get(study);
    const whole = loadVolume(study, channel);
    if (!geo) { await whole; return planeImage(study, channel, "axial", z); }
    const px = await Promise.race([loadSingleSlice(study, channel, z), whole.then((v) => extractSlice(v.data, v.shape, "axial", z))]);
    return makeImage(id, px, geo.shape[1], geo.shape[2], planeSpacing("axial", geo.spacing));
  })();
  return { promise, cancelFn: undefined };
}

window.cornerstone.registerImageLoader("ll", loader);
