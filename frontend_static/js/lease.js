/* The review lease of one tab. Each tab is its own client session (X-Lease-Client on
 * every request), so another tab of the same user is another editor and closing it never
 * ends the lease of the tab still in use. While held the lease is renewed; a poll every
 * few seconds notices when it went elsewhere (taken over in another tab, or expired and
 * taken by someone else) so the tab turns read-only at once (tabs of one browser also tell
 * each other over a BroadcastChannel, which makes it immediate); a lost lease is retaken
 * only when the clinician asks. */
(function () {
  "use strict";

  function newClientId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return "tab-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  class LeaseKeeper {
    /** wanted(): whether this tab should hold the lease now (role, study not approved).
     * onChange(state, previous): after every change of `state`. */
    constructor({ studyId, leaseSeconds, pollMs = 2500, wanted, onChange }) {
      this.url = `/api/studies/${studyId}/lease/`;
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

  window.LLLease = { LeaseKeeper, newClientId };
})();
