/* LesionLoop API client and small page helpers shared by every page (IIFE, global `LL`). */
(function () {
  "use strict";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) return meta.content;
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
      this.code = this.body.code || String(status);
    }
  }

  async function parseError(resp) {
    let body = null;
    try { body = await resp.json(); } catch (e) { body = { detail: resp.statusText || `HTTP ${resp.status}` }; }
    if (resp.status === 401 || (resp.status === 403 && body && /credentials|authenticat/i.test(body.detail || ""))) {
      // The session has ended: back to the login page, then here again.
      window.location.href = "/accounts/login/?next=" + encodeURIComponent(location.pathname + location.search);
    }
    return new ApiError(resp.status, body);
  }

  // Sent with every API request of this page (e.g. the tab's X-Lease-Client).
  const defaultHeaders = {};
  function setHeader(name, value) { defaultHeaders[name] = value; }

  async function request(method, url, { json, body, headers = {}, keepalive = false } = {}) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...defaultHeaders, ...headers }, keepalive };
    if (method !== "GET" && method !== "HEAD") init.headers["X-CSRFToken"] = csrfToken();
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
    }
    const resp = await fetch(url, init);
    if (!resp.ok) throw await parseError(resp);
    if (resp.status === 204) return null;
    const type = resp.headers.get("Content-Type") || "";
    return type.includes("json") ? resp.json() : resp.text();
  }

  /** Every page of a paginated list (DRF `{count, next, results}`) or a plain list. */
  async function getAll(url, maxPages = 20) {
    let out = [];
    let next = url;
    for (let i = 0; next && i < maxPages; i++) {
      const data = await request("GET", next);
      if (Array.isArray(data)) return data;
      out = out.concat(data.results || []);
      next = data.next;
    }
    return out;
  }

  /** Binary GET; the browser undoes Content-Encoding: gzip by itself. */
  async function getBinary(url) {
    const resp = await fetch(url, { credentials: "same-origin" });
    if (!resp.ok) throw await parseError(resp);
    const buf = await resp.arrayBuffer();
    return { buffer: buf, headers: resp.headers };
  }

  async function gzip(typedArray) {
    // Masks: the sparse encoder (gzip.js) once it has proved itself on this browser.
    if (window.LLGzip && (await window.LLGzip.selfTest())) return window.LLGzip.encode(typedArray);
    if (typeof CompressionStream === "undefined") return null;
    const stream = new Blob([typedArray]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Response(stream).arrayBuffer();
  }

  // ---- every API URL the pages call, in one place (docs/API.md) -------------------
  const urls = {
    studies: (query = "") => "/api/studies/" + (query ? "?" + query : ""),
    study: (id) => `/api/studies/${id}/`,
    lesions: (id) => `/api/studies/${id}/lesions/?ordering=volume_mm3`,
    lesion: (id, lesionId) => `/api/studies/${id}/lesions/${lesionId}/`,
    mask: (id) => `/api/studies/${id}/mask/`,
    proposeLesion: (id) => `/api/studies/${id}/propose-lesion/`,
    rulers: (id) => `/api/studies/${id}/rulers/`,
    ruler: (id, rulerId) => `/api/studies/${id}/rulers/${rulerId}/`,
    volume: (id, channel, slice = null, plane = "axial") => `/api/studies/${id}/volume/${channel}/` +
      (slice == null ? "" : `?slice=${slice}`) + (slice != null && plane !== "axial" ? `&plane=${plane}` : ""),
    lease: (id) => `/api/studies/${id}/lease/`,
    approve: (id) => `/api/studies/${id}/approve/`,
    reopen: (id) => `/api/studies/${id}/reopen/`,
    exportFile: (id, format) => `/api/studies/${id}/export/${format}`,
    timeline: (id) => `/api/studies/${id}/timeline/`,
    sends: (id) => `/api/studies/${id}/sends/`,
    send: (id) => `/api/studies/${id}/send/`,
    sendRetry: (id, sendId) => `/api/studies/${id}/sends/${sendId}/retry/`,
    pacsNodes: () => "/api/pacs/nodes/",
    pacsFind: (nodeId) => `/api/pacs/nodes/${nodeId}/find/`,
    pacsRetrieve: (nodeId) => `/api/pacs/nodes/${nodeId}/retrieve/`,
    pacsRetrieval: (id) => `/api/pacs/retrieves/${id}/`,
    models: () => "/api/models/",
    modelPromote: (id) => `/api/models/${id}/promote/`,
    modelRollback: (id) => `/api/models/${id}/rollback/`,
    modelLineage: (id) => `/api/models/${id}/lineage/`,
    trainingRuns: () => "/api/training-runs/",
    trainingRunCancel: (id) => `/api/training-runs/${id}/cancel/`,
    trainingEstimate: () => "/api/training-runs/estimate/",
    audit: (query = "") => "/api/audit/" + (query ? "?" + query : ""),
  };

  /** The case page's calls for one study. putMask resolves to the raw Response (the
   * caller reads a 409 stale_revision body itself). */
  function studyApi(id) {
    return {
      detail: () => request("GET", urls.study(id)),
      lesions: async () => {
        const data = await request("GET", urls.lesions(id));
        return Array.isArray(data) ? data : (data && data.results) || [];
      },
      decide: (lesionId, decision) => request("PATCH", urls.lesion(id, lesionId), { json: { decision } }),
      mask: () => getBinary(urls.mask(id)),
      putMask: (body, headers) => fetch(urls.mask(id), {
        method: "PUT", credentials: "same-origin", body,
        headers: { ...defaultHeaders, ...headers, "X-CSRFToken": csrfToken(), Accept: "application/json" },
      }),
      volume: (channel, slice = null) => getBinary(urls.volume(id, channel, slice)),
      approve: (body) => request("POST", urls.approve(id), { json: body }),
      reopen: () => request("POST", urls.reopen(id), { json: {} }),
      // The user's rulers on the study (one per plane; saving one replaces that plane's).
      rulers: async () => { const data = await request("GET", urls.rulers(id)); return Array.isArray(data) ? data : []; },
      saveRuler: (body) => request("POST", urls.rulers(id), { json: body }),
      deleteRuler: (rulerId) => request("DELETE", urls.ruler(id, rulerId)),
      clearRulers: () => request("DELETE", urls.rulers(id)),
      exportUrl: (format) => urls.exportFile(id, format),
      leaseUrl: urls.lease(id),
    };
  }

  // ---- formatting ----------------------------------------------------------------
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  }
  function fmtNum(v, digits = 1) {
    if (v == null || v === "" || Number.isNaN(Number(v))) return "—";
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  }
  /** A volume in mm³, always (never switching to cm³: a 900 and a 1.2 read wrongly side
   * by side); one decimal under 10 mm³. `unit: false` leaves the unit to a column header. */
  function fmtVol(mm3, { unit = true } = {}) {
    if (mm3 == null || mm3 === "" || Number.isNaN(Number(mm3))) return "—";
    const v = Number(mm3);
    const text = v.toLocaleString("en-US", { maximumFractionDigits: v < 10 ? 1 : 0, minimumFractionDigits: v < 10 ? 1 : 0 });
    return unit ? `${text} mm³` : text;
  }
  function fmtDate(iso, withSeconds = false) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return esc(iso);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}` + (withSeconds ? `:${p(d.getSeconds())}` : "");
  }
  function fmtAgo(iso) {
    if (!iso) return "";
    const s = (Date.now() - new Date(iso).getTime()) / 1000;
    if (s < 60) return "just now";
    if (s < 3600) return Math.round(s / 60) + " min ago";
    if (s < 86400) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function userName(u) {
    if (u == null) return "";
    if (typeof u === "string") return u;
    return u.username || u.name || String(u.id || "");
  }
  function statusBadge(status) {
    const s = status || "unknown";
    return `<span class="badge st-${esc(s)}">${esc(s.replace(/_/g, " "))}</span>`;
  }

  let toastTimer = null;
  function toast(message, kind = "info", ms = 4000) {
    const el = document.getElementById("toast");
    if (!el) return;
    el.textContent = message;
    el.className = "toast " + kind;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, ms);
  }

  const body = document.body.dataset;
  const me = {
    username: body.user || "",
    roles: (body.roles || "").split(",").filter(Boolean),
    canReview: body.canReview === "1",
    canManage: body.canManage === "1",
    canAudit: body.canAudit === "1",
  };

  window.LL = {
    ApiError, request, getAll, getBinary, gzip, csrfToken, setHeader, headers: () => ({ ...defaultHeaders }), urls, studyApi,
    get: (u) => request("GET", u),
    post: (u, json) => request("POST", u, { json: json === undefined ? {} : json }),
    patch: (u, json) => request("PATCH", u, { json }),
    del: (u, opts) => request("DELETE", u, opts),
    esc, fmtNum, fmtVol, fmtDate, fmtAgo, userName, statusBadge, toast, me,
  };
})();
