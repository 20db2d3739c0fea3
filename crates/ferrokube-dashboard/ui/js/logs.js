// A pod's logs: `GET .../pods/P/log` streamed with fetch and a
// ReadableStream (follow), lines appended once per animation frame into a
// bounded view, with previous container, timestamps, search, download and
// container choice.
//
// The stream is always asked with `timestamps=true`: the time of every line
// is what lets a follow that ended while the container still runs be resumed
// (`sinceTime` = the last line's time, then the lines already shown at that
// time skipped), something `kubectl logs -f` itself does not do (it stops
// when the stream ends). The timestamps checkbox only changes the display.

import { ensureCss } from './termcss.js';

export const MAX_LINES = 50000;
/** A line longer than this is cut into pieces (bytes of one line kept). */
const MAX_LINE = 1 << 20;
/** Consecutive reconnects that brought no line before giving up. */
const MAX_RECONNECTS = 8;
/** Retries while the container has not started yet (every 2 s). */
const MAX_START_WAITS = 90;

const TAILS = [
  ['100', '100'],
  ['1000', '1,000'],
  ['10000', '10,000'],
  ['', 'all'],
];


/** The log URL for these options. */
export function logPath({ namespace, pod, container, follow, previous, tailLines, sinceTime }) {
  const q = new URLSearchParams();
  if (container) q.set('container', container);
  if (follow) q.set('follow', 'true');
  if (previous) q.set('previous', 'true');
  q.set('timestamps', 'true');
  if (sinceTime) q.set('sinceTime', sinceTime);
  else if (tailLines) q.set('tailLines', String(tailLines));
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/log?${q}`;
}

const TS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** A line as `timestamps=true` gives it: [time or null, text]. */
export function splitTimestamp(line) {
  const i = line.indexOf(' ');
  const head = i < 0 ? line : line.slice(0, i);
  if (head.length >= 20 && TS.test(head)) return [head, i < 0 ? '' : line.slice(i + 1)];
  return [null, line];
}

/** [milliseconds, nanoseconds within the millisecond] of an RFC 3339 time. */
function timeKey(ts) {
  const m = /^(.*?:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return [Number.NaN, 0];
  const frac = (m[2] || '').padEnd(9, '0').slice(0, 9);
  const ms = Date.parse(m[1] + m[3]);
  return [ms + Number(frac.slice(0, 3)), Number(frac.slice(3))];
}

/** Orders two RFC 3339 times (any fraction length, any offset). */
export function compareTime(a, b) {
  if (a === b) return 0;
  const [am, an] = timeKey(a);
  const [bm, bn] = timeKey(b);
  if (Number.isNaN(am) || Number.isNaN(bm)) return a < b ? -1 : 1;
  return am - bm || an - bn;
}

/**
 * Where a resumed stream starts: the time of the last line taken and how
 * many lines taken had exactly that time. `skip(ts)` says whether a line of a
 * stream resumed from here was already taken (older, or one of those n).
 */
export class Resume {
  constructor() {
    this.ts = null;
    this.n = 0;
  }

  took(ts) {
    if (!ts) return;
    if (ts === this.ts) this.n++;
    else {
      this.ts = ts;
      this.n = 1;
    }
  }

  /** A skipper for one resumed stream. */
  skipper() {
    let ts = this.ts;
    let n = this.n;
    return (lineTs) => {
      if (ts === null || !lineTs) return false;
      const c = compareTime(lineTs, ts);
      if (c < 0) return true;
      if (c === 0 && n > 0) {
        n--;
        return true;
      }
      ts = null;
      return false;
    };
  }
}

// ANSI escape sequences (colours, cursor) are not shown in the view.
const ANSI = /\x1b\[[0-9;:?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;
const stripAnsi = (s) => (s.includes('\x1b') ? s.replace(ANSI, '') : s);

/** The message of a refused request (a Status' message, or the status line). */
async function failure(res) {
  let text = '';
  try {
    text = await res.text();
  } catch {
    // No body.
  }
  try {
    const s = JSON.parse(text);
    if (s && s.message) return s.message;
  } catch {
    // Not a Status.
  }
  return `${res.status} ${res.statusText}${text ? `: ${text.slice(0, 500)}` : ''}`;
}

const h = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  if (text !== undefined) e.textContent = text;
  return e;
};

const checkbox = (testid, label, checked) => {
  const l = h('label');
  const c = h('input', { type: 'checkbox', 'data-testid': testid });
  c.checked = checked;
  l.append(c, ` ${label}`);
  return [l, c];
};

/** The state of `container` in a pod's status: 'running', 'waiting', 'terminated' or ''. */
function containerState(pod, name) {
  const st = pod && pod.status;
  if (!st) return '';
  for (const list of [st.containerStatuses, st.initContainerStatuses, st.ephemeralContainerStatuses]) {
    for (const c of list || []) {
      if (c.name !== name || !c.state) continue;
      if (c.state.running) return 'running';
      if (c.state.terminated) return 'terminated';
      if (c.state.waiting) return 'waiting';
    }
  }
  return '';
}

/**
 * Mounts the logs view of `pod` into `el`. `containers`: the pod's
 * container names (strings or objects with `name`); `container`: the one
 * shown first. Returns dispose(): stops the stream and empties `el`.
 */
export function mountLogs(el, { namespace, pod, containers = [], container } = {}) {
  ensureCss();
  const names = containers.map((c) => (typeof c === 'string' ? c : c && c.name)).filter(Boolean);
  if (container && !names.includes(container)) names.unshift(container);
  let current = container || names[0] || '';

  el.replaceChildren();
  const root = h('div', { class: 'fk-logs' });
  const bar = h('div', { class: 'fk-logs-bar' });
  const select = h('select', { 'data-testid': 'logs-container', 'aria-label': 'Container' });
  for (const n of names) select.append(h('option', { value: n }, n));
  select.value = current;
  select.disabled = names.length < 2;
  const [followL, follow] = checkbox('logs-follow', 'Follow', true);
  const [prevL, previous] = checkbox('logs-previous', 'Previous', false);
  const [tsL, timestamps] = checkbox('logs-timestamps', 'Timestamps', false);
  const [wrapL, wrapLines] = checkbox('logs-wrap', 'Wrap', false);
  const tail = h('select', { 'data-testid': 'logs-tail', 'aria-label': 'Lines from the end' });
  for (const [v, label] of TAILS) tail.append(h('option', { value: v }, `last ${label}`));
  tail.value = '1000';
  tail.options[tail.options.length - 1].textContent = 'all lines';
  const search = h('input', {
    type: 'search',
    placeholder: 'Search',
    'data-testid': 'logs-search',
    'aria-label': 'Search the log',
  });
  const [onlyL, onlyMatching] = checkbox('logs-only-matching', 'Only matching', true);
  const matches = h('span', { class: 'fk-logs-state', 'data-testid': 'logs-matches' });
  const download = h('button', { type: 'button', class: 'fk-btn', 'data-testid': 'logs-download' }, 'Download');
  const state = h('span', { class: 'fk-logs-state', 'data-testid': 'logs-state', role: 'status' });
  bar.append(select, followL, prevL, tsL, wrapL, tail, search, onlyL, matches, download, state);
  const error = h('div', { class: 'fk-logs-error', 'data-testid': 'logs-error', role: 'alert' });
  error.hidden = true;
  const body = h('div', { class: 'fk-logs-body' });
  const out = h('pre', { class: 'fk-logs-out', 'data-testid': 'logs-output', tabindex: '0' });
  const jump = h('button', { type: 'button', class: 'fk-btn fk-logs-jump', 'data-testid': 'logs-jump' }, '↓ Latest');
  jump.hidden = true;
  body.append(out, jump);
  root.append(bar, error, body);
  el.append(root);

  // The lines kept ({ts, text}), oldest first, at most MAX_LINES.
  let lines = [];
  // Lines read but not yet shown (taken at the next animation frame).
  let pending = [];
  // The view: chunks of shown lines, one element each.
  let chunks = [];
  let shown = 0;
  let matchCount = 0;
  let query = '';
  let pinned = true;
  let raf = 0;
  let disposed = false;
  let resume = new Resume();
  // Each stream has a generation: an older one's late events are dropped.
  let gen = 0;
  let abort = null;
  let timer = 0;
  let reconnects = 0;
  let startWaits = 0;

  const setState = (text, kind = '') => {
    state.textContent = text;
    state.dataset.state = kind;
  };
  const showError = (msg) => {
    error.textContent = msg;
    error.hidden = !msg;
  };

  const matchesQuery = (l) => !query || l.text.toLowerCase().includes(query);

  // The nodes of some lines: one text node when plain, else spans for
  // the times and marks for the matches.
  const renderLines = (ls) => {
    const showTs = timestamps.checked;
    if (!showTs && !query) {
      let s = '';
      for (const l of ls) s += `${stripAnsi(l.text)}\n`;
      return document.createTextNode(s);
    }
    const frag = document.createDocumentFragment();
    for (const l of ls) {
      if (showTs && l.ts) {
        frag.append(h('span', { class: 'fk-ts' }, l.ts), ' ');
      }
      const text = stripAnsi(l.text);
      if (query) {
        const low = text.toLowerCase();
        let at = 0;
        for (let k = 0; k < 1000; k++) {
          const i = low.indexOf(query, at);
          if (i < 0) break;
          if (i > at) frag.append(text.slice(at, i));
          frag.append(h('mark', {}, text.slice(i, i + query.length)));
          at = i + query.length;
        }
        frag.append(`${text.slice(at)}\n`);
      } else {
        frag.append(`${text}\n`);
      }
    }
    return frag;
  };

  // Lines go into chunks (blocks of up to CHUNK lines) that the browser
  // lays out only near the viewport (content-visibility), so a long log
  // costs little per new line.
  const CHUNK = 500;
  const LINE_PX = 17.5;
  const sized = (c) => {
    c.el.style.containIntrinsicSize = `auto ${Math.ceil(c.lines.length * LINE_PX)}px`;
  };
  const appendChunk = (ls) => {
    const visible = query && onlyMatching.checked ? ls.filter(matchesQuery) : ls;
    if (query) matchCount += onlyMatching.checked ? visible.length : ls.filter(matchesQuery).length;
    if (visible.length === 0) return;
    let from = 0;
    const last = chunks[chunks.length - 1];
    if (last && last.lines.length < CHUNK) {
      const take = visible.slice(0, CHUNK - last.lines.length);
      last.el.append(renderLines(take));
      last.lines = last.lines.concat(take);
      sized(last);
      from = take.length;
    }
    for (let i = from; i < visible.length; i += CHUNK) {
      const part = visible.slice(i, i + CHUNK);
      const c = { el: h('div', { class: 'fk-chunk' }), lines: part };
      c.el.append(renderLines(part));
      sized(c);
      out.append(c.el);
      chunks.push(c);
    }
    shown += visible.length;
    trim();
  };

  // Bounded: the oldest lines leave the view. A reader scrolled up keeps
  // seeing the same lines.
  const trim = () => {
    if (shown <= MAX_LINES) return;
    const before = pinned ? 0 : out.scrollHeight;
    while (shown > MAX_LINES && chunks.length) {
      const first = chunks[0];
      const over = shown - MAX_LINES;
      if (over >= first.lines.length) {
        first.el.remove();
        chunks.shift();
        shown -= first.lines.length;
      } else {
        first.lines = first.lines.slice(over);
        first.el.replaceChildren(renderLines(first.lines));
        sized(first);
        shown -= over;
      }
    }
    if (!pinned) out.scrollTop -= before - out.scrollHeight;
  };

  const updateMatches = () => {
    matches.textContent = query ? `${matchCount} matching line${matchCount === 1 ? '' : 's'}` : '';
  };

  const scrollToEnd = () => {
    out.scrollTop = out.scrollHeight;
  };

  const flush = () => {
    raf = 0;
    if (disposed || pending.length === 0) return;
    let batch = pending;
    pending = [];
    if (batch.length > MAX_LINES) batch = batch.slice(batch.length - MAX_LINES);
    for (const l of batch) lines.push(l);
    if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
    appendChunk(batch);
    updateMatches();
    if (pinned) scrollToEnd();
  };

  const rerender = () => {
    out.replaceChildren();
    chunks = [];
    shown = 0;
    matchCount = 0;
    appendChunk(lines);
    updateMatches();
    if (pinned) scrollToEnd();
  };

  const take = (raw, skip) => {
    const [ts, text] = splitTimestamp(raw);
    if (skip && skip(ts)) return;
    resume.took(ts);
    pending.push({ ts, text });
    // Bounded while the page is hidden (no animation frames).
    if (pending.length > MAX_LINES * 2) pending.splice(0, pending.length - MAX_LINES);
    if (!raf) raf = requestAnimationFrame(flush);
  };

  const stop = () => {
    gen++;
    if (abort) abort.abort();
    abort = null;
    if (timer) clearTimeout(timer);
    timer = 0;
  };

  const clear = () => {
    stop();
    lines = [];
    pending = [];
    resume = new Resume();
    reconnects = 0;
    startWaits = 0;
    pinned = true;
    jump.hidden = true;
    rerender();
    showError('');
  };

  const following = () => follow.checked && !previous.checked;

  // After a follow stream ended: resume while the container runs.
  const ended = async (my, why) => {
    if (my !== gen) return;
    if (!following()) {
      setState(previous.checked ? 'previous container: end of log' : 'end of log', 'ended');
      return;
    }
    let st = '';
    try {
      const res = await fetch(
        `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`,
        { credentials: 'same-origin', headers: { Accept: 'application/json' } },
      );
      if (res.ok) st = containerState(await res.json(), current);
      else st = `unknown (${await failure(res)})`;
    } catch (e) {
      st = `unknown (${e && e.message ? e.message : e})`;
    }
    if (my !== gen) return;
    if (st === 'running' && reconnects < MAX_RECONNECTS) {
      const wait = Math.min(10000, 500 * 2 ** reconnects);
      reconnects++;
      setState(`stream ended${why ? ` (${why})` : ''}; reconnecting…`, 'reconnecting');
      timer = setTimeout(() => {
        timer = 0;
        if (my === gen) start();
      }, wait);
      return;
    }
    setState(st === 'running' ? 'stream ended; gave up reconnecting' : `stream ended: container ${st || 'gone'}`, 'ended');
  };

  const start = async () => {
    stop();
    const my = gen;
    const ctl = new AbortController();
    abort = ctl;
    const resuming = resume.ts !== null && !previous.checked;
    const path = logPath({
      namespace,
      pod,
      container: current,
      follow: following(),
      previous: previous.checked,
      tailLines: tail.value ? Number(tail.value) : 0,
      sinceTime: resuming ? resume.ts : '',
    });
    setState(resuming ? 'resuming…' : 'loading…', 'loading');
    let res;
    try {
      res = await fetch(path, { credentials: 'same-origin', signal: ctl.signal, headers: { Accept: '*/*' } });
    } catch (e) {
      if (my !== gen) return;
      showError(`the log could not be read: ${e && e.message ? e.message : e}`);
      ended(my, 'network error');
      return;
    }
    if (my !== gen) return;
    if (!res.ok) {
      const msg = await failure(res);
      if (my !== gen) return;
      showError(msg);
      // A container that has not started yet: wait for it (bounded).
      if (res.status === 400 && /waiting to start|PodInitializing|ContainerCreating/i.test(msg) && startWaits < MAX_START_WAITS) {
        startWaits++;
        setState('waiting for the container to start…', 'waiting');
        timer = setTimeout(() => {
          timer = 0;
          if (my === gen) start();
        }, 2000);
      } else {
        setState('error', 'error');
      }
      return;
    }
    showError('');
    setState(following() ? 'following' : 'loading…', following() ? 'following' : 'loading');
    const skip = resuming ? resume.skipper() : null;
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let partial = '';
    let got = 0;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (my !== gen) return;
        if (done) break;
        const parts = (partial + dec.decode(value, { stream: true })).split('\n');
        partial = parts.pop();
        for (const p of parts) take(p, skip);
        got += parts.length;
        if (partial.length > MAX_LINE) {
          take(partial, skip);
          partial = '';
        }
      }
    } catch (e) {
      if (my !== gen) return;
      partial += dec.decode();
      if (partial) take(partial, skip);
      if (got > 0) reconnects = 0;
      ended(my, e && e.message ? e.message : 'read error');
      return;
    }
    partial += dec.decode();
    if (partial) take(partial, skip);
    if (got > 0) reconnects = 0;
    ended(my, '');
  };

  // Controls.
  const onScroll = () => {
    pinned = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    jump.hidden = pinned;
  };
  out.addEventListener('scroll', onScroll, { passive: true });
  jump.addEventListener('click', () => {
    pinned = true;
    jump.hidden = true;
    scrollToEnd();
  });
  follow.addEventListener('change', () => {
    if (follow.checked) {
      reconnects = 0;
      start();
    } else {
      stop();
      setState('paused', 'paused');
    }
  });
  previous.addEventListener('change', () => {
    follow.disabled = previous.checked;
    clear();
    start();
  });
  select.addEventListener('change', () => {
    current = select.value;
    clear();
    start();
  });
  tail.addEventListener('change', () => {
    clear();
    start();
  });
  timestamps.addEventListener('change', rerender);
  wrapLines.addEventListener('change', () => root.classList.toggle('fk-wrap-lines', wrapLines.checked));
  onlyMatching.addEventListener('change', rerender);
  let searchTimer = 0;
  search.addEventListener('input', () => {
    if (searchTimer) clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      searchTimer = 0;
      const q = search.value.toLowerCase();
      if (q === query) return;
      query = q;
      rerender();
    }, 120);
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && search.value) {
      search.value = '';
      query = '';
      rerender();
      e.stopPropagation();
    }
  });
  download.addEventListener('click', () => {
    const withTs = timestamps.checked;
    const parts = lines.map((l) => (withTs && l.ts ? `${l.ts} ${l.text}\n` : `${l.text}\n`));
    const blob = new Blob(parts, { type: 'text/plain;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const a = h('a', { href: url, download: `${namespace}_${pod}_${current}.log` });
    a.hidden = true;
    root.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  });

  start();

  return function dispose() {
    if (disposed) return;
    disposed = true;
    stop();
    if (raf) cancelAnimationFrame(raf);
    if (searchTimer) clearTimeout(searchTimer);
    el.replaceChildren();
  };
}
