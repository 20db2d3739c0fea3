// Pieces of detail pages: key/value lists, condition tables, events and
// related pods (each live from its own watch).

import { h, clear, age, errorText } from '../dom.js';
import { watch } from '../watch.js';
import { RowStore, VirtualTable } from '../table.js';
import { href, detailPath } from '../route.js';

export function section(title, ...children) {
  return h('section', { class: 'card' }, h('h3', null, title), children);
}

/** A definition list of [label, value] pairs (values may be nodes). */
export function kv(pairs) {
  const dl = h('dl', { class: 'kv' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(h('dt', null, k), h('dd', null, v));
  }
  return dl;
}

export function labels(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h('span', { class: 'muted' }, 'none');
  return h('span', { class: 'chips' }, entries.map(([k, v]) => h('span', { class: 'chip', title: `${k}=${v}` }, `${k}=${v}`)));
}

export function simpleTable(headers, rows, attrs) {
  return h('table', { class: 'grid small', ...(attrs || {}) },
    h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, rows.length ? rows.map((r) => h('tr', null, r.map((c) => h('td', null, c ?? ''))))
      : h('tr', null, h('td', { colspan: String(headers.length), class: 'muted' }, 'none'))));
}

export function conditions(list) {
  return simpleTable(['Type', 'Status', 'Reason', 'Message', 'Last transition'],
    (list || []).map((c) => [c.type, h('span', { class: conditionClass(c) }, c.status), c.reason, c.message, age(c.lastTransitionTime)]));
}

// Green when a condition is as it should be: True for Ready, Available…,
// False for MemoryPressure, ReplicaFailure….
function conditionClass(c) {
  if (c.status !== 'True' && c.status !== 'False') return 'warn-text';
  const negative = /Pressure$|Unavailable$|Failure$|^Failed$|Degraded|Stalled|Terminating|Disrupted/.test(c.type);
  return (c.status === 'True') !== negative ? 'ok-text' : 'err-text';
}

/**
 * The events about an object, live. Returns {el, close}.
 * Namespaced objects: by involvedObject.uid; cluster ones: by kind + name.
 */
export function eventsPart(obj) {
  const m = obj.metadata;
  const body = h('div');
  const el = section('Events', body);
  const events = new Map();
  let synced = false;
  let frame = 0;
  const render = () => {
    frame = 0;
    if (!synced) return;
    const list = Array.from(events.values()).sort((a, b) => evTime(b) - evTime(a)).slice(0, 100);
    clear(body).append(simpleTable(['Type', 'Reason', 'Age', 'From', 'Message'], list.map((e) => [
      h('span', { class: e.type === 'Warning' ? 'warn-text' : '' }, e.type), e.reason,
      ageOf(e) + ((e.count || 0) > 1 ? ` (×${e.count})` : ''),
      (e.source && e.source.component) || e.reportingComponent || '', e.message,
    ]), { 'data-testid': 'events-table' }));
  };
  const later = () => { if (!frame) frame = requestAnimationFrame(render); };
  const path = m.namespace ? `/api/v1/namespaces/${encodeURIComponent(m.namespace)}/events` : '/api/v1/events';
  const selector = m.namespace && m.uid ? `involvedObject.uid=${m.uid}` : `involvedObject.kind=${obj.kind},involvedObject.name=${m.name}`;
  const w = watch(path, {
    query: { fieldSelector: selector },
    onEvent(type, e) {
      const k = e.metadata.namespace + '/' + e.metadata.name;
      if (type === 'DELETED') events.delete(k); else events.set(k, slim(e));
      later();
    },
    onReset() { events.clear(); synced = false; },
    onSync() { synced = true; later(); },
    onError(e, fatal) { if (fatal) clear(body).append(h('p', { class: 'muted' }, errorText(e))); },
  });
  return { el, close: () => { w.close(); cancelAnimationFrame(frame); } };
}

function slim(e) {
  return {
    type: e.type, reason: e.reason, message: e.message, count: e.count, source: e.source,
    reportingComponent: e.reportingComponent, lastTimestamp: e.lastTimestamp, eventTime: e.eventTime,
    firstTimestamp: e.firstTimestamp, creationTimestamp: e.metadata.creationTimestamp,
    involvedObject: e.involvedObject, namespace: e.metadata.namespace,
  };
}

export function evTime(e) {
  return Date.parse(e.lastTimestamp || e.eventTime || e.firstTimestamp || e.creationTimestamp || 0) || 0;
}
export function ageOf(e) {
  return age(e.lastTimestamp || e.eventTime || e.firstTimestamp || e.creationTimestamp);
}

/** A live table of related objects (Table rows), e.g. a Deployment's pods. */
export function relatedPart(title, res, namespace, query) {
  const holder = h('div', { class: 'related' });
  const el = section(title, holder);
  const store = new RowStore();
  const table = new VirtualTable(holder, store, {
    testid: 'related-table', showNamespace: false,
    hrefFor: (r) => href(detailPath(res, r.namespace, r.name)),
  });
  const path = (res.group ? `/apis/${res.group}/${res.version}` : `/api/${res.version}`) +
    (namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '') + '/' + res.resource;
  const w = watch(path, {
    table: true, query,
    onEvent: (t, o) => store.apply(t, o),
    onReset: () => store.reset(),
    onSync: () => store.sync(),
    onError: (e, fatal) => { if (fatal) clear(holder).append(h('p', { class: 'muted' }, errorText(e))); },
  });
  return { el, close: () => { w.close(); table.dispose(); } };
}

export function selectorString(sel) {
  if (!sel) return '';
  const parts = Object.entries(sel.matchLabels || {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions || []) {
    const op = e.operator;
    if (op === 'In') parts.push(`${e.key} in (${(e.values || []).join(',')})`);
    else if (op === 'NotIn') parts.push(`${e.key} notin (${(e.values || []).join(',')})`);
    else if (op === 'Exists') parts.push(e.key);
    else if (op === 'DoesNotExist') parts.push('!' + e.key);
  }
  return parts.join(',');
}
