/* One undo/redo history for the review: mask edits (the MaskEditor's own changes) and
 * lesion decisions, in the order the clinician made them. Undoing a decision sends the
 * previous one to the server (a kept lesion is sent as "accepted", which the server maps
 * back to accepted / edited / added by its contour). A rejected lesion's contour is frozen
 * on the server, so undoing an edit that erased a lesion (which rejected it) first puts
 * the lesion's decision back as it was before the edit. */

const KEPT = new Set(["accepted", "edited", "added"]);
/** What to send to restore `decision`. */
export function requestFor(decision) { return KEPT.has(decision) ? "accepted" : decision || "pending"; }

/** Labels an editor change would paint (non-zero values) when applied in `direction`. */
function paintedLabels(ch, direction) {
  const values = direction === "undo" ? ch.old : ch.neu;
  const out = new Set();
  for (const v of values) if (v) out.add(v);
  return out;
}

export class ReviewHistory {
  /** editor: LLTools.MaskEditor; lesions(): the current lesion rows (label, id,
   * decision); decide(lesion, decision): the server round trip, resolves when stored;
   * save(): saves unsaved edits, resolves true when saved (a decision never goes to the
   * server on top of unsaved edits). */
  constructor({ editor, lesions, decide, save }) {
    this.editor = editor; this.lesions = lesions; this.decide = decide; this.save = save;
    this.undoStack = []; this.redoStack = [];
  }

  /** Start again from the editor's unsaved edits (after the study changed elsewhere):
   * earlier decisions can no longer be undone from here. */
  reseed() {
    const before = this._decisions();
    this.undoStack = this.editor.undoStack.map((ch) => ({ kind: "mask", ch, before }));
    this.redoStack = [];
    this.editor.dropRedo();
  }

  _decisions() { return new Map(this.lesions().map((l) => [l.label, l.decision || "pending"])); }

  /** After the editor recorded a new change (onChange "do"). */
  recordEdit(ch) {
    this.undoStack.push({ kind: "mask", ch, before: this._decisions() });
    this.redoStack = [];
  }
  /** After a decision was stored on the server. */
  recordDecision(lesion, from, to) {
    this.undoStack.push({ kind: "decision", label: lesion.label, id: lesion.id, from, to });
    this.redoStack = [];
    this.editor.dropRedo();
  }

  get canUndo() { return this.undoStack.length > 0; }
  get canRedo() { return this.redoStack.length > 0; }

  async undo() { return this._step(this.undoStack, this.redoStack, "undo"); }
  async redo() { return this._step(this.redoStack, this.undoStack, "redo"); }

  async _step(from, to, direction) {
    const entry = from[from.length - 1];
    if (!entry || this.busy) return null;
    this.busy = true;
    try {
      if (entry.kind === "decision") {
        const lesion = this.lesions().find((l) => l.label === entry.label);
        if (!lesion) throw new Error(`lesion ${entry.label} is gone`);
        if (this.editor.dirty && !(await this.save())) return null;
        await this.decide(lesion, requestFor(direction === "undo" ? entry.from : entry.to));
      } else {
        await this._restoreDecisions(entry, direction);
        if (direction === "undo") this.editor.undo(); else this.editor.redo();
        await this._rejectErased(entry);
      }
      from.pop(); to.push(entry);
      return entry;
    } finally { this.busy = false; }
  }

  /** Back at the saved mask with a lesion erased whole (redo of a saved delete): the
   * server rejected it when that delete was saved, so it is rejected again here. */
  async _rejectErased(entry) {
    if (this.editor.dirty) return;
    for (const lesion of this.lesions()) {
      if (KEPT.has(lesion.decision) && entry.ch.old.includes(lesion.label) && !this.editor.counts.get(lesion.label)) {
        await this.decide(lesion, "rejected");
      }
    }
  }

  /** A rejected lesion cannot be painted: put back the decision it had before the edit. */
  async _restoreDecisions(entry, direction) {
    const now = this._decisions();
    for (const label of paintedLabels(entry.ch, direction)) {
      if (now.get(label) !== "rejected") continue;
      const before = entry.before.get(label);
      if (!before || before === "rejected") throw new Error(`lesion ${label} is rejected: accept it first`);
      const lesion = this.lesions().find((l) => l.label === label);
      if (lesion) await this.decide(lesion, requestFor(before));
    }
  }
}
