// The watch client. One long fetch per view: newline-delimited JSON events
// read as they stream in. It starts with sendInitialEvents (the objects
// there are now as ADDED events, then a BOOKMARK annotated
// k8s.io/initial-events-end), resumes from the last resourceVersion after a
// disconnect (bounded backoff), lists anew on 410 Gone, and falls back to a
// paged list (limit=500) + watch where the server refuses sendInitialEvents.
// It never polls: after the initial events only the open stream carries data.

import { TABLE_ACCEPT, errorOf, get, ApiError } from './api.js';

const INITIAL_END = 'k8s.io/initial-events-end';
const MAX_DELAY_MS = 30000;

/**
 * watch(path, {table, query, onEvent(type, obj), onSync(), onReset(), onError(err, fatal)})
 * → {close()}. Table watches deliver `Table` objects (one row each, or a
 * page of rows in the list fallback); onReset() comes before a fresh list
 * (a 410, or a disconnect before the initial events were complete), after
 * which the consumer sees every object again and then onSync().
 */
export function watch(path, o) {
  const accept = o.table ? TABLE_ACCEPT : 'application/json';
  const onEvent = o.onEvent || (() => {});
  const onSync = o.onSync || (() => {});
  const onReset = o.onReset || (() => {});
  const onError = o.onError || (() => {});
  let rv = '';
  let synced = false;
  let closed = false;
  let ctrl = null;
  let timer = null;
  let attempt = 0;
  let useList = !!o.listFirst;
  let generation = 0;

  const url = (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...(o.query || {}), ...params })) {
      if (v !== undefined && v !== null && v !== '') q.set(k, v);
    }
    return path + '?' + q.toString();
  };

  const later = (fn) => {
    if (closed) return;
    const base = Math.min(MAX_DELAY_MS, 250 * 2 ** attempt);
    attempt = Math.min(attempt + 1, 12);
    clearTimeout(timer);
    timer = setTimeout(fn, base / 2 + Math.random() * base / 2);
  };

  const begin = () => {
    if (closed) return;
    generation++;
    synced = false;
    rv = '';
    if (useList) listThenWatch(generation);
    else stream({ sendInitialEvents: 'true', resourceVersionMatch: 'NotOlderThan' }, true, generation);
  };

  const relist = () => {
    if (closed) return;
    if (ctrl) ctrl.abort();
    onReset();
    begin();
  };

  const resume = () => {
    if (closed) return;
    if (!synced || !rv) { relist(); return; }
    generation++;
    stream({ resourceVersion: rv }, false, generation);
  };

  const objectRV = (obj) => {
    if (obj && obj.kind === 'Table' && obj.rows && obj.rows.length) {
      const m = obj.rows[obj.rows.length - 1].object;
      const r = m && m.metadata && m.metadata.resourceVersion;
      if (r) return r;
    }
    return obj && obj.metadata && obj.metadata.resourceVersion;
  };

  // Handles one event line; returns false when the stream must stop.
  const line = (text, gen) => {
    let ev;
    try { ev = JSON.parse(text); } catch { return true; }
    if (!ev || typeof ev !== 'object') return true;
    const obj = ev.object;
    switch (ev.type) {
      case 'ERROR': {
        const code = obj && obj.code;
        if (code === 410 || (obj && obj.reason === 'Expired') || (obj && obj.reason === 'Gone')) {
          relist();
          return false;
        }
        onError(new ApiError(code || 500, obj), false);
        if (ctrl) ctrl.abort();
        later(resume);
        return false;
      }
      case 'BOOKMARK': {
        const m = obj && obj.metadata;
        if (m && m.resourceVersion) rv = m.resourceVersion;
        if (m && m.annotations && m.annotations[INITIAL_END] === 'true' && !synced) {
          synced = true;
          onSync();
        }
        return true;
      }
      case 'ADDED':
      case 'MODIFIED':
      case 'DELETED': {
        const r = objectRV(obj);
        if (r) rv = r;
        attempt = 0;
        onEvent(ev.type, obj);
        return gen === generation && !closed;
      }
      default:
        return true;
    }
  };

  const stream = async (params, initial, gen) => {
    ctrl = new AbortController();
    const signal = ctrl.signal;
    let res;
    try {
      res = await fetch(url({ ...params, watch: '1', allowWatchBookmarks: 'true' }), {
        headers: { Accept: accept }, credentials: 'same-origin', signal, cache: 'no-store',
      });
    } catch {
      if (!closed && gen === generation) later(resume);
      return;
    }
    if (closed || gen !== generation) return;
    if (!res.ok) {
      const err = await errorOf(res);
      if (closed || gen !== generation) return;
      const refused = initial && (res.status === 400 || res.status === 422 ||
        (res.status === 403 && /sendInitialEvents|resourceVersionMatch/i.test(err.message)));
      if (res.status === 410) { relist(); return; }
      if (refused) { useList = true; begin(); return; }
      if (res.status === 401 || res.status === 403 || res.status === 404) { onError(err, true); return; }
      onError(err, false);
      later(initial ? begin : resume);
      return;
    }
    const opened = performance.now();
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || closed || gen !== generation) break;
        buf += dec.decode(value, { stream: true });
        let start = 0;
        let nl;
        while ((nl = buf.indexOf('\n', start)) >= 0) {
          const text = buf.slice(start, nl);
          start = nl + 1;
          if (text.length > 1 && !line(text, gen)) { try { reader.cancel(); } catch { /* gone */ } return; }
        }
        buf = start ? buf.slice(start) : buf;
      }
    } catch {
      // the connection broke: resume below
    }
    if (closed || gen !== generation) return;
    // A watch that ran a while and ended (the server's timeout) resumes at once.
    if (performance.now() - opened > 10000) attempt = 0;
    later(resume);
  };

  const listThenWatch = async (gen) => {
    let cont = '';
    try {
      for (let page = 0; page < 100000; page++) {
        ctrl = new AbortController();
        const data = await get(path, { accept, signal: ctrl.signal, query: { ...(o.query || {}), limit: 500, continue: cont } });
        if (closed || gen !== generation) return;
        if (o.table && data.kind === 'Table') onEvent('ADDED', data);
        else for (const item of data.items || []) onEvent('ADDED', item);
        rv = (data.metadata && data.metadata.resourceVersion) || rv;
        cont = data.metadata && data.metadata.continue;
        if (!cont) break;
      }
    } catch (e) {
      if (closed || gen !== generation) return;
      if (e.code === 410) { relist(); return; }
      if (e.code === 401 || e.code === 403 || e.code === 404) { onError(e, true); return; }
      onError(e, false);
      later(relist);
      return;
    }
    attempt = 0;
    synced = true;
    onSync();
    generation++;
    stream({ resourceVersion: rv }, false, generation);
  };

  begin();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      if (ctrl) ctrl.abort();
    },
  };
}

/**
 * A watch of one object (fieldSelector metadata.name=NAME).
 * onObject(obj or null when deleted), onSync(), onError(err, fatal).
 */
export function watchObject(collectionPath, name, o) {
  let current = null;
  return watch(collectionPath, {
    query: { fieldSelector: 'metadata.name=' + name },
    onEvent(type, obj) {
      current = type === 'DELETED' ? null : obj;
      if (o.synced) o.onObject(current, type);
    },
    onReset() { current = null; },
    onSync() { o.synced = true; o.onObject(current, 'SYNC'); },
    onError: o.onError,
  });
}
