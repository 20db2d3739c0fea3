// The overview: nodes, pods by status, workloads available/unavailable,
// recent Warning events and cluster CPU/memory, every figure from a watch.

import { h, clear, errorText } from '../dom.js';
import { watch } from '../watch.js';
import { href, listPath, detailPath } from '../route.js';
import { watchMetrics, quantity, fmtCpu, fmtMem } from '../metrics.js';
import { evTime, ageOf } from './parts.js';

const NODES = { group: '', version: 'v1', resource: 'nodes' };
const PODS = { group: '', version: 'v1', resource: 'pods' };
const WORKLOADS = [
  ['Deployments', { group: 'apps', version: 'v1', resource: 'deployments' }],
  ['StatefulSets', { group: 'apps', version: 'v1', resource: 'statefulsets' }],
  ['DaemonSets', { group: 'apps', version: 'v1', resource: 'daemonsets' }],
  ['Jobs', { group: 'batch', version: 'v1', resource: 'jobs' }],
];

function nsPath(prefix, ns, resource) {
  return prefix + (ns ? `/namespaces/${encodeURIComponent(ns)}` : '') + '/' + resource;
}

/** Keeps a small summary of each object of a watch; calls render when synced and after changes. */
function summarize(path, pick, render, cleanups, query) {
  const map = new Map();
  const gens = new Map();
  let gen = 0;
  const state = { map, synced: false, error: null };
  const w = watch(path, {
    query,
    onEvent(type, o) {
      const k = (o.metadata.namespace || '') + '/' + o.metadata.name;
      if (type === 'DELETED') { map.delete(k); gens.delete(k); } else { map.set(k, pick(o)); gens.set(k, gen); }
      render();
    },
    onReset() { gen++; state.synced = false; },
    onSync() {
      for (const [k, g] of gens) if (g !== gen) { gens.delete(k); map.delete(k); }
      state.synced = true;
      render();
    },
    onError(e, fatal) { if (fatal) { state.error = e; render(); } },
  });
  cleanups.push(() => w.close());
  return state;
}

