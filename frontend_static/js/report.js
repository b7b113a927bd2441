/* Ingest notes on the case page: what ingest ignored, repaired or doubts (the study's
 * report.rows: {kind, severity, message, files, series}), as a readable list with the
 * files or series each concerns. An ES module on its own: it reads the study the page
 * embedded (#case-initial) or asks GET /api/studies/{id}/, and touches only its own
 * container (#ingest-notes). All text goes in through textContent, never as HTML. */

const MAX_FILES = 5;
const ORDER = { warning: 0, info: 1 };

/** The rows of a report; reports stored before rows existed give theirs from
 * ``ignored`` and ``warnings``. */
export function reportRows(report) {
  if (!report) return [];
  if (Array.isArray(report.rows)) return report.rows;
  const rows = [];
  for (const r of report.ignored || []) {
    if (!r || typeof r !== "object") continue;
    const what = r.series_description || r.file || r.example_file || "";
    rows.push({
      kind: r.code || "ignored", severity: "info", message: `ignored ${what}: ${r.reason || ""}`,
      files: [r.file || r.example_file].filter(Boolean), series: r.series_uid || null,
    });
  }
  for (const w of report.warnings || []) {
    rows.push({ kind: "warning", severity: "warning", message: String(w), files: [], series: null });
  }
  return rows;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function severityOf(row) {
  return row && row.severity === "info" ? "info" : "warning";
}

/** One row: severity badge, the message, then the files (the first few, with a count of
 * the rest, all of them in the tooltip) and the series. */
function rowItem(row) {
  const severity = severityOf(row);
  const li = el("li", `ingest-note ${severity}`);
  li.dataset.kind = String(row.kind || "");
  li.dataset.severity = severity;
  li.append(el("span", severity === "warning" ? "badge warn" : "badge", severity), " ");
  li.append(el("span", "message", row.message || row.kind || ""));
  const files = Array.isArray(row.files) ? row.files.map(String) : [];
  if (files.length) {
    const shown = files.slice(0, MAX_FILES).join(", ");
    const more = files.length > MAX_FILES ? ` and ${files.length - MAX_FILES} more` : "";
    const p = el("div", "files small muted", `${files.length === 1 ? "File" : "Files"}: ${shown}${more}`);
    p.title = files.join("\n");
    li.append(p);
  }
  if (row.series) li.append(el("div", "series small muted", `Series ${row.series}`));
  return li;
}

/** Render ``rows`` into ``root`` (a <details>): warnings first; open when there is a
 * warning, collapsed when there are only notes or none. */
export function renderIngestNotes(root, rows) {
  const list = (Array.isArray(rows) ? rows : []).filter((r) => r && typeof r === "object");
  list.sort((a, b) => ORDER[severityOf(a)] - ORDER[severityOf(b)]);
  const warnings = list.filter((r) => severityOf(r) === "warning").length;
  root.replaceChildren();
  const summary = el("summary", "group-title", "Ingest notes");
  const count = list.length
    ? ` (${list.length}${warnings ? `, ${warnings} warning${warnings > 1 ? "s" : ""}` : ""})`
    : " (none)";
  summary.append(el("span", "muted", count));
  root.append(summary);
  if (list.length) {
    const ol = el("ol", "ingest-note-list");
    for (const row of list) ol.append(rowItem(row));
    root.append(ol);
  } else {
    root.append(el("p", "small muted", "Ingest ignored, repaired and doubted nothing."));
  }
  root.open = warnings > 0;
  root.dataset.count = String(list.length);
  root.hidden = false;
}

function embeddedStudy() {
  const node = document.getElementById("case-initial");
  if (!node) return null;
  try {
    const data = JSON.parse(node.textContent);
    return data && data.study ? data.study : null;
  } catch (e) {
    return null;
  }
}

async function start() {
  const root = document.getElementById("ingest-notes");
  const page = document.getElementById("case");
  if (!root || !page) return;
  let study = embeddedStudy();
  if (!study || !study.report) {
    try {
      study = await window.LL.get(`/api/studies/${encodeURIComponent(page.dataset.study)}/`);
    } catch (e) {
      return; // the viewer reports the study's own load errors
    }
  }
  renderIngestNotes(root, reportRows(study && study.report));
}

start();
