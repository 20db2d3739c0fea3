// The shell: session check and login, header (namespace selector, user,
// logout), sidebar of every discovered kind, the hash router and the
// keyboard.

import { h, clear, toast, errorText, modal } from './dom.js';
import { request, setSession, setUnauthorizedHandler } from './api.js';
import { watch } from './watch.js';
import { discovery, sections, plural, invalidate } from './discovery.js';
import { current, href, listPath } from './route.js';
import { forgetReviews } from './actions.js';
import { loginPage, createSession, logo } from './pages/login.js';
import { listPage } from './pages/list.js';
import { detailPage } from './pages/detail.js';
import { overviewPage } from './pages/overview.js';
import { toolPage } from './pages/tools.js';

const root = document.getElementById('app');
root.className = '';
let session = null;
let page = null;
let shell = null;
let nsWatch = null;
let crdWatch = null;
const OTHER = '__other__'; // no namespace has underscores

// ------------------------------------------------------------------ theme
const THEME_KEY = 'ferrokube.theme'; // a UI preference, nothing else is stored
function applyTheme() {
  let t = '';
  try { t = localStorage.getItem(THEME_KEY) || ''; } catch { /* no storage */ }
  if (t) document.documentElement.dataset.theme = t; else delete document.documentElement.dataset.theme;
}
function toggleTheme() {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === 'dark'
    : matchMedia('(prefers-color-scheme: dark)').matches;
  try { localStorage.setItem(THEME_KEY, dark ? 'light' : 'dark'); } catch { /* no storage */ }
  applyTheme();
}
applyTheme();

// ---------------------------------------------------------------- session
function showLogin(message) {
  stopShell();
  session = null;
  setSession(null);
  forgetReviews();
  loginPage(root, start, message);
}

function stopShell() {
  if (page) { page.dispose(); page = null; }
  if (nsWatch) { nsWatch.close(); nsWatch = null; }
  if (crdWatch) { crdWatch.close(); crdWatch = null; }
  shell = null;
  document.querySelectorAll('.overlay').forEach((o) => o.remove());
}

setUnauthorizedHandler(() => {
  if (session) showLogin('Your session has ended; log in again.');
});

async function boot() {
  const m = /^#code=([^&]+)/.exec(location.hash);
  if (m) {
    const code = decodeURIComponent(m[1]);
    history.replaceState(null, '', location.pathname + location.search + '#/');
    try {
      start(await createSession({ code }));
    } catch (e) {
      showLogin(errorText(e));
    }
    return;
  }
  try {
    start(await request('GET', '/dashboard/session'));
  } catch (e) {
    showLogin(e.code === 401 ? '' : errorText(e));
  }
}

async function logout() {
  try {
    await request('DELETE', '/dashboard/session');
  } catch (e) {
    if (e.code !== 401) { toast('Logout failed: ' + errorText(e), 'error'); return; }
  }
  showLogin('You have logged out.');
}

// ------------------------------------------------------------------ shell
function start(s) {
  session = s;
  setSession(s);
  forgetReviews();
  buildShell();
  route();
}

function buildShell() {
  stopShell();
  const nsSelect = h('select', { 'data-testid': 'namespace-select', 'aria-label': 'Namespace' });
  const main = h('main', { class: 'main', id: 'main' });
  const nav = h('nav', { class: 'side', 'aria-label': 'Resources' }, h('p', { class: 'muted pad' }, 'loading…'));
  const groups = (s) => (s.groups || []).filter((g) => g !== 'system:authenticated').join(', ');
  const header = h('header', { class: 'top' },
    h('a', { class: 'brand', href: '#/' }, logo(), 'ferrokube'),
    h('label', { class: 'ns' }, h('span', { class: 'muted' }, 'Namespace'), nsSelect),
    h('span', { class: 'grow' }),
    h('button', { class: 'icon', title: 'Switch light/dark', 'aria-label': 'Switch light/dark', onclick: toggleTheme }, '◐'),
    h('span', { class: 'user', title: groups(session) }, h('span', { 'data-testid': 'user-name' }, session.username || '')),
    h('button', { 'data-testid': 'logout', onclick: logout }, 'Log out'));
  clear(root).append(h('div', { class: 'shell' }, header, nav, main));
  shell = { main, nav, nsSelect, names: new Set() };
  nsSelect.addEventListener('change', () => {
    const r = current();
    const q = new URLSearchParams(r.query);
    let ns = nsSelect.value;
    if (ns === OTHER) {
      // For users who may not list namespaces: type one.
      ns = (prompt('Namespace') || '').trim();
      if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns)) { fillNamespaces(); return; }
    }
    if (ns) q.set('ns', ns); else q.delete('ns');
    const qs = q.toString();
    location.hash = '#' + r.path + (qs ? '?' + qs : '');
  });
  fillNamespaces();
  nsWatch = watch('/api/v1/namespaces', {
    table: true,
    onEvent(type, t) {
      for (const row of t.rows || []) {
        const name = row.object && row.object.metadata ? row.object.metadata.name : row.cells[0];
        if (type === 'DELETED') shell.names.delete(name); else shell.names.add(name);
      }
      scheduleNamespaces();
    },
    onSync: scheduleNamespaces,
    onError(e, fatal) {
      if (fatal && shell) { shell.namesForbidden = true; shell.names.add('default'); scheduleNamespaces(); }
    },
  });
  loadSidebar();
  crdWatch = watch('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', {
    table: true,
    onEvent(type) { if (crdSynced && type !== 'MODIFIED') refreshSidebarSoon(); },
    onSync() { crdSynced = true; },
  });
  let crdSynced = false;
}

