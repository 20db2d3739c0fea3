// The one way the UI talks to the server: same-origin fetches with the
// session cookie, the CSRF token on writes, Status errors turned into
// messages. The CSRF token lives only in this module's memory.

let csrfToken = '';
let onUnauthorized = () => {};

export function setSession(s) {
  csrfToken = (s && s.csrfToken) || '';
}

/** Called once when any request answers 401 (the session ended). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(code, status, fallback) {
    const msg = (status && status.message) || fallback || ('HTTP ' + code);
    super(msg);
    this.code = code;
    this.reason = (status && status.reason) || '';
    this.status = status || null;
  }
}

export const TABLE_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json';

/**
 * A request. `opts`: body (object → JSON, string as is), type (content type),
 * accept, signal, query (object). Resolves to the parsed JSON (or text).
 */
export async function request(method, path, opts = {}) {
  const headers = { Accept: opts.accept || 'application/json' };
  let body;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['Content-Type'] = opts.type || 'application/json';
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let url = path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    if (s) url += (url.includes('?') ? '&' : '?') + s;
  }
  const res = await fetch(url, { method, headers, body, credentials: 'same-origin', signal: opts.signal, cache: 'no-store' });
  const text = await res.text();
  let data = text;
  if ((res.headers.get('Content-Type') || '').includes('json') && text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const status = data && typeof data === 'object' && data.kind === 'Status' ? data : null;
    const err = new ApiError(res.status, status, typeof data === 'string' && data ? data.slice(0, 300) : res.statusText);
    if (res.status === 401 && !path.startsWith('/dashboard/session')) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path, opts) => request('GET', path, opts);

/** Throws an ApiError for a non-OK response that carries a Status (for streams). */
export async function errorOf(res) {
  let status = null;
  let text = '';
  try {
    text = await res.text();
    const v = JSON.parse(text);
    if (v && v.kind === 'Status') status = v;
  } catch { /* not JSON */ }
  const err = new ApiError(res.status, status, text.slice(0, 300) || res.statusText);
  if (res.status === 401) onUnauthorized(err);
  return err;
}

/** The path of a resource: core group → /api/v1, else /apis/g/v. */
export function resourcePath(r, namespace, name, sub) {
  let p = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  if (namespace && r.namespaced !== false) p += '/namespaces/' + encodeURIComponent(namespace);
  p += '/' + r.resource;
  if (name) p += '/' + encodeURIComponent(name);
  if (sub) p += '/' + sub;
  return p;
}
