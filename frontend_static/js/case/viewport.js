/* One plane of the volume in one cornerstone element: the image of the current slice,
 * and drawn over it after each render (cornerstone's IMAGE_RENDERED, in image pixel
 * coordinates, so everything follows zoom and pan): the fused CT, the lesion overlay,
 * the ring around the selected lesion, the crosshair of the other two planes and the
 * brush outline (the 2D brush: a disc in the plane under the mouse; the 3D brush: the
 * voxels the ball paints on this view's slice, in every plane it reaches); then, in canvas coordinates, the rulers and the scale bar (measure-ui.js).
 * Images of anisotropic voxels are drawn at their physical aspect
 * (cornerstone scales by rowPixelSpacing / columnPixelSpacing). */
import { planeShape, planeSpacing, sliceIndex, toPlane, fromPlane, bboxSlices } from "./planes.js";
import { sphereOffsets, sphereSection, pixelOutline } from "./shapes.js";
import { planeImage, imageId, getVolume, loadPlaneImage } from "./volume.js";
import { labelCss, brushOutlineStrokes } from "./overlay.js";

const cs = window.cornerstone;
const { esc } = window.LL;
export const PLANE_NAMES = { axial: "Axial", coronal: "Coronal", sagittal: "Sagittal" };
// The colour of each plane: its crosshair line in the other views and its view's label.
// The 3D brush's voxel offsets for the current radius and spacing (shared by the views).
let ballCache = null;
export const PLANE_COLOURS = { axial: "rgba(90,170,255,0.75)", coronal: "rgba(110,220,120,0.75)", sagittal: "rgba(235,170,60,0.75)" };

export class PlaneView {
  constructor(app, plane, el) {
    this.app = app; this.plane = plane; this.el = el;
    this.enabled = false; this.requestedAt = null; this.shownK = null;
    el.addEventListener("cornerstoneimagerendered", (ev) => this.onRendered(ev));
  }
  get S() { return this.app.S; }
  get k() { return sliceIndex(this.plane, this.S.pos); }
  get count() { return planeShape(this.plane, this.S.shape).count; }
  enable() { if (!this.enabled) { cs.enable(this.el); this.enabled = true; } }
  hasImage() { return this.enabled && !!cs.getEnabledElement(this.el).image; }

  /** Show the current slice (the volume in memory; axial also before, through the loader). */
  show() {
    const { S, app, plane } = this;
    if (!S.shape || !this.enabled) return;
    const k = this.k;
    const ch = app.baseChannel();
    const img = planeImage(app.studyId, ch, plane, k);
    const first = !this.hasImage();
    if (img) {
      this.requestedAt = performance.now();
      cs.displayImage(this.el, img, this.viewportFor(ch));
      if (first) this.fitFirst();
    } else {
      // Before the volume is in memory: the slice alone (axial through the image loader).
      const one = plane === "axial" ? cs.loadAndCacheImage(imageId(app.studyId, ch, plane, k)) : loadPlaneImage(app.studyId, ch, plane, k);
      one.then((image) => {
        if (!image || this.k !== k || app.baseChannel() !== ch || (plane !== "axial" && getVolume(app.studyId, ch))) return;
        const fresh = !this.hasImage();
        this.requestedAt = performance.now();
        cs.displayImage(this.el, image, this.viewportFor(ch));
        if (fresh) this.fitFirst();
      }).catch((e) => window.LL.toast(`Could not load ${plane} slice ${k + 1}: ${e.message}`, "bad"));
    }
    this.shownK = k;
  }
  viewportFor(ch) {
    const voi = this.S.voi[ch];
    return voi ? { voi: { windowCenter: voi.wc, windowWidth: voi.ww } } : undefined;
  }
  redraw() { if (this.hasImage()) cs.updateImage(this.el); }
  resize() { if (this.hasImage()) cs.resize(this.el, false); }
  fit() { if (this.hasImage()) cs.fitToWindow(this.el); }
  /** A view's first image: fitted, and centred on the selected lesion if there is one. */
  fitFirst() {
    this.fit();
    const mk = this.S.selMark;
    if (mk && mk.label === this.S.selected) { const c = toPlane(this.plane, mk.centre, this.S.shape); this.centreOn(c.row, c.col); }
  }
  setVoi(wc, ww) {
    if (!this.hasImage()) return;
    const vp = cs.getViewport(this.el);
    vp.voi.windowCenter = wc; vp.voi.windowWidth = Math.max(1, ww);
    cs.setViewport(this.el, vp);
  }

