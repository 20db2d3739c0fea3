// The watch client against a fake server: initial events and their end, a
// resume from the last resourceVersion when the stream ends, a fresh list on
// 410 Gone, and the paged list + watch where sendInitialEvents is refused.
import test from 'node:test';
import assert from 'node:assert/strict';
import { watch } from '../../ui/js/watch.js';
import { RowStore } from '../../ui/js/table.js';
import { humanDuration } from '../../ui/js/dom.js';

const enc = new TextEncoder();
function streamOf(lines, { hold = false } = {}) {
  return new ReadableStream({
    start(c) {
      // Split across chunks mid-line, as the network does.
      const text = lines.map((l) => JSON.stringify(l) + '\n').join('');
      const mid = Math.floor(text.length / 2);
      c.enqueue(enc.encode(text.slice(0, mid)));
      c.enqueue(enc.encode(text.slice(mid)));
      if (!hold) c.close();
    },
  });
}
const json = (status, body) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
const cm = (name, rv) => ({ kind: 'ConfigMap', metadata: { name, namespace: 'n', resourceVersion: rv } });
const end = (rv) => ({ type: 'BOOKMARK', object: { kind: 'ConfigMap', metadata: { resourceVersion: rv, annotations: { 'k8s.io/initial-events-end': 'true' } } } });

function fakeServer(answers) {
  const urls = [];
  globalThis.fetch = async (url) => {
    urls.push(url);
    const next = answers.shift();
    if (!next) return new Response(streamOf([], { hold: true }), { status: 200 });
    return next(url);
  };
  return urls;
}

function until(cond, ms = 3000) {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => (cond() ? resolve() : Date.now() - t0 > ms ? reject(new Error('timed out')) : setTimeout(tick, 5));
    tick();
  });
}

test('initial events, their end, then a resume from the last resourceVersion', async () => {
  const urls = fakeServer([
    () => new Response(streamOf([{ type: 'ADDED', object: cm('a', '5') }, { type: 'ADDED', object: cm('b', '6') }, end('7'),
      { type: 'MODIFIED', object: cm('a', '9') }])),
  ]);
  const log = [];
  const w = watch('/api/v1/configmaps', {
    onEvent: (t, o) => log.push(t + ' ' + o.metadata.name), onSync: () => log.push('SYNC'), onReset: () => log.push('RESET'),
  });
  await until(() => urls.length === 2);
  w.close();
  assert.deepEqual(log, ['ADDED a', 'ADDED b', 'SYNC', 'MODIFIED a']);
  assert.match(urls[0], /sendInitialEvents=true&resourceVersionMatch=NotOlderThan&watch=1&allowWatchBookmarks=true$/);
  assert.match(urls[1], /resourceVersion=9&watch=1/);
  assert.doesNotMatch(urls[1], /sendInitialEvents/);
});

test('410 Gone lists anew (onReset first)', async () => {
  const urls = fakeServer([
    () => new Response(streamOf([{ type: 'ADDED', object: cm('a', '5') }, end('5'),
      { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old' } }])),
    () => new Response(streamOf([{ type: 'ADDED', object: cm('a', '20') }, end('20')], { hold: true })),
  ]);
  const log = [];
  const w = watch('/api/v1/configmaps', { onEvent: (t, o) => log.push(t + ' ' + o.metadata.name), onSync: () => log.push('SYNC'), onReset: () => log.push('RESET') });
  await until(() => log.length === 5);
  w.close();
  assert.deepEqual(log, ['ADDED a', 'SYNC', 'RESET', 'ADDED a', 'SYNC']);
  assert.match(urls[1], /sendInitialEvents=true/);
});

test('a refused sendInitialEvents falls back to a paged list, then a watch from its resourceVersion', async () => {
  const urls = fakeServer([
    () => json(400, { kind: 'Status', code: 400, message: 'sendInitialEvents is not supported' }),
    () => json(200, { kind: 'ConfigMapList', metadata: { resourceVersion: '30', continue: 'c1' }, items: [cm('a', '3')] }),
    () => json(200, { kind: 'ConfigMapList', metadata: { resourceVersion: '30' }, items: [cm('b', '4')] }),
    () => new Response(streamOf([{ type: 'DELETED', object: cm('a', '31') }], { hold: true })),
  ]);
  const log = [];
  const w = watch('/api/v1/configmaps', { onEvent: (t, o) => log.push(t + ' ' + o.metadata.name), onSync: () => log.push('SYNC') });
  await until(() => log.length === 4);
  w.close();
  assert.deepEqual(log, ['ADDED a', 'ADDED b', 'SYNC', 'DELETED a']);
  assert.match(urls[1], /limit=500/);
  assert.match(urls[2], /limit=500&continue=c1/);
  assert.match(urls[3], /resourceVersion=30&watch=1/);
});

test('rows: a fresh list drops what it no longer has', () => {
  const table = (rows) => ({ kind: 'Table', columnDefinitions: [{ name: 'Name' }, { name: 'Ready', priority: 0 }],
    rows: rows.map(([n, ready]) => ({ cells: [n, ready], object: { metadata: { name: n, namespace: 'd', resourceVersion: '1' } } })) });
  const s = new RowStore();
  s.apply('ADDED', table([['a', '1/1'], ['b', '0/1']]));
  s.sync();
  assert.equal(s.rows.size, 2);
  s.reset();
  s.apply('ADDED', table([['b', '1/1']]));
  assert.equal(s.rows.size, 2, 'kept until the fresh list is complete');
  s.sync();
  assert.deepEqual(Array.from(s.rows.keys()), ['d/b']);
  assert.deepEqual(s.rows.get('d/b').cells, ['b', '1/1']);
  // One-row tables without columns (after the first) keep the columns;
  // a change of cells is made in place (no new sort needed).
  const before = s.rows.get('d/b');
  const structure = s.structure;
  s.apply('MODIFIED', { kind: 'Table', rows: [{ cells: ['b', '0/1'], object: { metadata: { name: 'b', namespace: 'd', resourceVersion: '2' } } }] });
  assert.equal(s.columns.length, 2);
  assert.equal(s.rows.get('d/b'), before);
  assert.deepEqual(before.cells, ['b', '0/1']);
  assert.equal(before.rv, '2');
  assert.equal(s.structure, structure);
  s.apply('DELETED', table([['b', '0/1']]));
  assert.equal(s.rows.size, 0);
});

test('ages as kubectl prints them', () => {
  for (const [secs, want] of [[5, '5s'], [119, '119s'], [125, '2m5s'], [600, '10m'], [3 * 3600 + 120, '3h2m'], [10 * 3600, '10h'],
    [3 * 86400 + 3600, '3d1h'], [30 * 86400, '30d'], [800 * 86400, '2y70d']]) {
    assert.equal(humanDuration(secs * 1000), want, String(secs));
  }
});
