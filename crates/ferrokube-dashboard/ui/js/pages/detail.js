// A detail page: one watch of the object (fieldSelector metadata.name),
// a summary by kind, the YAML (managedFields hidden), events, related
// objects, and the actions the user's RBAC allows.

import { h, clear, age, errorText } from '../dom.js';
import { watchObject } from '../watch.js';
import { resourcePath } from '../api.js';
import { discovery, lookup } from '../discovery.js';
import { toYaml, withoutManagedFields } from '../yaml.js';
import { href, detailPath, listPath, go } from '../route.js';
import * as act from '../actions.js';
import { section, kv, labels, conditions, simpleTable, eventsPart, relatedPart, selectorString } from './parts.js';
import { watchMetrics, fmtCpu, fmtMem, quantity } from '../metrics.js';

const POD = { group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true };
const RS = { group: 'apps', version: 'v1', resource: 'replicasets', kind: 'ReplicaSet', namespaced: true };

export function detailPage(el, route) {
  let disposed = false;
  let res = null;
  let obj = null;
  let parts = []; // live sub-parts (events, related), made once per uid
  let partsUid = null;
  let actionsBuilt = false;
  let revealed = false;
  let tab = route.query.get('tab') || 'summary';
  const cleanups = [];

  const heading = h('h1', null, route.name);
  const sub = h('div', { class: 'sub muted' });
  const actions = h('div', { class: 'actions', 'data-testid': 'actions' });
  const banner = h('div', { class: 'banner', hidden: true });
  const summary = h('div', { class: 'summary', role: 'tabpanel' });
  const yaml = h('pre', { class: 'code yaml', 'data-testid': 'detail-yaml', role: 'tabpanel', hidden: true });
  const extraPanel = h('div', { class: 'tool-panel', role: 'tabpanel', hidden: true });
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const related = h('div', { class: 'related-parts' });
  const back = h('a', { class: 'back', href: href(listPath({ group: route.group === 'core' ? '' : route.group, version: route.version, resource: route.resource })) }, '← ' + route.resource);
  clear(el).append(h('div', { class: 'page detail-page' },
    back, h('div', { class: 'toolbar' }, h('div', null, heading, sub), h('span', { class: 'grow' }), actions),
    banner, tabs, summary, yaml, extraPanel, related));

  const isPod = () => res && res.resource === 'pods' && !res.group;
  let toolDispose = null;

  function showTab(name) {
    tab = name;
    for (const b of tabs.children) b.setAttribute('aria-selected', String(b.dataset.tab === name));
    summary.hidden = name !== 'summary';
    related.hidden = name !== 'summary';
    yaml.hidden = name !== 'yaml';
    extraPanel.hidden = name !== 'logs' && name !== 'terminal';
    if (toolDispose) { toolDispose(); toolDispose = null; }
    if ((name === 'logs' || name === 'terminal') && obj) {
      clear(extraPanel);
      const holder = h('div', { class: 'tool' });
      extraPanel.append(holder);
      mountTool(name === 'logs' ? 'logs' : 'exec', holder, obj, route.query.get('container')).then((d) => {
        if (tab === name && !disposed) toolDispose = d; else if (d) d();
      });
    }
  }

  function buildTabs() {
    clear(tabs);
    const names = [['summary', 'Summary'], ['yaml', 'YAML']];
    if (isPod()) names.push(['logs', 'Logs'], ['terminal', 'Terminal']);
    for (const [k, label] of names) {
      tabs.append(h('button', { role: 'tab', 'data-tab': k, 'data-testid': 'tab-' + k, 'aria-selected': String(k === tab), onclick: () => showTab(k) }, label));
    }
  }

  discovery().then((d) => {
    if (disposed) return;
    res = lookup(d, route.group, route.version, route.resource);
    document.title = `${route.name} · ${res.kind} · ferrokube`;
    buildTabs();
    const collection = resourcePath(res, res.namespaced ? route.namespace : '');
    const opts = {
      onObject(o, type) {
        if (disposed) return;
        if (!o) {
          banner.hidden = false;
          banner.className = 'banner warn';
          banner.textContent = type === 'DELETED' ? `${res.kind} ${route.name} was deleted.` : `${res.kind} ${route.name} not found.`;
          if (obj) { obj = null; }
          actions.querySelectorAll('button').forEach((b) => { b.disabled = true; });
          return;
        }
        banner.hidden = true;
        obj = o;
        update();
      },
      onError(e, fatal) {
        banner.hidden = false;
        banner.className = 'banner ' + (fatal ? 'error' : 'warn');
        banner.textContent = fatal ? errorText(e) : `Reconnecting: ${errorText(e)}`;
        if (fatal && e.code === 403) {
          banner.setAttribute('data-testid', 'forbidden');
          clear(summary);
          yaml.textContent = '';
          tabs.hidden = true;
        }
      },
    };
    const w = watchObject(collection, route.name, opts);
    cleanups.push(() => w.close());
  }, (e) => {
    banner.hidden = false;
    banner.className = 'banner error';
    banner.textContent = errorText(e);
  });

  function update() {
    const m = obj.metadata;
    heading.textContent = m.name;
    sub.textContent = `${res.kind}${m.namespace ? ' · ' + m.namespace : ''} · created ${age(m.creationTimestamp)} ago`;
    renderYaml();
    clear(summary).append(...renderSummary());
    if (partsUid !== m.uid) {
      parts.forEach((p) => p.close());
      clear(related);
      parts = relatedParts();
      parts.forEach((p) => related.append(p.el));
      partsUid = m.uid;
    }
    if (!actionsBuilt) {
      actionsBuilt = true;
      buildActions().then(() => {
        if (route.query.get('action') === 'edit' && obj) {
          history.replaceState(null, '', location.pathname + href(detailPath(res, m.namespace, m.name)));
          if (btns.edit && !btns.edit.disabled) act.editDialog(res, obj);
        }
      });
      if (tab !== 'summary') showTab(tab);
    }
    syncActions();
  }

  function renderYaml() {
    let shown = withoutManagedFields(obj);
    if (res.resource === 'secrets' && !res.group && !revealed && (shown.data || shown.stringData)) {
      shown = { ...shown };
      for (const f of ['data', 'stringData']) {
        if (shown[f]) shown[f] = Object.fromEntries(Object.keys(shown[f]).map((k) => [k, '••••••']));
      }
    }
    yaml.textContent = toYaml(shown);
  }

  // ------------------------------------------------------------- actions
  const btns = {};
  async function buildActions() {
    const m = obj.metadata;
    const ns = m.namespace;
    const r = res.resource;
    const apps = res.group === 'apps';
    const list = [];
    const hasScale = res.subresources.includes('scale') || (apps && (r === 'deployments' || r === 'statefulsets' || r === 'replicasets'));
    if (isPod()) {
      list.push(['logs', 'Logs', act.can('get', res, ns, m.name, 'log'), () => go(detailPath(res, ns, m.name) + '/logs')]);
      list.push(['exec', 'Shell', act.can('create', res, ns, m.name, 'exec'), () => go(detailPath(res, ns, m.name) + '/exec')]);
    }
    if (hasScale) list.push(['scale', 'Scale', act.can('patch', res, ns, m.name, 'scale'), () => act.scaleDialog(res, obj)]);
    if (apps && (r === 'deployments' || r === 'statefulsets' || r === 'daemonsets')) {
      const p = act.can('patch', res, ns, m.name);
      list.push(['restart', 'Restart', p, () => act.restart(res, obj)]);
      list.push(['undo', 'Roll back', p, () => act.undoDialog(res, obj)]);
      if (r === 'deployments') {
        list.push(['pause', 'Pause', p, () => act.setPaused(res, obj, true)]);
        list.push(['resume', 'Resume', p, () => act.setPaused(res, obj, false)]);
      }
    }
    if (r === 'nodes' && !res.group) {
      const p = act.can('patch', res, '', m.name);
      list.push(['cordon', 'Cordon', p, () => act.setCordon(res, obj, true)]);
      list.push(['uncordon', 'Uncordon', p, () => act.setCordon(res, obj, false)]);
    }
    if (res.verbs.includes('update') || res.guessed) list.push(['edit', 'Edit', act.can('update', res, ns, m.name), () => act.editDialog(res, obj)]);
    if (res.verbs.includes('delete') || res.guessed) {
      list.push(['delete', 'Delete', act.can('delete', res, ns, m.name), () => act.deleteDialog(res, obj, () => go(listPath(res)))]);
    }
    const allowed = await Promise.all(list.map((x) => x[2]));
    if (disposed) return;
    list.forEach(([id, label, , fn], i) => {
      const b = act.actionButton('action-' + id, label, allowed[i], () => { if (obj) fn(); });
      if (id === 'delete') b.classList.add('danger');
      btns[id] = b;
      actions.append(b);
    });
    syncActions();
  }

  function syncActions() {
    if (!obj) return;
    const spec = obj.spec || {};
    if (btns.pause) { btns.pause.hidden = !!spec.paused; btns.resume.hidden = !spec.paused; }
    if (btns.cordon) { btns.cordon.hidden = !!spec.unschedulable; btns.uncordon.hidden = !spec.unschedulable; }
  }

  // ------------------------------------------------------------- summary
  function renderSummary() {
    const m = obj.metadata;
    const meta = section('Metadata', kv([
      ['Name', m.name], ['Namespace', m.namespace], ['UID', m.uid], ['Created', m.creationTimestamp],
      ['Labels', labels(m.labels)], ['Annotations', Object.keys(m.annotations || {}).length ? labels(
        Object.fromEntries(Object.entries(m.annotations).filter(([k]) => k !== 'kubectl.kubernetes.io/last-applied-configuration'))) : null],
      ['Controlled by', (m.ownerReferences || []).filter((o) => o.controller).map((o) => `${o.kind}/${o.name}`).join(', ')],
    ]));
    const k = res.group + '/' + res.resource;
    const out = [];
    switch (k) {
      case '/pods': out.push(...podSummary(obj)); break;
      case 'apps/deployments': case 'apps/statefulsets': case 'apps/daemonsets': case 'apps/replicasets':
        out.push(workloadSummary(obj, res.resource)); break;
      case '/nodes': out.push(...nodeSummary(obj)); break;
      case '/secrets': out.push(secretSummary(obj)); break;
      case '/configmaps': out.push(configMapSummary(obj)); break;
      case '/services': out.push(serviceSummary(obj)); break;
      case '/namespaces': out.push(section('Status', kv([['Phase', obj.status && obj.status.phase]]))); break;
      default:
        // Any other kind: its top-level fields (spec, rules, data, …) as YAML.
        for (const [f, v] of Object.entries(obj)) {
          if (['apiVersion', 'kind', 'metadata'].includes(f) || v === null || v === undefined) continue;
          if (f === 'status' && v && typeof v === 'object' && Object.keys(v).length === 1 && v.conditions) continue;
          out.push(section(f, h('pre', { class: 'code' }, typeof v === 'object' ? toYaml(v) : String(v))));
        }
    }
    out.push(meta);
    const conds = obj.status && obj.status.conditions;
    if (Array.isArray(conds) && conds.length) out.push(section('Conditions', conditions(conds)));
    return out;
  }

  function podSummary(p) {
    const st = p.status || {};
    const statuses = new Map();
    for (const c of [...(st.initContainerStatuses || []), ...(st.containerStatuses || []), ...(st.ephemeralContainerStatuses || [])]) statuses.set(c.name, c);
    const ns = p.metadata.namespace;
    const containerRows = [...((p.spec.initContainers || []).map((c) => [c, true])), ...((p.spec.containers || []).map((c) => [c, false]))].map(([c, init]) => {
      const s = statuses.get(c.name) || {};
      const base = detailPath(res, ns, p.metadata.name);
      return [
        h('span', null, c.name, init ? h('span', { class: 'muted' }, ' (init)') : ''), c.image,
        stateText(s.state), s.ready ? 'yes' : 'no', String(s.restartCount || 0),
        s.lastState && Object.keys(s.lastState).length ? stateText(s.lastState) : '',
        h('span', { class: 'links' }, h('a', { href: href(base + '/logs', { container: c.name }) }, 'logs'), ' ',
          init ? '' : h('a', { href: href(base + '/exec', { container: c.name }) }, 'shell')),
      ];
    });
    return [
      section('Status', kv([
        ['Phase', st.phase], ['Reason', st.reason], ['Message', st.message], ['Node', p.spec.nodeName ? h('a', { href: href(detailPath({ group: '', version: 'v1', resource: 'nodes' }, '', p.spec.nodeName)) }, p.spec.nodeName) : ''],
        ['Pod IP', st.podIP], ['Host IP', st.hostIP], ['QoS class', st.qosClass], ['Started', st.startTime],
        ['Service account', p.spec.serviceAccountName],
      ])),
      section('Containers', simpleTable(['Name', 'Image', 'State', 'Ready', 'Restarts', 'Last state', ''], containerRows, { 'data-testid': 'containers' })),
    ];
  }

  function workloadSummary(o, r) {
    const s = o.spec || {};
    const st = o.status || {};
    const pairs = [];
    if (r === 'daemonsets') {
      pairs.push(['Desired', st.desiredNumberScheduled], ['Current', st.currentNumberScheduled], ['Ready', st.numberReady],
        ['Up-to-date', st.updatedNumberScheduled], ['Available', st.numberAvailable]);
    } else {
      pairs.push(['Replicas', `${s.replicas ?? 1} desired · ${st.updatedReplicas ?? 0} updated · ${st.readyReplicas ?? 0} ready · ${st.availableReplicas ?? 0} available`]);
    }
    pairs.push(['Selector', selectorString(s.selector)]);
    if (s.strategy) pairs.push(['Strategy', s.strategy.type]);
    if (s.updateStrategy) pairs.push(['Update strategy', s.updateStrategy.type]);
    if (r === 'deployments') {
      pairs.push(['Paused', s.paused ? 'yes' : 'no'], ['Revision', (o.metadata.annotations || {})['deployment.kubernetes.io/revision']]);
    }
    pairs.push(['Images', ((s.template && s.template.spec && s.template.spec.containers) || []).map((c) => c.image).join(', ')]);
    return section('Workload', kv(pairs.map(([a, b]) => [a, b === undefined ? '0' : String(b)])));
  }

  function nodeSummary(n) {
    const st = n.status || {};
    const info = st.nodeInfo || {};
    const cap = st.capacity || {};
    const alloc = st.allocatable || {};
    const usage = h('span', { 'data-usage': '' }, nodeUsage(n));
    return [
      section('Node', kv([
        ['Unschedulable', n.spec && n.spec.unschedulable ? 'yes (cordoned)' : 'no'],
        ['Addresses', (st.addresses || []).map((a) => `${a.type}: ${a.address}`).join(', ')],
        ['Usage', usage],
        ['Capacity', `cpu ${cap.cpu || '?'} · memory ${cap.memory || '?'} · pods ${cap.pods || '?'}`],
        ['Allocatable', `cpu ${alloc.cpu || '?'} · memory ${alloc.memory || '?'} · pods ${alloc.pods || '?'}`],
        ['OS / arch', `${info.osImage || ''} ${info.architecture || ''}`], ['Kernel', info.kernelVersion],
        ['Container runtime', info.containerRuntimeVersion], ['Kubelet', info.kubeletVersion],
        ['Pod CIDR', n.spec && n.spec.podCIDR],
        ['Taints', ((n.spec && n.spec.taints) || []).map((t) => `${t.key}${t.value ? '=' + t.value : ''}:${t.effect}`).join(', ') || 'none'],
      ])),
    ];
  }

  function secretSummary(s) {
    const data = s.data || {};
    const keys = Object.keys(data).sort();
    const rows = keys.map((k) => {
      let value = '';
      try { value = decodeBase64(data[k]); } catch { value = '(binary)'; }
      return h('tr', null, h('th', { scope: 'row' }, k),
        h('td', null, h('code', { 'data-testid': 'secret-value', 'data-key': k, class: 'secret' }, revealed ? value : '••••••')));
    });
    const btn = h('button', { 'data-testid': 'secret-reveal', onclick: () => { revealed = !revealed; renderYaml(); clear(summary).append(...renderSummary()); } }, revealed ? 'Hide values' : 'Reveal values');
    return section('Data', kv([['Type', s.type]]), keys.length ? btn : '',
      h('table', { class: 'grid small kvtable' }, h('tbody', null, rows.length ? rows : h('tr', null, h('td', { class: 'muted' }, 'no data')))));
  }

  function configMapSummary(c) {
    const rows = Object.entries(c.data || {}).map(([k, v]) => h('div', { class: 'cm-entry' }, h('h4', null, k), h('pre', { class: 'code' }, v)));
    return section('Data', rows.length ? rows : h('p', { class: 'muted' }, 'no data'));
  }

  function serviceSummary(svc) {
    const s = svc.spec || {};
    return section('Service', kv([
      ['Type', s.type], ['Cluster IP', (s.clusterIPs || [s.clusterIP]).filter(Boolean).join(', ')],
      ['External IPs', (s.externalIPs || []).join(', ')],
      ['Ports', (s.ports || []).map((p) => `${p.name ? p.name + ' ' : ''}${p.port}${p.nodePort ? ':' + p.nodePort : ''}/${p.protocol || 'TCP'} → ${p.targetPort ?? p.port}`).join(', ')],
      ['Selector', Object.entries(s.selector || {}).map(([k, v]) => `${k}=${v}`).join(',') || 'none'],
      ['Session affinity', s.sessionAffinity],
    ]));
  }

  function nodeUsage(n) {
    const alloc = (n.status && n.status.allocatable) || {};
    const x = nodeMetrics && nodeMetrics.map.get('/' + n.metadata.name);
    return x ? `CPU ${fmtCpu(x.cpu)} of ${fmtCpu(quantity(alloc.cpu))} · memory ${fmtMem(x.mem)} of ${fmtMem(quantity(alloc.memory))}` : '—';
  }

  let nodeMetrics = null;
  const cleanupsOnce = [];
  function relatedParts() {
    cleanupsOnce.splice(0).forEach((f) => f());
    const m = obj.metadata;
    const out = [];
    const r = res.group + '/' + res.resource;
    const s = obj.spec || {};
    if (r === 'apps/deployments') {
      out.push(relatedPart('ReplicaSets', RS, m.namespace, { labelSelector: selectorString(s.selector) }));
    }
    if (['apps/deployments', 'apps/statefulsets', 'apps/daemonsets', 'apps/replicasets', 'batch/jobs'].includes(r) && s.selector) {
      out.push(relatedPart('Pods', POD, m.namespace, { labelSelector: selectorString(s.selector) }));
    }
    if (r === '/services' && s.selector && Object.keys(s.selector).length) {
      out.push(relatedPart('Pods', POD, m.namespace, { labelSelector: selectorString({ matchLabels: s.selector }) }));
    }
    if (r === '/nodes') {
      nodeMetrics = watchMetrics('nodes', '', () => {
        const u = summary.querySelector('[data-usage]');
        if (u && obj) u.textContent = nodeUsage(obj);
      });
      cleanupsOnce.push(() => nodeMetrics.close());
    }
    if (r === '/nodes') out.push(relatedPart('Pods', POD, '', { fieldSelector: 'spec.nodeName=' + m.name }));
    if (!(r === '/events')) out.push(eventsPart(obj));
    return out;
  }

  return {
    dispose() {
      disposed = true;
      cleanups.forEach((f) => f());
      cleanupsOnce.forEach((f) => f());
      parts.forEach((p) => p.close());
      if (toolDispose) toolDispose();
    },
    shortcut(key) {
      if (!obj || !res) return;
      const base = detailPath(res, obj.metadata.namespace, obj.metadata.name);
      if (key === 'e' && btns.edit && !btns.edit.disabled) act.editDialog(res, obj);
      else if (key === 'l' && isPod()) go(base + '/logs');
      else if (key === 's' && isPod()) go(base + '/exec');
    },
  };
}