  /** Image pixel scale on the canvas along x and y (differ for anisotropic pixels). */
  pixelScale(vp) {
    const sp = planeSpacing(this.plane, this.S.spacing);
    const s = Math.max(0.01, vp.scale);
    return sp.row < sp.col ? { x: s * sp.col / sp.row, y: s } : { x: s, y: s * sp.row / sp.col };
  }
  /** (row, col) in image pixels under a mouse event. */
  imagePoint(ev) {
    const p = cs.pageToPixel(this.el, ev.pageX, ev.pageY);
    return [p.y - 0.5, p.x - 0.5];
  }
  /** Pan so that image pixel (row, col) is at the centre of the element. */
  centreOn(row, col) {
    if (!this.hasImage()) return;
    const { rows, cols } = planeShape(this.plane, this.S.shape);
    const vp = cs.getViewport(this.el);
    vp.translation = { x: cols / 2 - (col + 0.5), y: rows / 2 - (row + 0.5) };
    cs.setViewport(this.el, vp);
  }

  onRendered(ev) {
    const t0 = performance.now();
    const { S, app, plane } = this;
    const { canvasContext: ctx, enabledElement, viewport } = ev.detail;
    const ch = app.baseChannel();
    if (!S.voi[ch]) S.voi[ch] = { wc: viewport.voi.windowCenter, ww: viewport.voi.windowWidth };
    const k = this.k;
    ctx.save();
    cs.setToPixelCoordinateSystem(enabledElement, ctx);
    if (S.channel === "fused") {
      const ct = S.fused.sliceCanvas(getVolume(app.studyId, "ct"), plane, k);
      // Smoothed like the MR under it (cornerstone interpolates the base image).
      if (ct) { ctx.imageSmoothingEnabled = true; ctx.globalAlpha = S.fused.blend; ctx.drawImage(ct, 0, 0); ctx.globalAlpha = 1; }
    }
    ctx.imageSmoothingEnabled = false;  // the mask voxel by voxel: what is drawn is what is saved
    const px = this.pixelScale(viewport);
    const info = S.overlay.mask ? S.overlay.sliceInfo(plane, k) : null;
    // MIP: lesions anywhere in the slab, dashed and dimmer, so a contoured lesion off this
    // slice does not look missed; the current slice's overlay goes on top.
    const slab = S.overlay.mask && S.overlay.visible && app.mipSlab ? app.mipSlab(plane, k) : null;
    if (slab) {
      const lw = 1.25 / Math.min(px.x, px.y);
      S.overlay.strokeOutline(ctx, { segments: S.overlay.slabSegments(plane, slab[0], slab[1], k) }, lw, { dash: [3 * lw, 2 * lw], alpha: 0.7 });
    }
    if (S.overlay.visible && info) {
      if (info.canvas) ctx.drawImage(info.canvas, 0, 0);
      else S.overlay.strokeOutline(ctx, info, 1.25 / Math.min(px.x, px.y));
    }
    const measure = app.measure;
    if (measure) measure.drawImage(this, ctx, px, info);
    this.drawSelection(ctx, px, k);
    if (S.layout === "3") this.drawCrosshair(ctx, px);
    this.drawCursor(ctx, px);
    ctx.restore();
    // cornerstone leaves its image transform on the context: draw the rest in canvas pixels.
    if (measure) { ctx.save(); ctx.setTransform(1, 0, 0, 1, 0, 0); measure.drawScreen(this, ctx, viewport); ctx.restore(); }
    this.record(ev, t0, k);
    this.corners(viewport, k);
  }

  drawSelection(ctx, px, k) {
    const { S } = this;
    const mk = S.selMark;
    if (!mk || mk.label !== S.selected || !S.overlay.visible) return;
    const [lo, hi] = bboxSlices(this.plane, mk.bbox);
    if (k < lo || k >= hi) return;
    // A ring around the selected lesion: a 20 mm³ lesion is a few pixels wide on screen.
    const c = toPlane(this.plane, mk.centre, S.shape);
    const sp = planeSpacing(this.plane, S.spacing);
    const rx = Math.max(mk.rMm / sp.col, 14 / px.x), ry = Math.max(mk.rMm / sp.row, 14 / px.y);
    ctx.beginPath();
    ctx.ellipse(c.col + 0.5, c.row + 0.5, rx, ry, 0, 0, Math.PI * 2);
    ctx.lineWidth = 1.5 / Math.min(px.x, px.y);
    ctx.setLineDash([4 / px.x, 3 / px.x]);
    ctx.strokeStyle = labelCss(mk.label, 0.9);
    ctx.stroke();
    ctx.setLineDash([]);
  }

