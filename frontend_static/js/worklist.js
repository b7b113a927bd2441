/* Worklist: studies by review priority, with filters; the next study to review stands out. */
(function () {
  "use strict";
  const { esc, fmtDate, fmtNum, userName, statusBadge } = LL;
  // One unit throughout: mm³ (the column header says so), never switching to cm³.
  const mm3 = (v) => (v == null ? "—" : Number(v).toFixed(Number(v) < 10 ? 1 : 0));
  const REVIEWABLE = new Set(["ready", "in_review"]);
  const tbody = document.querySelector("#worklist tbody");
  const fSearch = document.getElementById("f-search");
  const fStatus = document.getElementById("f-status");
  const fOrdering = document.getElementById("f-ordering");
  const params = new URLSearchParams(location.search);
  fSearch.value = params.get("search") || "";
  fStatus.value = params.get("status") || "";
  fOrdering.value = params.get("ordering") || "-priority";

  function leaseHeldByOther(s) {
    return s.lease && userName(s.lease.user) && userName(s.lease.user) !== LL.me.username;
  }

  /** The study to review next: the highest-priority reviewable study nobody else holds. */
  function pickNext(rows) {
    const cands = rows.filter((s) => REVIEWABLE.has(s.status) && !leaseHeldByOther(s));
    cands.sort((a, b) => (Number(b.priority) || 0) - (Number(a.priority) || 0));
    return cands[0] || null;
  }

  function leaseCell(s) {
    if (!s.lease) return '<span class="muted">—</span>';
    const who = userName(s.lease.user);
    const mine = who === LL.me.username;
    return `<span class="lease ${mine ? "mine" : "other"}" title="until ${esc(fmtDate(s.lease.expires_at, true))}">${mine ? "you" : esc(who)}</span>`;
  }

  function priorityCell(p) {
    if (p == null) return '<span class="muted">—</span>';
    const v = Math.max(0, Math.min(1, Number(p)));
    return `<span class="prio"><span class="bar" style="width:${(v * 100).toFixed(0)}%"></span></span> <span class="num">${fmtNum(p, 2)}</span>`;
  }

  function render(rows, count) {
    document.getElementById("count").textContent = `${count} stud${count === 1 ? "y" : "ies"}`;
    const next = pickNext(rows);
    const box = document.getElementById("next-box");
    if (next && LL.me.canReview) {
      box.hidden = false;
      document.getElementById("next-label").textContent = `${next.patient_label || "Study " + next.id} · ${next.description || ""}`;
      document.getElementById("review-next").href = `/studies/${next.id}/`;
    } else {
      box.hidden = true;
    }
    if (!rows.length) {
      tbody.innerHTML = '<tr><td colspan="10" class="muted empty">No studies match.</td></tr>';
      return;
    }
    tbody.innerHTML = rows.map((s) => {
      const isNext = next && s.id === next.id;
      const model = s.model_version ? `<a href="${LL.me.canAudit ? "/audit/models/" + s.model_version.id + "/" : "/models/"}">${esc(s.model_version.name)}</a>` : '<span class="muted">—</span>';
      const reason = s.status === "failed" && s.status_reason ? `<div class="reason">${esc(s.status_reason)}</div>` : "";
      const reg = s.registration_ok === false ? ` <span class="badge warn" title="${esc(s.registration_message || "MR–CT registration needs checking")}">check registration</span>` : "";
      return `<tr class="${isNext ? "next" : ""}" data-id="${s.id}">
        <td class="num">${priorityCell(s.priority)}</td>
        <td><a class="patient" href="/studies/${s.id}/">${esc(s.patient_label || "—")}</a></td>
        <td>${esc(s.description || "")}</td>
        <td>${statusBadge(s.status)}${reg}${reason}</td>
        <td class="num">${s.lesion_count == null ? "—" : s.lesion_count}</td>
        <td class="num">${mm3(s.smallest_lesion_mm3)}</td>
        <td>${model}</td>
        <td>${leaseCell(s)}</td>
        <td class="nowrap">${fmtDate(s.created_at)}</td>
        <td class="nowrap">${isNext ? '<span class="tag-next">next</span> ' : ""}<a class="button small" href="/studies/${s.id}/">Open</a></td>
      </tr>`;
    }).join("");
  }

  let inflight = 0;
  async function load() {
    const q = new URLSearchParams();
    if (fSearch.value.trim()) q.set("search", fSearch.value.trim());
    if (fStatus.value) q.set("status", fStatus.value);
    q.set("ordering", fOrdering.value);
    history.replaceState(null, "", "?" + q.toString());
    document.querySelectorAll("th.sortable").forEach((th) => th.classList.toggle("sorted", th.dataset.order === fOrdering.value));
    const ticket = ++inflight;
    try {
      // Up to a few pages (50 studies each); the count says when there are more.
      let data = await LL.get(LL.urls.studies(q.toString()));
      let rows = Array.isArray(data) ? data : data.results || [];
      const count = Array.isArray(data) ? rows.length : data.count;
      for (let page = 1; !Array.isArray(data) && data.next && page < 6; page++) {
        data = await LL.get(data.next);
        rows = rows.concat(data.results || []);
      }
      if (ticket !== inflight) return;
      render(rows, count);
      if (rows.length < count) document.getElementById("count").textContent = `${rows.length} of ${count} studies shown (narrow the filter)`;
    } catch (e) {
      tbody.innerHTML = `<tr><td colspan="10" class="error">Could not load the worklist: ${esc(e.message)}</td></tr>`;
    }
  }

  let debounce = null;
  fSearch.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(load, 250); });
  fStatus.addEventListener("change", load);
  fOrdering.addEventListener("change", load);
  document.querySelectorAll("th.sortable").forEach((th) => th.addEventListener("click", () => {
    fOrdering.value = th.dataset.order; load();
  }));
  load();
  setInterval(() => { if (!document.hidden) load(); }, 15000);
})();
