/* Image volumes on the model grid and the `ll:` cornerstone image loader.
 *
 * imageId: `ll:<study>/<channel>/<slice>`. A whole int16 volume is fetched once per
 * channel (gzip on the wire, decoded by the browser); until it arrives, a single slice
 * can be fetched with `?slice=k` so the first image shows fast. Slices are views on the
 * volume buffer (no copies). */
(function () {
  "use strict";

  const volumes = new Map();   // "study/channel" -> {data: Int16Array, shape, spacing}
  const pending = new Map();   // "study/channel" -> Promise
  const singles = new Map();   // "study/channel/k" -> Promise<Int16Array>

  function parseTriple(s, cast = Number) {
    return (s || "").split(",").map((v) => cast(v.trim()));
  }

  function key(study, channel) { return `${study}/${channel}`; }

  /** Load (once) the whole display volume of one channel. */
  function loadVolume(study, channel) {
    const k = key(study, channel);
    if (volumes.has(k)) return Promise.resolve(volumes.get(k));
    if (pending.has(k)) return pending.get(k);
    const p = LL.getBinary(`/api/studies/${study}/volume/${channel}/`).then(({ buffer, headers }) => {
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
      singles.set(k, LL.getBinary(`/api/studies/${study}/volume/${channel}/?slice=${z}`).then(({ buffer }) => new Int16Array(buffer)));
    }
    return singles.get(k);
  }

  function getVolume(study, channel) { return volumes.get(key(study, channel)) || null; }

  function sliceView(vol, z) {
    const [, H, W] = vol.shape;
    return vol.data.subarray(z * H * W, (z + 1) * H * W);
  }

  const geometry = new Map();  // study -> {shape, spacing} from the study detail
  function setGeometry(study, shape, spacing) { geometry.set(String(study), { shape, spacing }); }

  function minMax(px) {
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

  function makeImage(imageId, px, H, W, spacing) {
    const [lo, hi] = minMax(px);
    return {
      imageId, minPixelValue: lo, maxPixelValue: hi, slope: 1, intercept: 0,
      windowCenter: (lo + hi) / 2, windowWidth: hi - lo,
      getPixelData: () => px, rows: H, columns: W, height: H, width: W, color: false,
      columnPixelSpacing: spacing ? spacing[2] : 1, rowPixelSpacing: spacing ? spacing[1] : 1,
      invert: false, sizeInBytes: px.byteLength,
    };
  }

  function parseId(imageId) {
    const m = /^ll:(\d+)\/(mr|ct)\/(\d+)$/.exec(imageId);
    if (!m) throw new Error(`bad image id ${imageId}`);
    return { study: m[1], channel: m[2], z: Number(m[3]) };
  }

  /** A cornerstone image for a slice, synchronously, when the volume is in memory. */
  function imageNow(imageId) {
    const { study, channel, z } = parseId(imageId);
    const vol = getVolume(study, channel);
    if (!vol) return null;
    const [, H, W] = vol.shape;
    return makeImage(imageId, sliceView(vol, z), H, W, vol.spacing);
  }

  function loader(imageId) {
    const promise = (async () => {
      const now = imageNow(imageId);
      if (now) return now;
      const { study, channel, z } = parseId(imageId);
      const geo = geometry.get(study);
      const whole = loadVolume(study, channel);
      if (!geo) { await whole; return imageNow(imageId); }
      // Whichever comes first: the single slice or the whole volume.
      const px = await Promise.race([loadSingleSlice(study, channel, z), whole.then((v) => sliceView(v, z))]);
      return makeImage(imageId, px, geo.shape[1], geo.shape[2], geo.spacing);
    })();
    return { promise, cancelFn: undefined };
  }

  cornerstone.registerImageLoader("ll", loader);

  window.LLVolume = { loadVolume, getVolume, sliceView, setGeometry, imageNow, minMax, imageId: (s, c, z) => `ll:${s}/${c}/${z}` };
})();
