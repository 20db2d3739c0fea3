// Server-side Table rows kept small (cells + name, namespace,
// resourceVersion, creationTimestamp) and shown in a virtualised table:
// only the rows near the viewport are in the DOM, and DOM work happens at
// most once per animation frame however many events arrive.

import { h, clear, age } from './dom.js';

const ROW_H = 28;
const OVERSCAN = 12;

/** The rows of one Table watch. */
export class RowStore {
  constructor() {
    this.rows = new Map();
    this.columns = [];
    this.generation = 0;
    this.synced = false;
    this.version = 0;
    // Bumped when rows come or go (or a fresh list starts): a change of
    // cells alone needs no new sort when the view is in key order.
    this.structure = 0;
    this.listeners = new Set();
  }

  key(ns, name) {
    return (ns || '') + '/' + name;
  }

  /** Applies a watch event whose object is a Table. */
  apply(type, table) {
    if (!table || table.kind !== 'Table') return;
    if (table.columnDefinitions && table.columnDefinitions.length) {
      if (this.columns.length !== table.columnDefinitions.length ||
          this.columns.some((c, i) => c.name !== table.columnDefinitions[i].name)) {
        this.columns = table.columnDefinitions.map((c) => ({ name: c.name, type: c.type, format: c.format, priority: c.priority || 0 }));
      }
    }
    for (const row of table.rows || []) {
      const m = (row.object && row.object.metadata) || {};
      const name = m.name !== undefined ? m.name : String(row.cells && row.cells[0]);
      const key = this.key(m.namespace, name);
      if (type === 'DELETED') {
        if (this.rows.delete(key)) this.structure++;
        continue;
      }
      const had = this.rows.get(key);
      if (had) {
        // Changed in place: the views holding it stay valid.
        had.rv = m.resourceVersion || '';
        had.created = m.creationTimestamp || had.created;
        had.cells = row.cells || [];
        had.gen = this.generation;
        had.text = null;
      } else {
        this.rows.set(key, {
          key, name, namespace: m.namespace || '', rv: m.resourceVersion || '',
          created: m.creationTimestamp || '', cells: row.cells || [], gen: this.generation, text: null,
        });
        this.structure++;
      }
    }
    this.changed();
  }

  /** Before a fresh list: rows not seen again by the next sync are dropped. */
  reset() {
    this.generation++;
    this.synced = false;
    this.structure++;
    this.changed();
  }

  sync() {
    for (const [k, r] of this.rows) if (r.gen !== this.generation) this.rows.delete(k);
    this.synced = true;
    this.structure++;
    this.changed();
  }

