/* Tiny inline-SVG line charts (no chart library): metrics across versions, loss curves. */
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, text) {
    const n = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    if (text != null) n.textContent = text;
    return n;
  }
  function niceMax(v) { if (!(v > 0)) return 1; const p = Math.pow(10, Math.floor(Math.log10(v))); return Math.ceil(v / p) * p; }

  /** series: [{name, color, values: [number|null], axis: "left"|"right"}]; labels: x tick labels. */
  function lineChart(container, { labels, series, width = 560, height = 200, leftMax = 1, leftMin = 0, rightMax = null, leftLabel = "", rightLabel = "", logLeft = false }) {
    const m = { l: 38, r: rightMax != null ? 38 : 10, t: 10, b: 24 };
    const w = width - m.l - m.r, h = height - m.t - m.b;
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
    const n = labels.length;
    const x = (i) => m.l + (n <= 1 ? w / 2 : (i * w) / (n - 1));
    const span = leftMax - leftMin || 1;
    const yl = (v) => m.t + h - ((Math.max(leftMin, Math.min(leftMax, v)) - leftMin) / span) * h;
    const yr = (v) => m.t + h - (Math.max(0, Math.min(rightMax, v)) / rightMax) * h;
    for (let k = 0; k <= 4; k++) {
      const yy = m.t + (h * k) / 4;
      svg.appendChild(el("line", { x1: m.l, x2: m.l + w, y1: yy, y2: yy, class: "gridline" }));
      svg.appendChild(el("text", { x: m.l - 4, y: yy + 3, "text-anchor": "end" }, fmt(leftMin + span * (1 - k / 4))));
      if (rightMax != null) svg.appendChild(el("text", { x: m.l + w + 4, y: yy + 3 }, fmt(rightMax * (1 - k / 4))));
    }
    svg.appendChild(el("line", { x1: m.l, x2: m.l + w, y1: m.t + h, y2: m.t + h, class: "axis" }));
    const every = Math.max(1, Math.ceil(n / 10));
    labels.forEach((lab, i) => { if (i % every === 0 || i === n - 1) svg.appendChild(el("text", { x: x(i), y: height - 6, "text-anchor": "middle" }, lab)); });
    if (leftLabel) svg.appendChild(el("text", { x: 2, y: m.t + 2, "dominant-baseline": "hanging" }, ""));
    for (const s of series) {
      const y = s.axis === "right" ? yr : yl;
      let d = ""; let pen = false;
      s.values.forEach((v, i) => {
        if (v == null || Number.isNaN(v)) { pen = false; return; }
        d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`; pen = true;
      });
      if (d) svg.appendChild(el("path", { d, fill: "none", stroke: s.color, "stroke-width": 2, "stroke-dasharray": s.dash || "" }));
      if (s.dots !== false) s.values.forEach((v, i) => {
        if (v == null || Number.isNaN(v)) return;
        const c = el("circle", { cx: x(i), cy: y(v), r: 3, fill: s.color });
        c.appendChild(el("title", {}, `${s.name} · ${labels[i]}: ${fmt(v)}`));
        svg.appendChild(c);
      });
    }
    container.innerHTML = "";
    container.appendChild(svg);
    return svg;
  }
  function fmt(v) { if (v == null) return ""; const a = Math.abs(v); return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2); }

  window.LLCharts = { lineChart, niceMax };
})();
