// Actions, sending what kubectl sends, and the RBAC checks that disable
// their buttons (SelfSubjectAccessReview).

import { request, get, resourcePath } from './api.js';
import { h, modal, toast, errorText } from './dom.js';
import { toYaml, parseYaml, splitDocuments, withoutManagedFields } from './yaml.js';
import { discovery, forKind } from './discovery.js';

export const FIELD_MANAGER = 'ferrokube-dashboard';
const MERGE = 'application/merge-patch+json';
const STRATEGIC = 'application/strategic-merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const APPLY = 'application/apply-patch+yaml';

const reviews = new Map();

export function forgetReviews() {
  reviews.clear();
}

/** Whether the user may `verb` the resource (a SelfSubjectAccessReview, cached). */
export function can(verb, res, namespace, name, subresource) {
  const attrs = {
    verb, group: res.group || '', version: res.version, resource: res.resource,
    namespace: res.namespaced === false ? '' : (namespace || ''), name: name || '', subresource: subresource || '',
  };
  const k = JSON.stringify(attrs);
  if (!reviews.has(k)) {
    const p = request('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
      body: { kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', spec: { resourceAttributes: attrs } },
    }).then((r) => !!(r.status && r.status.allowed), (e) => {
      reviews.delete(k);
      return e.code === 401 || e.code === 403 ? false : true;
    });
    reviews.set(k, p);
  }
  return reviews.get(k);
}

/** A button whose `disabled` follows an RBAC check (already resolved). */
export function actionButton(testid, label, allowed, onclick, title) {
  const b = h('button', { 'data-testid': testid, class: 'action', onclick, title: allowed ? title : 'Not allowed by RBAC' }, label);
  b.disabled = !allowed;
  return b;
}

function patch(res, obj, body, type, sub) {
  return request('PATCH', resourcePath(res, obj.metadata.namespace, obj.metadata.name, sub), {
    body, type, query: { fieldManager: type === APPLY ? FIELD_MANAGER : undefined },
  });
}

const done = (msg) => toast(msg, 'ok');
const failed = (what, e) => toast(`${what}: ${errorText(e)}`, 'error');

// ------------------------------------------------------------------ scale
export function scaleDialog(res, obj) {
  const current = (obj.spec && obj.spec.replicas) ?? 1;
  const input = h('input', { type: 'number', min: '0', step: '1', value: String(current), 'data-testid': 'scale-input', 'aria-label': 'Replicas' });
  const err = h('div', { class: 'error', 'data-testid': 'scale-error' });
  const confirm = h('button', { class: 'primary', 'data-testid': 'scale-confirm' }, 'Scale');
  const m = modal(`Scale ${obj.metadata.name}`, h('label', { class: 'field' }, 'Replicas', input, err), [confirm]);
  const submit = async () => {
    const n = Number(input.value);
    if (!Number.isInteger(n) || n < 0) { err.textContent = 'replicas must be a whole number, 0 or more'; return; }
    confirm.disabled = true;
    try {
      await patch(res, obj, { spec: { replicas: n } }, MERGE, 'scale');
      m.close();
      done(`${obj.metadata.name} scaled to ${n}`);
    } catch (e) {
      err.textContent = errorText(e);
      confirm.disabled = false;
    }
  };
  confirm.addEventListener('click', submit);
  input.addEventListener('keydown', (e) => { if (e.key === 'Enter') submit(); });
}