  changed() {
    this.version++;
    for (const l of this.listeners) l();
  }

  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

const GOOD = /^(Running|Active|Bound|Available|Complete|Completed|Succeeded|Ready|True)$/;
const BAD = /(Err|Fail|BackOff|Crash|Invalid|Evicted|OOM|NotReady|Lost|Unknown|Terminating|Unschedulable)/;

/** A colour for Status and Ready cells (Ready: "2/3" short of its goal). */
function tone(col, text) {
  if (col === 'Ready') {
    const m = /^(\d+)\/(\d+)$/.exec(text);
    return m && m[1] !== m[2] ? 'warn-text' : '';
  }
  if (BAD.test(text)) return 'err-text';
  if (GOOD.test(text)) return 'ok-text';
  return text ? 'warn-text' : '';
}

/** Compares cells: numbers as numbers, "a/b" by a, else as text. */
function cmpCells(a, b) {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const sa = a === undefined || a === null ? '' : String(a);
  const sb = b === undefined || b === null ? '' : String(b);
  const na = parseFloat(sa);
  const nb = parseFloat(sb);
  if (!Number.isNaN(na) && !Number.isNaN(nb) && /^[\d.]/.test(sa) && /^[\d.]/.test(sb) && na !== nb) return na - nb;
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/**
 * A virtualised table of a RowStore.
 * opts: {showNamespace, wide, hrefFor(row), onOpen(row), extraColumns: [{name, value(row)}]}
 */
export class VirtualTable {
  constructor(container, store, opts) {
    this.store = store;
    this.opts = opts;
    this.filter = '';
    this.sortCol = null; // {name, index, dir}
    this.selected = null;
    this.view = [];
    this.viewVersion = -1;
    this.frame = 0;
    this.deferred = 0;
    this.builtAt = 0;
    this.pool = [];
    this.scroller = h('div', { class: 'vt-scroll', tabindex: '-1' });
    this.table = h('table', { class: 'grid', 'data-testid': opts.testid || 'list-table' });
    this.thead = h('thead');
    this.tbody = h('tbody');
    this.padTop = h('tr', { class: 'pad', 'aria-hidden': 'true' });
    this.padBottom = h('tr', { class: 'pad', 'aria-hidden': 'true' });
    this.table.append(this.thead, this.tbody);
    this.scroller.append(this.table);
    container.append(this.scroller);
    this.headerKey = '';
    this.unsub = store.subscribe(() => this.schedule());
    this.scroller.addEventListener('scroll', () => this.schedule(), { passive: true });
    this.ageTimer = setInterval(() => this.schedule(true), 5000);
    this.schedule();
  }

  dispose() {
    this.unsub();
    clearInterval(this.ageTimer);
    clearTimeout(this.deferred);
    cancelAnimationFrame(this.frame);
  }

  setFilter(text) {
    this.filter = text.trim().toLowerCase();
    this.viewVersion = -1;
    this.scroller.scrollTop = 0;
    this.schedule();
  }

  setWide(wide) {
    this.opts.wide = wide;
    this.headerKey = '';
    this.schedule();
  }

  schedule(force) {
    if (force) this.force = true;
    if (this.deferred && this.store.synced) { clearTimeout(this.deferred); this.deferred = 0; }
    if (this.frame || this.deferred) return;
    // While the initial events stream in, the view (a sort of every row) is
    // rebuilt a few times a second, not every frame: the first rows show at
    // once and the stream is read at full speed.
    const wait = !this.store.synced && this.viewVersion >= 0 ? 250 - (performance.now() - this.builtAt) : 0;
    if (wait > 0) {
      this.deferred = setTimeout(() => { this.deferred = 0; this.schedule(); }, wait);
      return;
    }
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** The columns shown: [{name, get(row)}]. */
  columns() {
    const cols = [];
    const showNs = typeof this.opts.showNamespace === 'function' ? this.opts.showNamespace() : this.opts.showNamespace;
    if (showNs) cols.push({ name: 'Namespace', get: (r) => r.namespace });
    // The name links to the detail page (kubectl's tables start with it; an
    // Event's starts with Last Seen, and then no cell links).
    const nameAt = this.store.columns.findIndex((c) => c.name === 'Name');
    this.store.columns.forEach((c, i) => {
      if (c.priority && !this.opts.wide) return;
      if (i === nameAt) {
        cols.push({ name: c.name, get: (r) => r.cells[i], index: i, link: true });
        return;
      }
      if (c.name === 'Age') {
        cols.push({ name: c.name, get: (r) => (r.created ? age(r.created) : r.cells[i]), sortKey: (r) => -Date.parse(r.created || 0) || 0 });
      } else {
        cols.push({ name: c.name, get: (r) => r.cells[i], index: i });
      }
    });
    for (const x of this.opts.extraColumns || []) cols.push({ name: x.name, get: x.value, sortKey: x.sortKey });
    return cols;
  }

  rebuildView(cols) {
    let rows = Array.from(this.store.rows.values());
    if (this.filter) {
      const f = this.filter;
      rows = rows.filter((r) => {
        if (r.text === null) r.text = (r.namespace + ' ' + r.cells.join(' ')).toLowerCase();
        return r.text.includes(f);
      });
    }
    const s = this.sortCol;
    const col = s && cols.find((c) => c.name === s.name);
    if (col) {
      const key = col.sortKey || col.get;
      const dir = s.dir;
      rows.sort((a, b) => dir * cmpCells(key(a), key(b)) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    } else {
      rows.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    }
    this.view = rows;
    this.viewVersion = this.store.version;
    this.viewStructure = this.store.structure;
    this.builtAt = performance.now();
    if (this.opts.onView) this.opts.onView(rows.length, this.store.rows.size);
  }

  renderHeader(cols) {
    const key = cols.map((c) => c.name).join('\u0000') + (this.sortCol ? this.sortCol.name + this.sortCol.dir : '');
    if (key === this.headerKey) return;
    this.headerKey = key;
    clear(this.thead);
    const tr = h('tr');
    for (const c of cols) {
      const sorted = this.sortCol && this.sortCol.name === c.name;
      tr.append(h('th', {
        'data-col': c.name, scope: 'col',
        class: sorted ? (this.sortCol.dir > 0 ? 'sort-asc' : 'sort-desc') : '',
        'aria-sort': sorted ? (this.sortCol.dir > 0 ? 'ascending' : 'descending') : 'none',
        onclick: () => {
          if (this.sortCol && this.sortCol.name === c.name) this.sortCol.dir = -this.sortCol.dir;
          else this.sortCol = { name: c.name, dir: 1 };
          this.viewVersion = -1;
          this.schedule();
        },
      }, c.name));
    }
    this.thead.append(tr);
    this.pool.forEach((tr) => tr.remove());
    this.pool = [];
  }

  render() {
    const cols = this.columns();
    this.renderHeader(cols);
    if (this.viewVersion !== this.store.version) {
      // Only cells changed, in key order, unfiltered: the view stands.
      const cellsOnly = this.viewStructure === this.store.structure && !this.filter && !this.sortCol && this.viewVersion >= 0;
      if (cellsOnly) this.viewVersion = this.store.version; else this.rebuildView(cols);
    }
    const total = this.view.length;
    const viewH = this.scroller.clientHeight || 600;
    const top = this.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(total, Math.ceil((top + viewH) / ROW_H) + OVERSCAN);
    const n = last - first;
    while (this.pool.length < n) {
      const tr = h('tr', { class: 'row' });
      for (const c of cols) tr.append(h('td', { 'data-col': c.name }));
      tr.addEventListener('click', (e) => this.click(tr, e));
      this.pool.push(tr);
    }
    while (this.pool.length > n) this.pool.pop().remove();
    this.padTop.style.height = first * ROW_H + 'px';
    this.padBottom.style.height = (total - last) * ROW_H + 'px';
    if (this.tbody.firstChild !== this.padTop) this.tbody.prepend(this.padTop);
    let prev = this.padTop;
    for (let i = 0; i < n; i++) {
      const row = this.view[first + i];
      const tr = this.pool[i];
      if (tr.previousSibling !== prev || tr.parentNode !== this.tbody) prev.after(tr);
      prev = tr;
      this.fill(tr, row, cols);
    }
    if (prev.nextSibling !== this.padBottom) prev.after(this.padBottom);
    this.first = first;
    this.force = false;
  }

  fill(tr, row, cols) {
    if (tr._row !== row || tr._rv !== row.rv || this.force || this.opts.extraColumns) {
      tr._row = row;
      tr._rv = row.rv;
      tr.dataset.name = row.name;
      tr.dataset.namespace = row.namespace;
      const tds = tr.children;
      for (let j = 0; j < cols.length; j++) {
        const c = cols[j];
        const v = c.get(row);
        const text = v === undefined || v === null ? '' : String(v);
        const td = tds[j];
        if (c.link && this.opts.hrefFor) {
          const a = td.firstChild;
          const href = this.opts.hrefFor(row);
          if (a && a.tagName === 'A') {
            if (a.textContent !== text) a.textContent = text;
            if (a.getAttribute('href') !== href) a.setAttribute('href', href);
          } else {
            clear(td).append(h('a', { href }, text));
          }
        } else if (td.textContent !== text) {
          td.textContent = text;
          if (c.name === 'Status' || c.name === 'Ready') td.className = tone(c.name, text);
        }
      }
    }
    const sel = this.selected === row.key;
    if (tr.classList.contains('selected') !== sel) tr.classList.toggle('selected', sel);
  }

  click(tr, e) {
    const row = tr._row;
    if (!row) return;
    this.selected = row.key;
    this.schedule(true);
    if (e.target.tagName !== 'A' && this.opts.onOpen && e.detail >= 2) this.opts.onOpen(row);
  }

  selectedRow() {
    return this.view.find((r) => r.key === this.selected) || null;
  }

  move(delta) {
    if (!this.view.length) return;
    let i = this.view.findIndex((r) => r.key === this.selected);
    i = i < 0 ? (delta > 0 ? 0 : this.view.length - 1) : Math.max(0, Math.min(this.view.length - 1, i + delta));
    this.selected = this.view[i].key;
    const y = i * ROW_H;
    const headH = this.thead.offsetHeight || ROW_H;
    if (y < this.scroller.scrollTop) this.scroller.scrollTop = y;
    else if (y + ROW_H + headH > this.scroller.scrollTop + this.scroller.clientHeight) {
      this.scroller.scrollTop = y + ROW_H + headH - this.scroller.clientHeight;
    }
    this.schedule(true);
  }
}