  /** The other two planes through the cursor voxel, with a gap around it so a small
   * lesion under the cursor stays visible. */
  drawCrosshair(ctx, px) {
    const { S } = this;
    const { rows, cols } = planeShape(this.plane, S.shape);
    const c = toPlane(this.plane, S.pos, S.shape);
    const [hPlane, vPlane] = { axial: ["coronal", "sagittal"], coronal: ["axial", "sagittal"], sagittal: ["axial", "coronal"] }[this.plane];
    const gapX = 10 / px.x, gapY = 10 / px.y;
    const y = c.row + 0.5, x = c.col + 0.5;
    ctx.lineWidth = 1 / px.y;
    ctx.strokeStyle = PLANE_COLOURS[hPlane];
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(x - gapX, y); ctx.moveTo(x + gapX, y); ctx.lineTo(cols, y); ctx.stroke();
    ctx.lineWidth = 1 / px.x;
    ctx.strokeStyle = PLANE_COLOURS[vPlane];
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, y - gapY); ctx.moveTo(x, y + gapY); ctx.lineTo(x, rows); ctx.stroke();
  }

  drawCursor(ctx, px) {
    const { S } = this;
    const c = S.cursor;
    const painting = c && (S.tool === "brush" || S.tool === "eraser");
    const cells = painting && S.brush3d ? this.ballCells(c) : null;
    // Test hook: how many voxels the 3D brush outline encloses on this view's slice.
    const n = String(cells ? cells.length : 0);
    if (this.el.dataset.brushCells !== n) this.el.dataset.brushCells = n;
    if (!painting || (cells ? !cells.length : c.plane !== this.plane)) return;
    ctx.beginPath();
    if (cells) {
      const at = toPlane(this.plane, this.ballCentre(c), S.shape);
      for (const [r0, c0, r1, c1] of pixelOutline(cells)) {
        ctx.moveTo(at.col + c0, at.row + r0); ctx.lineTo(at.col + c1, at.row + r1);
      }
    } else {
      const [cy, cx] = c.point;
      const sp = planeSpacing(this.plane, S.spacing);
      ctx.ellipse(cx + 0.5, cy + 0.5, S.radiusMm / sp.col, S.radiusMm / sp.row, 0, 0, Math.PI * 2);
    }
    // White over a dark halo: readable over the lesion's own colour (not the lesion colour).
    for (const st of brushOutlineStrokes(S.tool)) {
      ctx.lineWidth = st.width / px.x;
      ctx.strokeStyle = st.colour;
      ctx.setLineDash(st.dash ? st.dash.map((v) => v / px.x) : []);
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }
  /** The voxel [z, y, x] the 3D brush is centred on: under the mouse, on the slice of the
   * plane under it (as MaskEditor.dabIn rounds it). */
  ballCentre(c) {
    const { S } = this;
    return fromPlane(c.plane, sliceIndex(c.plane, S.pos), Math.round(c.point[0]), Math.round(c.point[1]), S.shape);
  }
  /** In-plane offsets of the voxels the 3D brush paints on this view's slice ([] when the
   * ball does not reach it): the sphere's cross-section at this slice, in voxels. */
  ballCells(c) {
    const { S } = this;
    const key = `${S.radiusMm}|${S.spacing.join(",")}`;
    if (!ballCache || ballCache.key !== key) ballCache = { key, offsets: sphereOffsets(S.radiusMm, S.spacing) };
    const dk = this.k - sliceIndex(this.plane, this.ballCentre(c));
    return sphereSection(ballCache.offsets, this.plane, dk);
  }

  record(ev, t0, k) {
    const { S } = this;
    S.frameStats.push({ plane: this.plane, z: k, renderMs: ev.detail.renderTimeInMs, overlayMs: performance.now() - t0, latencyMs: this.requestedAt ? performance.now() - this.requestedAt : null });
    if (S.frameStats.length > 500) S.frameStats.splice(0, 250);
    this.requestedAt = null;
    this.el.dataset.slice = String(k);
    if (!this.el.dataset.firstImage) {
      this.el.dataset.firstImage = "1";
      this.app.onFirstImage(this.plane);
    }
  }

  corners(viewport, k) {
    const { S, plane } = this;
    const q = (cls) => this.el.querySelector(`.corner.${cls}`);
    const s = S.study || {};
    const chName = S.channel === "ct" ? "CT" : S.channel === "fused" ? `MR + CT ${Math.round(S.fused.blend * 100)}%` : "MR T1+C";
    const sp = planeSpacing(plane, S.spacing);
    const axis = { axial: 0, coronal: 1, sagittal: 2 }[plane];
    const where = `${"zyx"[axis]} ${this.app.axisMm(axis, k).toFixed(1)} mm`;
    if (plane === "axial") q("tl").innerHTML = `${esc(s.patient_label || "")}<br>${esc(s.description || "")}`;
    q("tr").innerHTML = `${chName}<br><span style="color:${PLANE_COLOURS[plane]}">${PLANE_NAMES[plane]}</span>${this.app.mipCaption ? this.app.mipCaption(plane, k) : ""}`;
    q("bl").innerHTML = `Slice ${k + 1}/${this.count} · ${where}<br>${sp.col.toFixed(2)}×${sp.row.toFixed(2)} mm pixels`;
    q("br").innerHTML = `W ${Math.round(viewport.voi.windowWidth)} L ${Math.round(viewport.voi.windowCenter)}<br>Zoom ${(viewport.scale * 100).toFixed(0)}%`;
  }
}
