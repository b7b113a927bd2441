/* The review lease of one tab: LeaseKeeper (the protocol) and installLease (what the
 * case page shows and does when the lease comes or goes).
 *
 * The review lease of one tab. Each tab is its own client session (X-Lease-Client on
 * every request), so another tab of the same user is another editor and closing it never
 * ends the lease of the tab still in use. While held the lease is renewed; a poll every
 * few seconds notices when it went elsewhere (taken over in another tab, or expired and
 * taken by someone else) so the tab turns read-only at once (tabs of one browser also tell
 * each other over a BroadcastChannel, which makes it immediate); a lost lease is retaken
 * only when the clinician asks. */

const LL = window.LL;

export function newClientId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "tab-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class LeaseKeeper {
  /** wanted(): whether this tab should hold the lease now (role, study not approved).
   * onChange(state, previous): after every change of `state`. */
  constructor({ studyId, leaseSeconds, pollMs = 2500, wanted, onChange }) {
    this.url = LL.urls.lease(studyId);
    this.clientId = newClientId();
    this.renewMs = Math.max(5, leaseSeconds / 3) * 1000;
    this.pollMs = pollMs;
    this.wanted = wanted || (() => true);
    this.onChange = onChange || (() => {});
    // mine: this tab holds it; holder: who does; yours: the holder is this user (any tab);
    // lost: this tab held it and it went elsewhere (cleared by a retake).
    this.state = { mine: false, holder: null, yours: false, lost: false, error: null, revision: null, expiresAt: null };
    this.timers = [];
    LL.setHeader("X-Lease-Client", this.clientId);
    this._watchActivity();
    // Tabs of this browser tell each other at once when they take or give back a lease,
    // so a tab taken over turns read-only now, not at its next poll.
    this.studyId = String(studyId);
    this.channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("lesionloop-lease") : null;
    if (this.channel) {
      this.channel.onmessage = (ev) => {
        const m = ev.data || {};
        if (m.study === this.studyId && m.client !== this.clientId) this.poll();
      };
    }
  }

  /** Review time (docs/PLATFORM.md): each renewal says whether the user did anything
   * since the previous one, and activity renews early (at most every 10 s) so the
   * server can count the time between renewals, capped per gap. */
  _watchActivity() {
    this.activeSinceRenew = false;
    this.lastTake = 0;
    const mark = () => {
      this.activeSinceRenew = true;
      if (this.state.mine && Date.now() - this.lastTake > 10000) this.take();
    };
    for (const type of ["pointerdown", "pointermove", "keydown", "wheel"]) {
      window.addEventListener(type, mark, { passive: true, capture: true });
    }
  }

  _announce() {
    if (this.channel) this.channel.postMessage({ study: this.studyId, client: this.clientId });
  }

  _set(patch) {
    const previous = this.state;
    this.state = { ...previous, ...patch };
    const keys = ["mine", "holder", "yours", "lost", "error", "revision", "status"];
    if (keys.some((k) => previous[k] !== this.state[k])) this.onChange(this.state, previous);
  }

  /** Take or renew; takeOver moves this user's lease from another tab to this one. */
  async take({ takeOver = false } = {}) {
    const wasMine = this.state.mine;
    const active = this.activeSinceRenew;
    this.activeSinceRenew = false;
    this.lastTake = Date.now();
    try {
      const lease = await LL.post(this.url, takeOver ? { take_over: true, active } : { active });
      this._set({ mine: true, holder: lease.user, yours: true, lost: false, error: null, expiresAt: lease.expires_at });
      if (!wasMine) this._announce();
      return true;
    } catch (e) {
      const body = e.body || {};
      if (e.status === 409 && e.code === "leased") {
        this._set({ mine: false, holder: body.user || "someone else", yours: !!body.yours, lost: this.state.lost || wasMine, error: null, expiresAt: body.expires_at });
      } else {
        this._set({ mine: false, lost: this.state.lost || wasMine, error: e });
      }
      return false;
    }
  }

  /** Where the lease is now, from the server's point of view of this tab. */
  async poll() {
    let s;
    try { s = await LL.get(this.url); } catch (e) { return; }
    const lost = this.state.lost || (this.state.mine && !s.mine);
    this._set({ mine: s.mine, holder: s.user, yours: s.yours, lost, revision: s.revision, status: s.status, expiresAt: s.expires_at });
    // Free again (its holder closed the study): a tab that was only waiting takes it.
    if (!s.user && !lost && this.wanted()) await this.take();
  }

  start() {
    this.stop();
    const renew = () => { if (this.state.mine || (!this.state.lost && this.wanted())) this.take(); };
    this.timers.push(setInterval(renew, this.renewMs));
    this.timers.push(setInterval(() => { if (this.wanted() || this.state.mine) this.poll(); }, this.pollMs));
  }
  stop() { this.timers.forEach(clearInterval); this.timers = []; }

  /** Give the lease back when the page goes away (keepalive: the request outlives it). */
  releaseOnExit() {
    if (!this.state.mine) return;
    this.state = { ...this.state, mine: false };
    try {
      fetch(this.url, { method: "DELETE", credentials: "same-origin", keepalive: true, headers: { "X-CSRFToken": LL.csrfToken(), "X-Lease-Client": this.clientId } })
        .then(() => this._announce(), () => {});
    } catch (e) { /* the lease expires by itself */ }
  }

  /** Stop renewing and give the lease back, and wait for it (tests, before teardown). */
  async shutdown() {
    this.stop();
    if (!this.state.mine) return;
    this.state = { ...this.state, mine: false };
    try { await LL.del(this.url); } catch (e) { /* expires by itself */ }
  }
}