function stateText(state) {
  if (!state) return '';
  if (state.running) return `Running since ${age(state.running.startedAt)}`;
  if (state.waiting) return `Waiting: ${state.waiting.reason || ''}`;
  if (state.terminated) {
    const t = state.terminated;
    return `Terminated: ${t.reason || ''} (exit ${t.exitCode})${t.finishedAt ? ' ' + age(t.finishedAt) + ' ago' : ''}`;
  }
  return '';
}

function decodeBase64(b64) {
  const bin = atob(b64);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/** Mounts the logs or the terminal of dash-term's modules, if they are there. */
export async function mountTool(kind, el, pod, container) {
  const containers = ((pod.spec && pod.spec.containers) || []).map((c) => c.name);
  const chosen = container && containers.includes(container) ? container : containers[0];
  try {
    if (kind === 'logs') {
      const mod = await import('../logs.js');
      return mod.mountLogs(el, { namespace: pod.metadata.namespace, pod: pod.metadata.name, containers, container: chosen });
    }
    const mod = await import('../terminal.js');
    return mod.mountTerminal(el, { namespace: pod.metadata.namespace, pod: pod.metadata.name, container: chosen });
  } catch (e) {
    clear(el).append(h('div', { class: 'banner error' }, `The ${kind === 'logs' ? 'log viewer' : 'terminal'} could not load: ${errorText(e)}`));
    return null;
  }
}
