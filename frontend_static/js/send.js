/* Case page: send the approved contours to a treatment planning system (DICOM C-STORE),
   and the sends of this study with their status; failed ones can be retried.
   The study's status is polled (GET /api/studies/{id}/) so the control appears once the
   study is approved, independently of the case modules (js/case/). */
(function () {
  "use strict";
  const { esc, fmtDate, statusBadge } = LL;
  const root = document.getElementById("case");
  const box = document.getElementById("send-box");
  if (!root || !box) return;
  const studyId = root.dataset.study;
  const nodeSel = document.getElementById("send-node");
  const sendBtn = document.getElementById("send-go");
  const list = document.getElementById("send-list");
  const controls = document.getElementById("send-controls");
  const BUSY = new Set(["queued", "sending"]);
  let approved = false;
  let nodesLoaded = false;
  let timer = null;

  function formats() {
    return [...box.querySelectorAll("input[name=send-format]:checked")].map((el) => el.value);
  }

  async function loadNodes() {
    const nodes = (await LL.get(LL.urls.pacsNodes())).filter((n) => n.enabled && n.can_store);
    nodeSel.innerHTML = nodes.length
      ? nodes.map((n) => `<option value="${n.id}">${esc(n.name)} (${esc(n.ae_title)})</option>`).join("")
      : '<option value="">no node accepts contours</option>';
    sendBtn.disabled = !nodes.length;
    nodesLoaded = true;
  }

  function row(s) {
    const remote = s.remote_status ? `<span class="mono">${esc(s.remote_status)}</span>` : "";
    const error = s.error ? `<div class="reason">${esc(s.error)}</div>` : "";
    const retry = s.status === "failed" && LL.me.canReview
      ? ` <button class="small send-retry" data-id="${s.id}">Retry</button>` : "";
    const auto = s.automatic ? ' <span class="muted" title="sent on approval">auto</span>' : "";
    return `<li data-id="${s.id}" data-status="${esc(s.status)}">
      ${statusBadge(s.status)} <strong>${esc(s.format.toUpperCase())}</strong> → ${esc(s.node_name)}${auto}
      <span class="muted">rev ${s.revision} · ${esc(fmtDate(s.updated_at, true))}</span> ${remote}${retry}${error}</li>`;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const study = await LL.get(LL.urls.study(studyId));
      approved = study.status === "approved";
      const sends = await LL.get(LL.urls.sends(studyId));
      box.hidden = !approved && !sends.length;
      controls.hidden = !(approved && LL.me.canReview);
      if (!controls.hidden && !nodesLoaded) await loadNodes();
      list.innerHTML = sends.length ? sends.map(row).join("") : '<li class="muted">Not sent yet.</li>';
      const busy = sends.some((s) => BUSY.has(s.status));
      timer = setTimeout(refresh, busy ? 2000 : approved ? 15000 : 5000);
    } catch (err) {
      timer = setTimeout(refresh, 10000);
    }
  }

  sendBtn.addEventListener("click", async () => {
    const chosen = formats();
    if (!nodeSel.value || !chosen.length) {
      LL.toast("Choose a node and at least one format.", "warn");
      return;
    }
    sendBtn.disabled = true;
    try {
      await LL.post(LL.urls.send(studyId), { node: Number(nodeSel.value), formats: chosen });
      LL.toast("Send queued.", "ok");
    } catch (err) {
      LL.toast(err.message || "The send was refused.", "error", 6000);
    } finally {
      sendBtn.disabled = false;
      refresh();
    }
  });

  list.addEventListener("click", async (ev) => {
    const btn = ev.target.closest(".send-retry");
    if (!btn) return;
    btn.disabled = true;
    try {
      await LL.post(LL.urls.sendRetry(studyId, btn.dataset.id));
    } catch (err) {
      LL.toast(err.message || "The retry was refused.", "error", 6000);
    }
    refresh();
  });

  // review.js announces an approval (ll:study-approved); polling finds it anyway
  document.addEventListener("ll:study-approved", refresh);
  window.addEventListener("pagehide", () => clearTimeout(timer));
  window.LLSend = { refresh, stop: () => clearTimeout(timer) };
  refresh();
})();
