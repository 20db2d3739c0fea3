// The login form: a bearer token, a kubeconfig (pasted or read from a
// file; a certificate's key is checked by the server and dropped), or a
// one-time code from `ferrokube dashboard url`.

import { h, clear, errorText } from '../dom.js';
import { request } from '../api.js';
import { parseYaml } from '../yaml.js';

export async function createSession(body) {
  return request('POST', '/dashboard/session', { body });
}

export function loginPage(root, onSession, message) {
  const token = h('input', { type: 'password', id: 'login-token', 'data-testid': 'login-token', autocomplete: 'off', spellcheck: 'false', placeholder: 'eyJhbGciOi…' });
  const kubeconfig = h('textarea', { id: 'login-kubeconfig', 'data-testid': 'login-kubeconfig', rows: '7', spellcheck: 'false', class: 'code', placeholder: 'apiVersion: v1\nkind: Config\n…' });
  const file = h('input', { type: 'file', 'data-testid': 'login-kubeconfig-file', 'aria-label': 'Kubeconfig file', accept: '.yaml,.yml,.conf,.config,text/*,*' });
  const contexts = h('datalist', { id: 'login-contexts' });
  const context = h('input', { type: 'text', id: 'login-context', 'data-testid': 'login-context', placeholder: 'current context', autocomplete: 'off', spellcheck: 'false', list: 'login-contexts' });
  // The kubeconfig's contexts as choices (read here only to list their names).
  const readContexts = () => {
    clear(contexts);
    let cfg = null;
    try { cfg = parseYaml(kubeconfig.value); } catch { return; }
    if (!cfg || typeof cfg !== 'object') return;
    for (const c of Array.isArray(cfg.contexts) ? cfg.contexts : []) {
      if (c && typeof c.name === 'string') contexts.append(h('option', { value: c.name }));
    }
    context.placeholder = typeof cfg['current-context'] === 'string' && cfg['current-context'] ? cfg['current-context'] : 'current context';
  };
  kubeconfig.addEventListener('change', readContexts);
  const code = h('input', { type: 'text', id: 'login-code', 'data-testid': 'login-code', autocomplete: 'one-time-code', spellcheck: 'false' });
  const error = h('div', { class: 'error', 'data-testid': 'login-error', role: 'alert' }, message || '');
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'login-submit' }, 'Log in');
  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    if (f.size > 1 << 20) { error.textContent = 'That file is too large for a kubeconfig.'; return; }
    kubeconfig.value = await f.text();
    readContexts();
  });
  const form = h('form', { class: 'login', autocomplete: 'off' },
    h('div', { class: 'brand big-brand' }, logo(), 'ferrokube'),
    h('p', { class: 'muted' }, 'Log in with one of these.'),
    h('label', { for: 'login-token' }, 'Bearer token'), token,
    h('div', { class: 'or' }, 'or'),
    h('label', { for: 'login-kubeconfig' }, 'Kubeconfig (token, or client certificate and key)'), kubeconfig,
    h('div', { class: 'row' }, file, h('label', { for: 'login-context', class: 'inline' }, 'Context'), context, contexts),
    h('div', { class: 'or' }, 'or'),
    h('label', { for: 'login-code' }, 'One-time code (ferrokube dashboard url)'), code,
    error, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    let body;
    if (kubeconfig.value.trim()) {
      body = { kubeconfig: kubeconfig.value };
      if (context.value.trim()) body.context = context.value.trim();
    } else if (token.value.trim()) body = { token: token.value.trim() };
    else if (code.value.trim()) body = { code: code.value.trim() };
    else { error.textContent = 'Enter a token, a kubeconfig or a one-time code.'; return; }
    submit.disabled = true;
    try {
      const s = await createSession(body);
      token.value = '';
      kubeconfig.value = '';
      onSession(s);
    } catch (err) {
      error.textContent = errorText(err);
      submit.disabled = false;
    }
  });
  clear(root).append(h('div', { class: 'login-wrap' }, form));
  document.title = 'Log in · ferrokube';
  token.focus();
}

export function logo() {
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'logo');
  svg.setAttribute('aria-hidden', 'true');
  svg.innerHTML = '<path d="M12 2l8.7 5v10L12 22l-8.7-5V7z" fill="none" stroke="currentColor" stroke-width="2"/><circle cx="12" cy="12" r="3" fill="currentColor"/>';
  return svg;
}
