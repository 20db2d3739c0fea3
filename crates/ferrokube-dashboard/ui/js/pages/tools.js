// The logs and terminal pages of a pod (the viewers are dash-term's
// logs.js and terminal.js, loaded when first needed).

import { h, clear, errorText } from '../dom.js';
import { get } from '../api.js';
import { href, detailPath } from '../route.js';
import { mountTool } from './detail.js';

const PODS = { group: '', version: 'v1', resource: 'pods' };

export function toolPage(el, route, kind) {
  let disposed = false;
  let dispose = null;
  const holder = h('div', { class: 'tool' });
  const base = detailPath(PODS, route.namespace, route.name);
  clear(el).append(h('div', { class: 'page tool-page' },
    h('div', { class: 'toolbar' },
      h('a', { class: 'back', href: href(base) }, '← pod ' + route.name),
      h('h1', null, kind === 'logs' ? 'Logs' : 'Terminal'),
      h('span', { class: 'muted' }, `${route.namespace}/${route.name}`), h('span', { class: 'grow' }),
      h('a', { class: 'button', href: href(base + (kind === 'logs' ? '/exec' : '/logs'), { container: route.query.get('container') }) }, kind === 'logs' ? 'Shell' : 'Logs')),
    holder));
  document.title = `${kind === 'logs' ? 'Logs' : 'Shell'} ${route.name} · ferrokube`;
  get(`/api/v1/namespaces/${encodeURIComponent(route.namespace)}/pods/${encodeURIComponent(route.name)}`).then(async (pod) => {
    if (disposed) return;
    const d = await mountTool(kind, holder, pod, route.query.get('container'));
    if (disposed) { if (d) d(); } else dispose = d;
  }, (e) => {
    if (!disposed) clear(holder).append(h('div', { class: 'banner error', 'data-testid': e.code === 403 ? 'forbidden' : 'error' }, errorText(e)));
  });
  return { dispose() { disposed = true; if (dispose) dispose(); } };
}