/** The case page's side of the lease: one per tab, taken on open, read-only while another
 * tab or user holds it (unsaved edits are kept), retaken only when asked. Installs on
 * `app`: renderLease. */
export function installLease(app) {
  const { S, $, store, roleCanEdit, leaseSeconds } = app;
  const { esc } = LL;
  S.keeper = new LeaseKeeper({
    studyId: app.studyId, leaseSeconds, wanted: () => roleCanEdit && !app.approved(), onChange,
  });

  function onChange(state, previous) {
    S.leaseOk = state.mine;
    S.leaseHolder = state.mine ? null : state.holder;
    S.lease = state.holder ? { user: state.holder, expires_at: state.expiresAt } : null;
    if (state.mine && !previous.mine) {
      app.hideBanner();
      // Taking the lease moves a ready study into review; a copy that fell behind while
      // this tab was read-only is brought up to date (unless it holds unsaved edits).
      app.reloadDetail().then(() => { app.renderHeader(); return refreshStaleMask(); }).catch(() => {});
    } else if (!state.mine && roleCanEdit && !app.approved()) {
      showLeaseBanner(state);
    }
    store.notify("editability"); app.renderLease();
  }

  function showLeaseBanner(state) {
    const unsaved = S.editor ? S.editor.unsavedChanges().length : 0;
    const kept = unsaved ? ` Your ${unsaved} unsaved edit${unsaved === 1 ? " is" : "s are"} kept in this tab: retake the study to save ${unsaved === 1 ? "it" : "them"}.` : "";
    if (state.lost) {
      const where = state.yours ? "in another tab or window of yours" : state.holder ? `by ${state.holder}` : "nowhere (it expired)";
      const text = state.holder ? `You lost the review lease: this study is now being edited ${where}. This tab is read-only.${kept}` : `Your review lease expired. This tab is read-only.${kept}`;
      app.showBanner(text, "warn", state.holder && !state.yours ? null : { label: state.yours ? "Edit here instead" : "Retake the study", fn: () => retake(state.yours) });
    } else if (state.yours) {
      app.showBanner("This study is open for editing in another tab or window of yours. You can look here, but not edit.", "info", { label: "Edit here instead", fn: () => retake(true) });
    } else if (state.holder) {
      app.showBanner(`Being reviewed by ${state.holder}. You can look, but not edit, until they finish.`, "info");
    } else if (state.error) {
      app.showBanner(`Could not take the review lease: ${state.error.message}`, "warn");
    }
  }

  async function retake(takeOver) {
    if (await S.keeper.take({ takeOver })) LL.toast(S.editor && S.editor.dirty ? "You are reviewing again. Save to keep your edits." : "You are reviewing again.", "ok", 4000);
  }

  /** After (re)gaining the lease: decisions made elsewhere meanwhile are loaded, and the
   * current revision too when this tab's copy is older and holds no unsaved edits. */
  async function refreshStaleMask() {
    if (!S.editor) return;
    const rev = S.study && S.study.revision ? Number(S.study.revision.number) : null;
    const stale = rev != null && app.quoteEtag(rev) !== S.etag;
    if (stale && !S.editor.dirty) await Promise.all([app.loadMask(), app.loadLesions()]);
    else { await app.loadLesions(); S.history.reseed(); }
    store.notify("lesions"); store.notify("editability"); app.views.redrawAll();
  }

  app.renderLease = () => {
    const box = $("c-lease");
    if (app.approved()) { box.innerHTML = ""; return; }
    if (S.leaseOk) box.innerHTML = `<span class="lease mine" title="Renewed every ${Math.round(leaseSeconds / 3)} s while this tab is open">You are reviewing</span>`;
    else if (S.leaseHolder) box.innerHTML = `<span class="lease other">Being reviewed by ${esc(S.keeper.state.yours ? "you, in another tab" : S.leaseHolder)}</span>`;
    else if (!roleCanEdit) box.innerHTML = '<span class="lease ro">Read-only</span>';
    else box.innerHTML = "";
  };

  window.addEventListener("pagehide", () => S.keeper.releaseOnExit());
  /** Stop renewing and give the lease back, and wait for it (tests, before teardown). */
  S.shutdown = () => S.keeper.shutdown();
  window.addEventListener("beforeunload", (ev) => {
    if (S.editor && S.editor.dirty && app.canEdit()) { ev.preventDefault(); ev.returnValue = ""; }
  });
}
