/* Overlays drawn on cornerstone's own canvas after each render (IMAGE_RENDERED), in image
 * pixel coordinates, so they stay in register with zoom and pan: the fused CT blend, the
 * lesion label mask (one colour per lesion, outline always opaque, fill at the chosen
 * opacity, the selected lesion brighter) and the brush cursor. Slice bitmaps are cached
 * and rebuilt only when that slice, the selection or the opacity changes. */
(function () {
  "use strict";

  // Distinct hues that read well on a dark grey MR; red is kept out (it means "rejected").
  const PALETTE = [
    [255, 214, 0], [0, 200, 255], [80, 255, 120], [255, 120, 220], [255, 150, 40],
    [150, 130, 255], [0, 255, 200], [220, 255, 80], [255, 90, 140], [90, 170, 255],
    [200, 120, 255], [120, 255, 255],
  ];
  const REJECTED_RGB = [200, 70, 70], REJECTED_ALPHA = 130;
  function labelColor(label) { return PALETTE[(Math.max(1, label) - 1) % PALETTE.length]; }
  function labelCss(label, a = 1) { const c = labelColor(label); return `rgba(${c[0]},${c[1]},${c[2]},${a})`; }

  class MaskOverlay {
    constructor() {
      this.mask = null; this.D = 0; this.H = 0; this.W = 0;
      this.opacity = 0.35; this.visible = true; this.selected = 0;
      this.hidden = new Set();          // labels not drawn
      this.rejected = new Set();        // drawn dimmed (outline only), or not at all
      this.showRejected = true;
      this.cache = new Map();           // z -> {canvas, version}
      this.sliceVersion = null;         // Uint32Array(D), bumped when a slice is edited
      this.globalVersion = 1;
    }
    setMask(mask, shape) {
      [this.D, this.H, this.W] = shape;
      this.mask = mask;
      this.sliceVersion = new Uint32Array(this.D);
      this.cache.clear();
      this.globalVersion++;
    }
    touchSlice(z) { if (this.sliceVersion) this.sliceVersion[z]++; }
    touchAll() { this.globalVersion++; }
    setOpacity(v) { this.opacity = v; this.touchAll(); }
    setSelected(label) { if (label !== this.selected) { this.selected = label; this.touchAll(); } }
    /** Rejected lesions are not exported: draw them as a faint red outline, or hide them. */
    setRejected(labels, show = this.showRejected) {
      const next = new Set(labels);
      const same = next.size === this.rejected.size && [...next].every((l) => this.rejected.has(l));
      if (same && show === this.showRejected) return;
      this.rejected = next; this.showRejected = show; this.touchAll();
    }

    sliceCanvas(z) {
      if (!this.mask) return null;
      const version = this.globalVersion * 1e6 + this.sliceVersion[z];
      const hit = this.cache.get(z);
      if (hit && hit.version === version) return hit.canvas;
      const { H, W } = this;
      const off = z * H * W;
      const m = this.mask;
      let any = false;
      for (let i = off, e = off + H * W; i < e; i++) { if (m[i]) { any = true; break; } }
      let canvas = null;
      if (any) {
        canvas = (hit && hit.canvas) || document.createElement("canvas");
        canvas.width = W; canvas.height = H;
        const ctx = canvas.getContext("2d");
        const img = ctx.createImageData(W, H);
        const px = new Uint32Array(img.data.buffer);
        const fill = Math.round(this.opacity * 255);
        const colors = new Map();
        const packed = (label, a) => {
          const c = this.rejected.has(label) ? REJECTED_RGB : labelColor(label);
          return ((a & 255) << 24) | (c[2] << 16) | (c[1] << 8) | c[0]; // little-endian RGBA
        };
        for (let y = 0; y < H; y++) {
          const row = off + y * W;
          for (let x = 0; x < W; x++) {
            const l = m[row + x];
            if (!l || this.hidden.has(l)) continue;
            const rejected = this.rejected.has(l);
            if (rejected && !this.showRejected) continue;
            const edge = x === 0 || x === W - 1 || y === 0 || y === H - 1 ||
              m[row + x - 1] !== l || m[row + x + 1] !== l || m[row + x - W] !== l || m[row + x + W] !== l;
            if (rejected) {
              if (edge) px[y * W + x] = packed(l, REJECTED_ALPHA);
              continue;
            }
            const sel = l === this.selected;
            const k = l * 4 + (edge ? 1 : 0) + (sel ? 2 : 0);
            let c = colors.get(k);
            if (c === undefined) {
              const a = edge ? 255 : Math.min(255, sel ? fill + 50 : fill);
              c = packed(l, a);
              colors.set(k, c);
            }
            px[y * W + x] = c;
          }
        }
        ctx.putImageData(img, 0, 0);
      }
      this.cache.set(z, { canvas, version });
      return canvas;
    }
  }

  /** The CT slice windowed (bone by default) for blending over the MR. */
  class FusedCT {
    constructor() { this.cache = new Map(); this.blend = 0.45; this.wc = 400; this.ww = 1800; }
    setWindow(wc, ww) { if (wc !== this.wc || ww !== this.ww) { this.wc = wc; this.ww = ww; this.cache.clear(); } }
    sliceCanvas(vol, z) {
      if (!vol) return null;
      const hit = this.cache.get(z);
      if (hit) return hit;
      const [, H, W] = vol.shape;
      const px = LLVolume.sliceView(vol, z);
      const canvas = document.createElement("canvas");
      canvas.width = W; canvas.height = H;
      const ctx = canvas.getContext("2d");
      const img = ctx.createImageData(W, H);
      const out = new Uint32Array(img.data.buffer);
      const lo = this.wc - this.ww / 2, scale = 255 / this.ww;
      for (let i = 0; i < px.length; i++) {
        let g = (px[i] - lo) * scale;
        g = g < 0 ? 0 : g > 255 ? 255 : g | 0;
        // Bone in a warm tint, opaque where the CT is bright and clear where it is dark,
        // so the MR stays readable and the skull (the frame of reference) shows on top.
        out[i] = (g << 24) | ((g * 0.55) << 16) | ((g * 0.85) << 8) | g;
      }
      ctx.putImageData(img, 0, 0);
      if (this.cache.size > 200) this.cache.clear();
      this.cache.set(z, canvas);
      return canvas;
    }
  }

  window.LLOverlay = { MaskOverlay, FusedCT, labelColor, labelCss };
})();