// ---------------------------------------------------------------- restart
/** kubectl rollout restart: the template's restartedAt annotation (RFC 3339 now). */
export async function restart(res, obj) {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  try {
    await patch(res, obj, { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': now } } } } }, STRATEGIC);
    done(`${obj.metadata.name} restarted`);
  } catch (e) { failed('restart', e); }
}

// ------------------------------------------------------------ pause/resume
export async function setPaused(res, obj, paused) {
  try {
    await patch(res, obj, { spec: { paused: paused ? true : null } }, STRATEGIC);
    done(`${obj.metadata.name} ${paused ? 'paused' : 'resumed'}`);
  } catch (e) { failed(paused ? 'pause' : 'resume', e); }
}

// --------------------------------------------------------- cordon/uncordon
export async function setCordon(res, obj, cordon) {
  try {
    await patch(res, obj, { spec: { unschedulable: cordon ? true : null } }, STRATEGIC);
    done(`${obj.metadata.name} ${cordon ? 'cordoned' : 'uncordoned'}`);
  } catch (e) { failed(cordon ? 'cordon' : 'uncordon', e); }
}

// ------------------------------------------------------------------- undo
const REVISION = 'deployment.kubernetes.io/revision';
// Annotations kept from the Deployment, not taken from the ReplicaSet (kubectl's annotationsToSkip).
const KEEP_ANNOTATIONS = ['kubectl.kubernetes.io/last-applied-configuration', REVISION,
  'deployment.kubernetes.io/revision-history', 'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas', 'deprecated.deployment.rollback.to'];

function ownedBy(o, owner) {
  return (o.metadata.ownerReferences || []).some((r) => r.controller && r.uid === owner.metadata.uid);
}

function selectorQuery(obj) {
  const ml = (obj.spec && obj.spec.selector && obj.spec.selector.matchLabels) || {};
  return Object.entries(ml).map(([k, v]) => `${k}=${v}`).join(',');
}

/** The revisions of a Deployment (its ReplicaSets) or StatefulSet/DaemonSet (ControllerRevisions), newest first. */
export async function revisions(res, obj) {
  const ns = obj.metadata.namespace;
  if (res.resource === 'deployments') {
    const rsList = await get(`/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/replicasets`, { query: { labelSelector: selectorQuery(obj) } });
    return (rsList.items || []).filter((rs) => ownedBy(rs, obj))
      .map((rs) => ({ revision: Number((rs.metadata.annotations || {})[REVISION]), source: rs, template: rs.spec.template }))
      .filter((r) => Number.isInteger(r.revision))
      .sort((a, b) => b.revision - a.revision);
  }
  const crs = await get(`/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/controllerrevisions`, { query: { labelSelector: selectorQuery(obj) } });
  return (crs.items || []).filter((cr) => ownedBy(cr, obj))
    .map((cr) => ({ revision: Number(cr.revision), source: cr, template: cr.data && cr.data.spec && cr.data.spec.template }))
    .sort((a, b) => b.revision - a.revision);
}

function withoutHash(template) {
  const t = JSON.parse(JSON.stringify(template || {}));
  if (t.metadata && t.metadata.labels) {
    delete t.metadata.labels['pod-template-hash'];
  }
  return t;
}

function canonical(v) {
  if (Array.isArray(v)) return '[' + v.map(canonical).join(',') + ']';
  if (v && typeof v === 'object') {
    return '{' + Object.keys(v).sort().filter((k) => v[k] !== undefined).map((k) => JSON.stringify(k) + ':' + canonical(v[k])).join(',') + '}';
  }
  return JSON.stringify(v);
}

/** Rolls back as kubectl rollout undo --to-revision=N does. */
export async function undoTo(res, obj, rev) {
  if (res.resource === 'deployments') {
    if (obj.spec && obj.spec.paused) {
      throw new Error(`you cannot roll back a paused deployment; resume it first`);
    }
    const template = withoutHash(rev.template);
    if (canonical(template) === canonical(withoutHash(obj.spec.template))) {
      return `skipped rollback (current template already matches revision ${rev.revision})`;
    }
    const annotations = {};
    const cur = obj.metadata.annotations || {};
    for (const k of KEEP_ANNOTATIONS) if (k in cur) annotations[k] = cur[k];
    for (const [k, v] of Object.entries(rev.source.metadata.annotations || {})) {
      if (!KEEP_ANNOTATIONS.includes(k)) annotations[k] = v;
    }
    await patch(res, obj, [
      { op: 'replace', path: '/spec/template', value: template },
      { op: 'replace', path: '/metadata/annotations', value: annotations },
    ], JSON_PATCH);
    return 'rolled back';
  }
  // StatefulSets and DaemonSets: the ControllerRevision's data is the strategic merge patch.
  await patch(res, obj, rev.source.data, STRATEGIC);
  return 'rolled back';
}

export async function undoDialog(res, obj) {
  let revs;
  try { revs = await revisions(res, obj); } catch (e) { failed('revisions', e); return; }
  const currentRev = res.resource === 'deployments'
    ? Number((obj.metadata.annotations || {})[REVISION])
    : (revs.length ? revs[0].revision : NaN);
  const options = revs.filter((r) => r.revision !== currentRev);
  const select = h('select', { 'data-testid': 'undo-revision', 'aria-label': 'Revision' },
    options.map((r) => h('option', { value: String(r.revision) },
      `Revision ${r.revision}` + images(r.template))));
  const err = h('div', { class: 'error', 'data-testid': 'undo-error' });
  const confirm = h('button', { class: 'primary', 'data-testid': 'undo-confirm' }, 'Roll back');
  if (!options.length) {
    confirm.disabled = true;
    err.textContent = 'No earlier revision to roll back to.';
  }
  const m = modal(`Roll back ${obj.metadata.name}`, h('div', null,
    h('p', null, `Current revision: ${Number.isNaN(currentRev) ? 'unknown' : currentRev}`),
    h('label', { class: 'field' }, 'To revision', select), err), [confirm]);
  confirm.addEventListener('click', async () => {
    const rev = options.find((r) => String(r.revision) === select.value);
    if (!rev) return;
    confirm.disabled = true;
    try {
      const msg = await undoTo(res, obj, rev);
      m.close();
      done(`${obj.metadata.name} ${msg}`);
    } catch (e) {
      err.textContent = errorText(e);
      confirm.disabled = false;
    }
  });
}

function images(template) {
  const cs = (template && template.spec && template.spec.containers) || [];
  return cs.length ? ' — ' + cs.map((c) => c.image).join(', ') : '';
}

// ----------------------------------------------------------------- delete
export function deleteDialog(res, obj, after) {
  const name = obj.metadata.name;
  const mustType = res.resource === 'namespaces' && !res.group;
  const input = h('input', { type: 'text', 'data-testid': 'delete-confirm-input', autocomplete: 'off', spellcheck: 'false',
    placeholder: mustType ? name : 'optional', 'aria-label': 'Name to confirm' });
  const err = h('div', { class: 'error', 'data-testid': 'delete-error' });
  const confirm = h('button', { class: 'danger', 'data-testid': 'delete-confirm' }, 'Delete');
  const sync = () => { confirm.disabled = mustType && input.value !== name; };
  input.addEventListener('input', sync);
  sync();
  const m = modal(`Delete ${res.kind} ${name}`, h('div', null,
    h('p', null, mustType
      ? ['This deletes the namespace and everything in it. Type ', h('code', null, name), ' to confirm.']
      : ['Delete ', h('code', null, name), obj.metadata.namespace ? ` in ${obj.metadata.namespace}` : '', '?']),
    input, err), [confirm]);
  confirm.addEventListener('click', async () => {
    if (mustType && input.value !== name) return;
    confirm.disabled = true;
    try {
      await request('DELETE', resourcePath(res, obj.metadata.namespace, name), {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' },
      });
      m.close();
      done(`${res.kind} ${name} deleted`);
      if (after) after();
    } catch (e) {
      err.textContent = errorText(e);
      confirm.disabled = false;
    }
  });
}

// ------------------------------------------------------------------- edit
export function editDialog(res, obj) {
  const text = h('textarea', { 'data-testid': 'edit-yaml', class: 'code', spellcheck: 'false', rows: '30', 'aria-label': 'YAML' });
  text.value = toYaml(withoutManagedFields(obj));
  const err = h('div', { class: 'error', 'data-testid': 'edit-error', role: 'alert' });
  const save = h('button', { class: 'primary', 'data-testid': 'edit-save' }, 'Save');
  const m = modal(`Edit ${res.kind} ${obj.metadata.name}`, h('div', { class: 'editor' }, text, err), [save]);
  m.el.classList.add('wide');
  save.addEventListener('click', async () => {
    err.textContent = '';
    let body;
    try {
      body = parseYaml(text.value);
      if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('the YAML must be one object');
    } catch (e) {
      err.textContent = 'Invalid YAML: ' + errorText(e);
      return;
    }
    save.disabled = true;
    try {
      await request('PUT', resourcePath(res, obj.metadata.namespace, obj.metadata.name), {
        body, query: { fieldManager: FIELD_MANAGER },
      });
      m.close();
      done(`${obj.metadata.name} saved`);
    } catch (e) {
      err.textContent = e.code === 409
        ? `The object was changed on the server since you opened it; reload it and edit again. (${errorText(e)})`
        : errorText(e);
      save.disabled = false;
    }
  });
}

// --------------------------------------------------------- create / apply
export function createDialog(defaultNamespace) {
  const text = h('textarea', { 'data-testid': 'create-yaml', class: 'code', spellcheck: 'false', rows: '24', 'aria-label': 'YAML',
    placeholder: 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: example\ndata:\n  key: value' });
  const err = h('div', { class: 'error', 'data-testid': 'create-error', role: 'alert' });
  const apply = h('button', { class: 'primary', 'data-testid': 'create-apply' }, 'Apply');
  const force = h('input', { type: 'checkbox', 'data-testid': 'create-force' });
  const m = modal('Create or apply (server-side apply)', h('div', { class: 'editor' }, text, err,
    h('label', { class: 'check', title: 'Take over fields another manager owns (kubectl apply --server-side --force-conflicts)' }, force, 'Force conflicts')), [apply]);
  m.el.classList.add('wide');
  apply.addEventListener('click', async () => {
    err.textContent = '';
    apply.disabled = true;
    try {
      const results = await applyYaml(text.value, defaultNamespace, force.checked);
      m.close();
      done(results.join('; '));
    } catch (e) {
      err.textContent = errorText(e);
    } finally {
      apply.disabled = false;
    }
  });
}

/** Server-side applies every document of a YAML stream; returns what happened. */
export async function applyYaml(yamlText, defaultNamespace, forceConflicts) {
  const docs = splitDocuments(yamlText);
  if (!docs.length) throw new Error('nothing to apply');
  const d = await discovery();
  const objects = [];
  docs.forEach((doc, i) => {
    let v;
    try { v = parseYaml(doc); } catch (e) { throw new Error(`document ${i + 1}: ${errorText(e)}`); }
    // A List (kubectl get -o yaml of several) is its items.
    if (v && typeof v === 'object' && typeof v.kind === 'string' && v.kind.endsWith('List') && Array.isArray(v.items)) {
      v.items.forEach((item, j) => objects.push({ v: item, where: `document ${i + 1}, item ${j + 1}` }));
    } else {
      objects.push({ v, where: `document ${i + 1}` });
    }
  });
  const parsed = objects.map(({ v, where }) => {
    if (!v || typeof v !== 'object' || !v.apiVersion || !v.kind || !v.metadata || !v.metadata.name) {
      throw new Error(`${where}: apiVersion, kind and metadata.name are required`);
    }
    const res = forKind(d, v.apiVersion, v.kind);
    if (!res) throw new Error(`${where}: the server serves no ${v.kind} in ${v.apiVersion}`);
    return { v, res };
  });
  const out = [];
  for (const { v, res } of parsed) {
    const ns = res.namespaced ? (v.metadata.namespace || defaultNamespace || 'default') : '';
    const path = resourcePath(res, ns, v.metadata.name);
    try {
      // As kubectl apply --server-side: the object as JSON (which is YAML) with the apply type.
      // managedFields (in what `kubectl get -o yaml` prints) may not be applied.
      await request('PATCH', path, {
        body: JSON.stringify(withoutManagedFields(v)), type: APPLY,
        query: { fieldManager: FIELD_MANAGER, force: forceConflicts ? 'true' : undefined },
      });
    } catch (e) {
      throw new Error(`${v.kind} ${v.metadata.name}: ${errorText(e)}`);
    }
    out.push(`${v.kind.toLowerCase()}/${v.metadata.name} applied`);
  }
  return out;
}