export function overviewPage(el, route) {
  const cleanups = [];
  const ns = route.ns;
  document.title = 'Overview · ferrokube';
  const cards = {
    nodes: h('div', { class: 'card stat', 'data-testid': 'overview-nodes' }),
    pods: h('div', { class: 'card stat', 'data-testid': 'overview-pods' }),
    workloads: h('div', { class: 'card stat', 'data-testid': 'overview-workloads' }),
    usage: h('div', { class: 'card stat', 'data-testid': 'overview-usage' }),
    events: h('div', { class: 'card wide', 'data-testid': 'overview-events' }),
  };
  clear(el).append(h('div', { class: 'page overview' },
    h('div', { class: 'toolbar' }, h('h1', null, 'Overview'), h('span', { class: 'muted' }, ns ? `namespace ${ns}` : 'all namespaces')),
    h('div', { class: 'cards' }, cards.nodes, cards.pods, cards.workloads, cards.usage), cards.events));

  let frame = 0;
  const render = () => { if (!frame) frame = requestAnimationFrame(draw); };
  cleanups.push(() => cancelAnimationFrame(frame));

  const nodes = summarize('/api/v1/nodes', (n) => {
    const ready = ((n.status && n.status.conditions) || []).find((c) => c.type === 'Ready');
    const alloc = (n.status && n.status.allocatable) || {};
    return { name: n.metadata.name, ready: ready && ready.status === 'True', unschedulable: !!(n.spec && n.spec.unschedulable), cpu: quantity(alloc.cpu), mem: quantity(alloc.memory) };
  }, render, cleanups);
  const pods = summarize(nsPath('/api/v1', ns, 'pods'), (p) => (p.status && p.status.phase) || 'Unknown', render, cleanups);
  const workloads = WORKLOADS.map(([label, r]) => [label, r, summarize(nsPath(`/apis/${r.group}/${r.version}`, ns, r.resource), (o) => {
    const s = o.spec || {};
    const st = o.status || {};
    if (r.resource === 'daemonsets') return (st.numberAvailable || 0) >= (st.desiredNumberScheduled || 0);
    if (r.resource === 'jobs') return !((st.conditions || []).some((c) => c.type === 'Failed' && c.status === 'True'));
    return (st.availableReplicas || 0) >= (s.replicas ?? 1);
  }, render, cleanups)]);
  const events = summarize(nsPath('/api/v1', ns, 'events'), (e) => ({
    reason: e.reason, message: e.message, count: e.count, lastTimestamp: e.lastTimestamp, eventTime: e.eventTime,
    firstTimestamp: e.firstTimestamp, creationTimestamp: e.metadata.creationTimestamp, obj: e.involvedObject, namespace: e.metadata.namespace,
  }), render, cleanups, { fieldSelector: 'type=Warning' });
  const nodeMetrics = watchMetrics('nodes', '', render);
  cleanups.push(() => nodeMetrics.close());

  function waiting(s) {
    return s.error ? h('p', { class: 'muted' }, errorText(s.error)) : h('p', { class: 'muted' }, 'loading…');
  }

  function draw() {
    frame = 0;
    // Nodes
    clear(cards.nodes).append(h('h3', null, h('a', { href: href(listPath(NODES)) }, 'Nodes')));
    if (nodes.synced) {
      const all = Array.from(nodes.map.values());
      const ready = all.filter((n) => n.ready).length;
      cards.nodes.append(h('div', { class: 'big' }, `${ready}/${all.length}`), h('div', { class: 'muted' }, 'ready'),
        all.some((n) => n.unschedulable) ? h('div', { class: 'muted' }, `${all.filter((n) => n.unschedulable).length} cordoned`) : '');
      // The first few by name, not ready ones first.
      const shown = all.sort((a, b) => (a.ready - b.ready) || (a.name < b.name ? -1 : 1)).slice(0, 6);
      cards.nodes.append(h('ul', { class: 'node-list' }, shown.map((n) => h('li', null,
        h('span', { class: n.ready ? 'dot ok' : 'dot bad', title: n.ready ? 'Ready' : 'Not ready' }),
        h('a', { href: href(detailPath(NODES, '', n.name)) }, n.name), n.unschedulable ? h('span', { class: 'muted' }, ' (cordoned)') : ''))),
        all.length > shown.length ? h('div', { class: 'muted' }, `and ${all.length - shown.length} more`) : '');
    } else cards.nodes.append(waiting(nodes));
    // Pods by phase
    clear(cards.pods).append(h('h3', null, h('a', { href: href(listPath(PODS)) }, 'Pods')));
    if (pods.synced) {
      const by = new Map();
      for (const ph of pods.map.values()) by.set(ph, (by.get(ph) || 0) + 1);
      cards.pods.append(h('div', { class: 'big' }, String(pods.map.size)),
        h('div', { class: 'phases' }, ['Running', 'Pending', 'Succeeded', 'Failed', 'Unknown'].filter((p) => by.get(p))
          .map((p) => h('span', { class: 'phase ph-' + p.toLowerCase(), 'data-phase': p }, `${p} ${by.get(p)}`))));
    } else cards.pods.append(waiting(pods));
    // Workloads
    clear(cards.workloads).append(h('h3', null, 'Workloads ', h('span', { class: 'muted small-note' }, 'available ✓ unavailable ✗')));
    const rows = workloads.map(([label, r, s]) => {
      if (!s.synced) return h('tr', null, h('th', null, label), h('td', { colspan: '2', class: 'muted' }, s.error ? '—' : '…'));
      const vals = Array.from(s.map.values());
      const ok = vals.filter(Boolean).length;
      return h('tr', null, h('th', null, h('a', { href: href(listPath(r)) }, label)),
        h('td', { class: 'ok-text', title: 'available' }, `${ok} ✓`),
        h('td', { class: vals.length - ok ? 'warn-text' : 'muted', title: 'unavailable' }, `${vals.length - ok} ✗`));
    });
    cards.workloads.append(h('table', { class: 'mini' }, h('tbody', null, rows)));
    // CPU / memory
    clear(cards.usage).append(h('h3', null, 'Cluster usage'));
    let cpu = 0; let mem = 0; let have = 0;
    for (const x of nodeMetrics.map.values()) { cpu += x.cpu; mem += x.mem; have++; }
    let cpuCap = 0; let memCap = 0;
    for (const n of nodes.map.values()) { cpuCap += n.cpu || 0; memCap += n.mem || 0; }
    const pct = (a, b) => (b > 0 ? `${Math.round((100 * a) / b)}%` : '');
    cards.usage.append(kvRow('CPU', have ? `${fmtCpu(cpu)} / ${fmtCpu(cpuCap)}` : '—', have ? pct(cpu, cpuCap) : ''),
      kvRow('Memory', have ? `${fmtMem(mem)} / ${fmtMem(memCap)}` : '—', have ? pct(mem, memCap) : ''));
    // Warning events
    clear(cards.events).append(h('h3', null, 'Recent warnings'));
    if (events.synced) {
      const list = Array.from(events.map.values()).sort((a, b) => evTime(b) - evTime(a)).slice(0, 15);
      if (!list.length) cards.events.append(h('p', { class: 'muted' }, 'No warnings.'));
      else {
        cards.events.append(h('table', { class: 'grid small' },
          h('thead', null, h('tr', null, ['Age', 'Object', 'Reason', 'Message'].map((x) => h('th', null, x)))),
          h('tbody', null, list.map((e) => h('tr', null, h('td', null, ageOf(e)),
            h('td', null, objLink(e)), h('td', { class: 'warn-text' }, e.reason),
            h('td', null, e.message + ((e.count || 0) > 1 ? ` (×${e.count})` : '')))))));
      }
    } else cards.events.append(waiting(events));
  }

  return { dispose() { cleanups.forEach((f) => f()); } };
}

function kvRow(k, v, pct) {
  return h('div', { class: 'kvrow' }, h('span', { class: 'muted' }, k),
    h('span', null, h('span', { class: 'big2' }, pct || v), pct ? h('div', { class: 'muted' }, v) : ''));
}

const KIND_RES = {
  Pod: PODS, Node: NODES, Deployment: { group: 'apps', version: 'v1', resource: 'deployments' },
  ReplicaSet: { group: 'apps', version: 'v1', resource: 'replicasets' }, StatefulSet: { group: 'apps', version: 'v1', resource: 'statefulsets' },
  DaemonSet: { group: 'apps', version: 'v1', resource: 'daemonsets' }, Job: { group: 'batch', version: 'v1', resource: 'jobs' },
};

function objLink(e) {
  const o = e.obj || {};
  const text = `${o.kind || ''}/${o.name || ''}`;
  const r = KIND_RES[o.kind];
  return r ? h('a', { href: href(detailPath(r, o.namespace, o.name)) }, text) : text;
}
