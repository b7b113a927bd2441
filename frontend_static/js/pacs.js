/* Worklist: "Fetch from PACS" for clinicians and admins. Choose a node that can be
   queried, search it by Patient ID or Accession Number (C-FIND), retrieve a study
   (C-MOVE to our listener) and watch the retrieve (GET /api/pacs/retrieves/{id}/). */
(function () {
  "use strict";
  const { esc } = LL;
  const openBtn = document.getElementById("pacs-open");
  const dialog = document.getElementById("pacs-dialog");
  if (!openBtn || !dialog) return;
  if (!LL.me.canReview) { openBtn.hidden = true; return; }
  openBtn.hidden = false;
  const nodeSel = document.getElementById("pacs-node");
  const patient = document.getElementById("pacs-patient");
  const accession = document.getElementById("pacs-accession");
  const results = document.querySelector("#pacs-results tbody");
  const stateEl = document.getElementById("pacs-state");
  const retrievesEl = document.getElementById("pacs-retrieves");
  const BUSY = new Set(["queued", "running"]);
  const watched = new Map(); // retrieve id -> last seen retrieve
  let found = [];
  let timer = null;

  function fmtDicomDate(d) {
    return /^\d{8}$/.test(d || "") ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6)}` : esc(d || "");
  }

  async function loadNodes() {
    const nodes = (await LL.get(LL.urls.pacsNodes())).filter((n) => n.enabled && n.can_query);
    nodeSel.innerHTML = nodes.length
      ? nodes.map((n) => `<option value="${n.id}">${esc(n.name)} (${esc(n.ae_title)})</option>`).join("")
      : '<option value="">no node can be queried</option>';
    document.getElementById("pacs-search").disabled = !nodes.length;
  }

  function renderResults() {
    if (!found.length) {
      results.innerHTML = '<tr><td colspan="6" class="muted">No studies found.</td></tr>';
      return;
    }
    results.innerHTML = found.map((f, i) => `<tr data-uid="${esc(f.StudyInstanceUID)}">
      <td>${esc(f.PatientName || "")}<div class="muted small">${esc(f.PatientID)}</div></td>
      <td>${fmtDicomDate(f.StudyDate)}</td>
      <td>${esc(f.StudyDescription || "")}<div class="muted small">${esc(f.AccessionNumber || "")}</div></td>
      <td>${esc((f.ModalitiesInStudy || "").replace(/\\/g, ", "))}</td>
      <td class="num">${esc(f.NumberOfStudyRelatedInstances || "")}</td>
      <td><button class="small pacs-retrieve" data-index="${i}">Retrieve</button></td></tr>`).join("");
  }

  async function search() {
    const query = { patient_id: patient.value.trim(), accession_number: accession.value.trim() };
    if (!query.patient_id && !query.accession_number) {
      stateEl.textContent = "Enter a Patient ID or an Accession Number.";
      return;
    }
    stateEl.textContent = "Searching…";
    results.innerHTML = "";
    try {
      found = await LL.post(LL.urls.pacsFind(nodeSel.value), query);
      stateEl.textContent = `${found.length} stud${found.length === 1 ? "y" : "ies"} found.`;
      renderResults();
    } catch (err) {
      found = [];
      stateEl.textContent = `Search failed: ${err.message}`;
    }
  }

  function renderRetrieves() {
    retrievesEl.innerHTML = [...watched.values()].map((r) => {
      const done = (r.studies || []).map((s) => `${s.completed || 0} received${s.failed ? `, ${s.failed} failed` : ""}`).join("; ");
      const error = r.error ? `<div class="reason">${esc(r.error)}</div>` : "";
      const next = r.status === "done" ? ' <span class="muted">— the study appears in the worklist once received and ingested</span>' : "";
      return `<li data-id="${r.id}" data-status="${esc(r.status)}">${LL.statusBadge(r.status)} Retrieve ${r.id}
        <span class="mono small">${esc(r.study_instance_uid || r.patient_id || r.accession_number)}</span>
        <span class="muted">${esc(done)}</span>${next}${error}</li>`;
    }).join("");
  }

  async function poll() {
    clearTimeout(timer);
    const busy = [...watched.values()].filter((r) => BUSY.has(r.status));
    for (const r of busy) {
      try {
        watched.set(r.id, await LL.get(LL.urls.pacsRetrieval(r.id)));
      } catch (err) { /* keep the last state; try again */ }
    }
    renderRetrieves();
    if ([...watched.values()].some((r) => BUSY.has(r.status))) timer = setTimeout(poll, 1500);
  }

  async function retrieve(index, btn) {
    const f = found[index];
    btn.disabled = true;
    try {
      const r = await LL.post(LL.urls.pacsRetrieve(nodeSel.value), { study_instance_uid: f.StudyInstanceUID });
      watched.set(r.id, r);
      btn.textContent = "Queued";
      poll();
    } catch (err) {
      btn.disabled = false;
      LL.toast(`Retrieve refused: ${err.message}`, "error", 6000);
    }
  }

  openBtn.addEventListener("click", async () => {
    dialog.showModal();
    try {
      await loadNodes();
    } catch (err) {
      stateEl.textContent = `Nodes could not be loaded: ${err.message}`;
    }
    patient.focus();
  });
  document.getElementById("pacs-form").addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
  document.getElementById("pacs-close").addEventListener("click", () => dialog.close());
  results.addEventListener("click", (ev) => {
    const btn = ev.target.closest(".pacs-retrieve");
    if (btn) retrieve(Number(btn.dataset.index), btn);
  });
  window.addEventListener("pagehide", () => clearTimeout(timer));
  window.LLPacs = { poll, stop: () => clearTimeout(timer) };
})();
