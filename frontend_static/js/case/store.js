/* The case page's state and a small publish/subscribe hub (pure, no DOM).
 *
 * `state` is one plain object (exposed as window.LLViewer for the browser tests and the
 * speed benchmark). Modules change it, then `notify(topic)`; whoever shows that part of
 * the state subscribed to the topic. Topics used by the case page:
 *   "lesions"     the lesion rows, decisions, volumes or selection changed (panel)
 *   "edit"        the mask or the undo history changed (buttons, approval)
 *   "editability" lease, role or study status changed what may be edited
 *   "position"    the cursor voxel [z, y, x] moved (viewports, slider)
 *   "draw"        something drawn over the images changed (viewports redraw)
 * Several notifications of one topic within a call of `batch` are delivered once. */

export function createStore(state = {}) {
  const subscribers = new Map();   // topic -> Set(fn)
  let batching = 0;
  const queued = new Map();        // topic -> last args, while batching

  function deliver(topic, args) {
    const fns = subscribers.get(topic);
    if (!fns) return 0;
    for (const fn of [...fns]) fn(...args);
    return fns.size;
  }

  return {
    state,
    /** Call fn(...args) on every notify(topic); returns a function that unsubscribes. */
    subscribe(topic, fn) {
      if (typeof fn !== "function") throw new TypeError(`subscriber of "${topic}" is not a function`);
      if (!subscribers.has(topic)) subscribers.set(topic, new Set());
      subscribers.get(topic).add(fn);
      return () => subscribers.get(topic).delete(fn);
    },
    /** Tell the subscribers of topic (now, or once at the end of a batch). */
    notify(topic, ...args) {
      if (batching) { queued.set(topic, args); return 0; }
      return deliver(topic, args);
    },
    /** Run fn; notifications made meanwhile are delivered once each, in first-seen order. */
    batch(fn) {
      batching++;
      try { return fn(); } finally {
        batching--;
        if (!batching) {
          const todo = [...queued];
          queued.clear();
          for (const [topic, args] of todo) deliver(topic, args);
        }
      }
    },
  };
}
