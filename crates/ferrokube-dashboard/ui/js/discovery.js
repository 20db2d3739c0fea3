// Every served kind, from aggregated discovery (apidiscovery.k8s.io/v2,
// one request each for /api and /apis) or, where the server has none, the
// legacy documents. CRDs appear like built-in kinds.

import { get } from './api.js';

const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;q=0.9';

let cache = null;
let pending = null;

/** {list: [res], byKey: Map('group/version/resource' → res), byKind} */
export function discovery() {
  if (cache) return Promise.resolve(cache);
  if (!pending) {
    pending = load().then((d) => { cache = d; pending = null; return d; }, (e) => { pending = null; throw e; });
  }
  return pending;
}

export function invalidate() {
  cache = null;
}

function entry(group, version, r, preferred) {
  return {
    group, version, resource: r.resource, kind: r.responseKind ? r.responseKind.kind : r.kind,
    namespaced: r.scope ? r.scope === 'Namespaced' : !!r.namespaced,
    verbs: r.verbs || [], shortNames: r.shortNames || [], categories: r.categories || [],
    subresources: (r.subresources || []).map((s) => s.subresource), preferred,
  };
}

async function aggregated(path) {
  const d = await get(path, { accept: AGGREGATED });
  if (!d || d.kind !== 'APIGroupDiscoveryList') return null;
  const out = [];
  for (const g of d.items || []) {
    const group = (g.metadata && g.metadata.name) || '';
    (g.versions || []).forEach((v, i) => {
      for (const r of v.resources || []) out.push(entry(group, v.version, r, i === 0));
    });
  }
  return out;
}

async function legacy() {
  const out = [];
  const add = (group, version, list, preferred) => {
    const subs = new Map();
    for (const r of list.resources || []) {
      const [base, sub] = r.name.split('/');
      if (sub) { if (!subs.has(base)) subs.set(base, []); subs.get(base).push(sub); }
    }
    for (const r of list.resources || []) {
      if (r.name.includes('/')) continue;
      out.push(entry(group, version, { ...r, resource: r.name, subresources: (subs.get(r.name) || []).map((s) => ({ subresource: s })) }, preferred));
    }
  };
  const core = await get('/api');
  for (const v of core.versions || []) add('', v, await get('/api/' + v), v === core.versions[0]);
  const groups = await get('/apis');
  const jobs = [];
  for (const g of groups.groups || []) {
    for (const v of g.versions || []) {
      jobs.push(get('/apis/' + v.groupVersion).then((l) => add(g.name, v.version, l,
        g.preferredVersion && g.preferredVersion.version === v.version), () => {}));
    }
  }
  await Promise.all(jobs);
  return out;
}

async function load() {
  let list = null;
  try {
    const [core, groups] = await Promise.all([aggregated('/api'), aggregated('/apis')]);
    if (core && groups) list = core.concat(groups);
  } catch (e) {
    if (e.code === 401) throw e;
  }
  if (!list) list = await legacy();
  const byKey = new Map();
  const byKind = new Map();
  for (const r of list) {
    byKey.set(keyOf(r.group, r.version, r.resource), r);
    const gk = r.group + '/' + r.kind;
    if (r.preferred || !byKind.has(gk)) byKind.set(gk, r);
    byKind.set(r.group + '/' + r.version + '/' + r.kind, r);
  }
  return { list, byKey, byKind };
}

export function keyOf(group, version, resource) {
  return (group || 'core') + '/' + version + '/' + resource;
}

/** A resource described by the route (group 'core' = ''), found or guessed. */
export function lookup(d, group, version, resource) {
  const g = group === 'core' ? '' : group;
  return d.byKey.get(keyOf(g, version, resource)) ||
    { group: g, version, resource, kind: resource, namespaced: true, verbs: [], subresources: [], categories: [], shortNames: [], guessed: true };
}

/** The resource for an apiVersion + kind (for create/apply). */
export function forKind(d, apiVersion, kind) {
  const [g, v] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return d.byKind.get(g + '/' + v + '/' + kind) || null;
}

// Sidebar sections: well-known kinds in kubectl's order, the rest by group.
export const SECTIONS = [
  ['Workloads', [['apps', 'deployments'], ['apps', 'statefulsets'], ['apps', 'daemonsets'], ['apps', 'replicasets'],
    ['batch', 'jobs'], ['batch', 'cronjobs'], ['', 'pods']]],
  ['Network', [['', 'services'], ['discovery.k8s.io', 'endpointslices'], ['networking.k8s.io', 'ingresses'],
    ['networking.k8s.io', 'networkpolicies']]],
  ['Config & storage', [['', 'configmaps'], ['', 'secrets'], ['autoscaling', 'horizontalpodautoscalers'],
    ['', 'persistentvolumeclaims'], ['', 'persistentvolumes'], ['storage.k8s.io', 'storageclasses']]],
  ['Cluster', [['', 'namespaces'], ['', 'nodes'], ['', 'events'], ['', 'serviceaccounts'],
    ['rbac.authorization.k8s.io', 'roles'], ['rbac.authorization.k8s.io', 'rolebindings'],
    ['rbac.authorization.k8s.io', 'clusterroles'], ['rbac.authorization.k8s.io', 'clusterrolebindings'],
    ['apiextensions.k8s.io', 'customresourcedefinitions']]],
];

/** The preferred version of each listable resource, grouped for the sidebar. */
export function sections(d) {
  const preferred = new Map();
  for (const r of d.list) {
    if (!r.verbs.includes('list') || !r.verbs.includes('watch')) continue;
    if (r.group === 'events.k8s.io') continue; // core Events are listed
    const gr = r.group + '/' + r.resource;
    if (r.preferred || !preferred.has(gr)) preferred.set(gr, r);
  }
  const used = new Set();
  const out = [];
  for (const [title, items] of SECTIONS) {
    const rs = [];
    for (const [g, res] of items) {
      const r = preferred.get(g + '/' + res);
      if (r) { rs.push(r); used.add(g + '/' + res); }
    }
    if (rs.length) out.push({ title, items: rs });
  }
  const rest = new Map();
  for (const [gr, r] of preferred) {
    if (used.has(gr)) continue;
    const t = r.group || 'core';
    if (!rest.has(t)) rest.set(t, []);
    rest.get(t).push(r);
  }
  for (const t of Array.from(rest.keys()).sort()) {
    out.push({ title: t, items: rest.get(t).sort((a, b) => (a.kind < b.kind ? -1 : 1)), other: true });
  }
  return out;
}

/** "Deployments" from "deployments"/"Deployment". */
export function plural(r) {
  const k = r.kind || r.resource;
  if (r.resource && r.kind && r.resource === r.kind.toLowerCase() + 's') return k + 's';
  if (/y$/.test(k) && r.resource.endsWith('ies')) return k.slice(0, -1) + 'ies';
  if (r.resource.endsWith('es') && !r.resource.endsWith(k.toLowerCase() + 's')) return k + 'es';
  return k + (k.endsWith('s') ? '' : 's');
}
