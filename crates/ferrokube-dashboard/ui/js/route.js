// Hash routes (see HELPERS.md, Contract 2):
//   #/                                   overview
//   #/r/<group|core>/<version>/<resource>                 list
//   #/r/<group|core>/<version>/<resource>/<ns|_>/<name>   detail
//   .../<name>/logs?container=C, .../<name>/exec?container=C
// Any route takes ?ns=<namespace> (none or _all: all namespaces).

export function parseHash(hash) {
  let h = (hash || '').replace(/^#/, '');
  if (!h.startsWith('/')) h = '/' + h;
  const qi = h.indexOf('?');
  const path = qi >= 0 ? h.slice(0, qi) : h;
  const query = new URLSearchParams(qi >= 0 ? h.slice(qi + 1) : '');
  const parts = path.split('/').filter(Boolean).map((p) => { try { return decodeURIComponent(p); } catch { return p; } });
  const ns = query.get('ns');
  const route = { path, query, parts, ns: ns && ns !== '_all' ? ns : '' };
  if (parts[0] === 'r' && parts.length >= 4) {
    route.group = parts[1];
    route.version = parts[2];
    route.resource = parts[3];
    if (parts.length >= 6) {
      route.page = parts[6] === 'logs' ? 'logs' : parts[6] === 'exec' ? 'exec' : 'detail';
      route.namespace = parts[4] === '_' ? '' : parts[4];
      route.name = parts[5];
    } else {
      route.page = 'list';
    }
  } else {
    route.page = parts.length ? 'notfound' : 'overview';
  }
  return route;
}

/** The current route. */
export function current() {
  return parseHash(location.hash);
}

/** A hash for a route path, keeping the selected namespace. */
export function href(path, extra) {
  const q = new URLSearchParams();
  const ns = current().ns;
  if (ns) q.set('ns', ns);
  if (extra) for (const [k, v] of Object.entries(extra)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return '#' + path + (s ? '?' + s : '');
}

export function listPath(r) {
  return `/r/${r.group || 'core'}/${r.version}/${r.resource}`;
}

export function detailPath(r, namespace, name) {
  return `${listPath(r)}/${namespace ? encodeURIComponent(namespace) : '_'}/${encodeURIComponent(name)}`;
}

export function go(path, extra) {
  location.hash = href(path, extra);
}
