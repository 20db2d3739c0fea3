// Small DOM helpers: element creation, toasts, modal dialogs.

/** h('div', {class: 'x', 'data-testid': 'y', onclick: fn}, child, ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let toastBox = null;
/** A short message at the bottom right; errors stay until clicked. */
export function toast(message, kind = 'info') {
  if (!toastBox || !toastBox.isConnected) {
    toastBox = h('div', { class: 'toasts' });
    document.body.append(toastBox);
  }
  const t = h('div', { class: 'toast ' + kind, 'data-testid': 'toast', role: 'status', onclick: () => t.remove() }, message);
  toastBox.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 15000 : 5000);
  return t;
}

/**
 * A modal dialog. `body` is a node; `buttons` are nodes placed in the footer
 * after the dismissing one (`dismiss`, "Cancel" by default).
 * Returns {el, close}. Escape or a click outside closes it.
 */
export function modal(title, body, buttons = [], dismiss = 'Cancel') {
  const prev = document.activeElement;
  const close = () => {
    overlay.remove();
    document.removeEventListener('keydown', onKey, true);
    if (prev && prev.focus) prev.focus();
  };
  const onKey = (e) => {
    if (e.key === 'Escape') { e.stopPropagation(); close(); }
  };
  const dialog = h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true', 'aria-label': title },
    h('div', { class: 'modal-head' }, h('h2', null, title),
      h('button', { class: 'icon', title: 'Close', 'aria-label': 'Close', onclick: close }, '×')),
    h('div', { class: 'modal-body' }, body),
    h('div', { class: 'modal-foot' }, h('button', { onclick: close }, dismiss), buttons));
  const overlay = h('div', { class: 'overlay', onmousedown: (e) => { if (e.target === overlay) close(); } }, dialog);
  document.body.append(overlay);
  document.addEventListener('keydown', onKey, true);
  const first = dialog.querySelector('input, textarea, select');
  if (first) first.focus();
  return { el: dialog, close };
}

/** Formats an error (ApiError or other) for people. */
export function errorText(e) {
  if (!e) return 'unknown error';
  return e.message || String(e);
}

/** Kubernetes' HumanDuration (the AGE column). */
export function humanDuration(ms) {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return seconds + 's';
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? minutes + 'm' : minutes + 'm' + s + 's';
  }
  if (minutes < 180) return minutes + 'm';
  const hours = Math.floor(seconds / 3600);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? hours + 'h' : hours + 'h' + m + 'm';
  }
  if (hours < 48) return hours + 'h';
  if (hours < 24 * 8) {
    const hh = hours % 24;
    return hh === 0 ? Math.floor(hours / 24) + 'd' : Math.floor(hours / 24) + 'd' + hh + 'h';
  }
  if (hours < 24 * 365 * 2) return Math.floor(hours / 24) + 'd';
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    const y = Math.floor(hours / 24 / 365);
    return dy === 0 ? y + 'y' : y + 'y' + dy + 'd';
  }
  return Math.floor(hours / 24 / 365) + 'y';
}

export function age(ts) {
  if (!ts) return '';
  const t = Date.parse(ts);
  return Number.isNaN(t) ? '' : humanDuration(Date.now() - t);
}