let sidebarTimer = 0;
function refreshSidebarSoon() {
  clearTimeout(sidebarTimer);
  // A new CRD is served a moment after it is created.
  sidebarTimer = setTimeout(() => { invalidate(); loadSidebar(); }, 1500);
}

let nsFrame = 0;
function scheduleNamespaces() {
  if (!nsFrame) nsFrame = requestAnimationFrame(() => { nsFrame = 0; fillNamespaces(); });
}

function fillNamespaces() {
  if (!shell) return;
  const sel = shell.nsSelect;
  const want = current().ns;
  const names = new Set(shell.names);
  if (want) names.add(want);
  const sorted = Array.from(names).sort();
  const key = sorted.join('\n') + (shell.namesForbidden ? '\nother' : '');
  if (sel.dataset.key !== key) {
    clear(sel).append(h('option', { value: '' }, 'All namespaces'), ...sorted.map((n) => h('option', { value: n }, n)),
      shell.namesForbidden ? h('option', { value: OTHER }, 'Other…') : '');
    sel.dataset.key = key;
  }
  sel.value = want;
}

async function loadSidebar() {
  let d;
  try {
    d = await discovery();
  } catch (e) {
    if (shell) clear(shell.nav).append(h('p', { class: 'error pad' }, errorText(e)));
    return;
  }
  if (!shell) return;
  const nav = clear(shell.nav);
  nav.append(h('a', { href: '#/', class: 'nav-item', 'data-path': '/' }, 'Overview'));
  for (const s of sections(d)) {
    const items = s.items.map((r) => h('a', { class: 'nav-item', href: href(listPath(r)), 'data-path': listPath(r), title: `${r.resource}.${r.group || 'core'}/${r.version}` }, plural(r)));
    if (s.other) nav.append(h('details', { class: 'nav-group' }, h('summary', null, s.title), items));
    else nav.append(h('div', { class: 'nav-group' }, h('h4', null, s.title), items));
  }
  markNav();
}

function markNav() {
  if (!shell) return;
  const r = current();
  const base = r.page === 'overview' ? '/' : r.resource ? `/r/${r.group}/${r.version}/${r.resource}` : '';
  for (const a of shell.nav.querySelectorAll('a.nav-item')) {
    const on = a.dataset.path === base;
    a.classList.toggle('active', on);
    if (on) { a.setAttribute('aria-current', 'page'); const det = a.closest('details'); if (det) det.open = true; } else a.removeAttribute('aria-current');
    // keep the namespace in the links
    if (a.dataset.path !== '/') a.setAttribute('href', href(a.dataset.path));
  }
}

// ----------------------------------------------------------------- router
let lastKey = '';
function route() {
  if (!session || !shell) return;
  if (/^#code=/.test(location.hash)) { function showKeys() {
  const keys = [['/', 'filter the list'], ['j / k', 'next / previous row'], ['Enter', 'open the selected row'],
    ['l', 'logs of the selected pod'], ['s', 'shell into the selected pod'], ['e', 'edit the selected object'],
    ['Esc', 'leave the filter, close a dialog'], ['?', 'these keys']];
  modal('Keyboard', h('table', { class: 'grid small' }, h('tbody', null,
    keys.map(([k, what]) => h('tr', null, h('td', null, h('kbd', null, k)), h('td', null, what))))), [], 'Close');
}

boot(); return; }
  const r = current();
  const key = r.path + '|' + r.ns + '|' + (r.query.get('container') || '');
  if (key === lastKey && page) return;
  lastKey = key;
  if (page) { page.dispose(); page = null; }
  document.querySelectorAll('.overlay').forEach((o) => o.remove());
  forgetReviews(); // RBAC may have changed: each page asks again
  fillNamespaces();
  markNav();
  const main = shell.main;
  switch (r.page) {
    case 'overview': page = overviewPage(main, r); break;
    case 'list': page = listPage(main, r); break;
    case 'detail': page = detailPage(main, r); break;
    case 'logs': page = toolPage(main, r, 'logs'); break;
    case 'exec': page = toolPage(main, r, 'exec'); break;
    default:
      clear(main).append(h('div', { class: 'page' }, h('h1', null, 'Not found'), h('p', null, h('a', { href: '#/' }, 'Overview'))));
      page = { dispose() {} };
  }
}

window.addEventListener('hashchange', () => { lastKey = lastKey === '' ? '' : lastKey; route(); });

// --------------------------------------------------------------- keyboard
document.addEventListener('keydown', (e) => {
  if (!page || !session || e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || (t.closest && t.closest('[data-testid=terminal], .overlay')))) return;
  if (document.querySelector('.overlay')) return;
  switch (e.key) {
    case '/': if (page.focusFilter) { e.preventDefault(); page.focusFilter(); } break;
    case 'j': if (page.move) { e.preventDefault(); page.move(1); } break;
    case 'k': if (page.move) { e.preventDefault(); page.move(-1); } break;
    case 'Enter': if (page.open && !(t && t.tagName === 'A') && !(t && t.tagName === 'BUTTON')) { e.preventDefault(); page.open(); } break;
    case 'l': case 's': case 'e': if (page.shortcut) { e.preventDefault(); page.shortcut(e.key); } break;
    case '?': e.preventDefault(); showKeys(); break;
    default:
  }
});

function showKeys() {
  const keys = [['/', 'filter the list'], ['j / k', 'next / previous row'], ['Enter', 'open the selected row'],
    ['l', 'logs of the selected pod'], ['s', 'shell into the selected pod'], ['e', 'edit the selected object'],
    ['Esc', 'leave the filter, close a dialog'], ['?', 'these keys']];
  modal('Keyboard', h('table', { class: 'grid small' }, h('tbody', null,
    keys.map(([k, what]) => h('tr', null, h('td', null, h('kbd', null, k)), h('td', null, what))))), [], 'Close');
}

boot();
