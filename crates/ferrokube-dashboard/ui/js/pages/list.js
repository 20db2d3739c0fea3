// A list page: one Table watch of the resource (in the selected namespace
// or all), rows in a virtualised table, the `/` filter, and for pods and
// nodes the CPU/memory columns from a metrics watch. With no namespace
// selected the watch starts at once, before discovery answers (the path is
// the same for namespaced and cluster kinds); discovery then names the kind.

import { h, clear, errorText } from '../dom.js';
import { watch } from '../watch.js';
import { RowStore, VirtualTable } from '../table.js';
import { resourcePath } from '../api.js';
import { discovery, lookup, plural } from '../discovery.js';
import { href, detailPath, go } from '../route.js';
import { watchMetrics, fmtCpu, fmtMem } from '../metrics.js';
import { can, createDialog } from '../actions.js';

export function listPage(el, route) {
  let disposed = false;
  const cleanups = [];
  const title = h('h1', null, route.resource);
  const count = h('span', { class: 'count', 'data-testid': 'list-count', 'aria-live': 'polite' }, 'loading…');
  const filter = h('input', { type: 'search', 'data-testid': 'list-filter', placeholder: 'Filter (/)', 'aria-label': 'Filter', autocomplete: 'off', spellcheck: 'false' });
  const wide = h('label', { class: 'check' }, h('input', { type: 'checkbox' }), 'Wide');
  const createSlot = h('span');
  const status = h('div', { class: 'banner', hidden: true });
  const body = h('div', { class: 'list-body' });
  clear(el).append(h('div', { class: 'page list-page' },
    h('div', { class: 'toolbar' }, title, count, h('span', { class: 'grow' }), filter, wide, createSlot),
    status, body));
  document.title = route.resource + ' · ferrokube';

  const group = route.group === 'core' ? '' : route.group;
  // Until discovery answers: the route's resource, scope unknown.
  const state = { res: { group, version: route.version, resource: route.resource, kind: route.resource }, table: null, started: false };
  const store = new RowStore();
  const isCore = (name) => !group && route.resource === name;
  let ns = route.ns;
  const extra = [];
  let table = null;

  const start = () => {
    if (state.started || disposed) return;
    state.started = true;
    if (isCore('pods') || isCore('nodes')) {
      const metrics = watchMetrics(route.resource, isCore('pods') ? ns : '', () => table && table.schedule(true));
      cleanups.push(() => metrics.close());
      const m = (r) => metrics.map.get(r.namespace + '/' + r.name);
      extra.push({ name: 'CPU', value: (r) => { const x = m(r); return x ? fmtCpu(x.cpu) : '—'; }, sortKey: (r) => { const x = m(r); return x ? x.cpu : -1; } });
      extra.push({ name: 'Memory', value: (r) => { const x = m(r); return x ? fmtMem(x.mem) : '—'; }, sortKey: (r) => { const x = m(r); return x ? x.mem : -1; } });
    }
    table = new VirtualTable(body, store, {
      // A Namespace column for namespaced kinds when all namespaces show
      // (before discovery: when the rows have namespaces).
      showNamespace: () => {
        if (ns) return false;
        if (state.res.namespaced !== undefined) return state.res.namespaced;
        const first = store.rows.values().next().value;
        return !!(first && first.namespace);
      },
      extraColumns: extra,
      hrefFor: (r) => href(detailPath(state.res, r.namespace, r.name)),
      onOpen: (r) => go(detailPath(state.res, r.namespace, r.name)),
      onView: (shown, total) => {
        if (!store.synced) return;
        count.textContent = shown === total ? `${total}` : `${shown} of ${total}`;
        count.dataset.count = String(total);
      },
    });
    state.table = table;
    cleanups.push(() => table.dispose());
    filter.addEventListener('input', () => table.setFilter(filter.value));
    filter.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { filter.blur(); }
      if (e.key === 'Enter') { filter.blur(); table.move(1); }
    });
    wide.firstChild.addEventListener('change', () => table.setWide(wide.firstChild.checked));
    const w = watch(resourcePath({ ...state.res, namespaced: !!ns }, ns), {
      table: true,
      onEvent: (type, t) => store.apply(type, t),
      onReset: () => { store.reset(); delete count.dataset.count; count.textContent = 'loading…'; },
      onSync: () => {
        store.sync();
        status.hidden = true;
      },
      onError: (e, fatal) => {
        status.hidden = false;
        if (e.code === 403) status.setAttribute('data-testid', 'forbidden');
        status.className = 'banner ' + (fatal ? 'error' : 'warn');
        status.textContent = fatal ? errorText(e) : `Reconnecting: ${errorText(e)}`;
        if (fatal) { count.textContent = '—'; }
      },
    });
    cleanups.push(() => w.close());
  };

  if (!ns) start();
  discovery().then((d) => {
    if (disposed) return;
    const res = lookup(d, route.group, route.version, route.resource);
    state.res = res;
    if (!res.namespaced && !res.guessed) ns = ''; // a namespace selection does not apply
    title.textContent = plural(res);
    document.title = plural(res) + ' · ferrokube';
    start();
    if (table) table.schedule(true);
    const createNs = (res.namespaced && ns) || 'default';
    can('create', res, createNs).then((ok) => {
      if (disposed) return;
      const b = h('button', { 'data-testid': 'action-create', class: 'action', onclick: () => createDialog(createNs) }, 'Create');
      b.disabled = !ok;
      createSlot.append(b);
    });
  }, (e) => {
    status.hidden = false;
    status.className = 'banner error';
    status.textContent = errorText(e);
    start();
  });

  const selectedObj = () => state.table && state.table.selectedRow();
  return {
    dispose() { disposed = true; cleanups.forEach((f) => f()); },
    focusFilter() { filter.focus(); filter.select(); },
    move(d) { if (state.table) state.table.move(d); },
    open() { const r = selectedObj(); if (r) go(detailPath(state.res, r.namespace, r.name)); },
    shortcut(key) {
      const r = selectedObj();
      if (!r) return;
      const p = detailPath(state.res, r.namespace, r.name);
      const isPod = state.res.resource === 'pods' && !state.res.group;
      if (key === 'l' && isPod) go(p + '/logs');
      else if (key === 's' && isPod) go(p + '/exec');
      else if (key === 'e') go(p, { action: 'edit' });
    },
  };
}
