// The YAML view's emitter and the editor's parser: what one writes the other reads back,
// and the manifests people write parse as Kubernetes' YAML does.
import test from 'node:test';
import assert from 'node:assert/strict';
import { toYaml, parseYaml, splitDocuments, withoutManagedFields } from '../../ui/js/yaml.js';

const tricky = {
  apiVersion: 'apps/v1', kind: 'Deployment',
  metadata: {
    name: 'web', labels: { app: 'web', 'x.io/y': 'true', n: '5', 'on': 'off' },
    annotations: { multi: 'line1\nline2\n', nonl: 'a\nb', empty: '', colon: 'a: b', lead: ' x', hash: '#x', tail: 'x ', yes: 'yes', num: '1e3', octal: '0o17', dash: '- x', star: '*x', quote: 'it\'s "q"', tab: 'a\tb', unicode: 'ü 名' },
  },
  spec: {
    replicas: 3, paused: false, ratio: 0.5, neg: -2, nothing: null, emptyList: [], emptyMap: {},
    args: ['-c', 'echo hi; sleep 1', '', 'true'], nested: [[1, 2], [], [{ a: 1 }]],
    template: { spec: { containers: [{ name: 'c', image: 'nginx:1.2', env: [{ name: 'A', value: '1.0' }] }] } },
  },
};

test('round trip through the emitter and the parser', () => {
  assert.deepEqual(parseYaml(toYaml(tricky)), tricky);
  for (const v of [{}, [], 'x', 1, null, { a: [] }, [{}], { s: '\n' }, { s: 'a\n\n' }]) {
    assert.deepEqual(parseYaml(toYaml(v)), v, JSON.stringify(v));
  }
});

test('kubectl layout: lists under a key at the same indent, strings plain when safe', () => {
  const y = toYaml({ a: { b: ['x', { c: 1, d: 2 }] }, s: 'nginx:1.2', t: 'true' });
  assert.equal(y, 'a:\n  b:\n  - x\n  - c: 1\n    d: 2\ns: nginx:1.2\nt: "true"\n');
});

test('manifests as people write them', () => {
  const text = `# a comment
apiVersion: v1
kind: ConfigMap   # trailing comment
metadata:
  name: cm
  labels: {a: b, "c": 'd'}
data:
  list: [1, two, "three", {k: v}]
  script: |
    #!/bin/sh
    echo "hi"   # kept

  folded: >-
    a
    b

    c
  keep: |+
    x

  q: 'it''s'
  dq: "a\\tb\\u00e9"
  url: http://x:80/p
  bool: yes
  nul: ~
items:
- a
- b: 1
  c: 2
-   - x
    - y
- key: |
    block in a list
`;
  assert.deepEqual(parseYaml(text), {
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', labels: { a: 'b', c: 'd' } },
    data: {
      list: [1, 'two', 'three', { k: 'v' }], script: '#!/bin/sh\necho "hi"   # kept\n', folded: 'a b\nc',
      keep: 'x\n\n', q: "it's", dq: 'a\tbé', url: 'http://x:80/p', bool: true, nul: null,
    },
    items: ['a', { b: 1, c: 2 }, ['x', 'y'], { key: 'block in a list\n' }],
  });
});

test('documents', () => {
  const docs = splitDocuments('---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n');
  assert.deepEqual(docs.map(parseYaml), [{ a: 1 }, { b: 2 }]);
  assert.deepEqual(parseYaml('{"json": [1, 2]}'), { json: [1, 2] });
});

test('errors name the line', () => {
  assert.throws(() => parseYaml('a: 1\na: 2\n'), /line 2: duplicate key/);
  assert.throws(() => parseYaml('a:\n  b: 1\n c: 2\n'), /line 3/);
  assert.throws(() => parseYaml('a: "open\n'), /unterminated/);
  assert.throws(() => parseYaml('a: &anchor 1\n'), /anchors/);
});

test('managedFields hidden, the rest kept', () => {
  const o = { metadata: { name: 'x', managedFields: [{ manager: 'kubectl' }] }, spec: {} };
  assert.deepEqual(withoutManagedFields(o), { metadata: { name: 'x' }, spec: {} });
  assert.ok(o.metadata.managedFields, 'the original is not changed');
});

test('round trip of random values', () => {
  let seed = 12345;
  const rnd = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
  const pieces = ['a', 'b', ' ', ':', ': ', '#', ' #', '-', '- ', '"', "'", '{', '}', '[', ']', ',', '\n', '\t', '\\', '0', '1.5',
    'true', 'no', 'null', '~', '*', '&', '!', '|', '>', '%', '@', '`', '?', 'é', '  ', 'x y', '0x1F', '.inf', '=', '/'];
  const str = () => Array.from({ length: rnd(5) }, () => pieces[rnd(pieces.length)]).join('');
  const value = (depth) => {
    switch (depth > 3 ? rnd(4) : rnd(7)) {
      case 0: return str();
      case 1: return rnd(2) ? rnd(1000) - 500 : rnd(1000) / 8;
      case 2: return rnd(3) === 0 ? null : rnd(2) === 0;
      case 3: return str() || 'k';
      case 4: return Array.from({ length: rnd(4) }, () => value(depth + 1));
      default: {
        const o = {};
        for (let i = rnd(4); i > 0; i--) o[str() || 'key'] = value(depth + 1);
        return o;
      }
    }
  };
  for (let i = 0; i < 3000; i++) {
    const v = { root: value(0) };
    const y = toYaml(v);
    let back;
    try { back = parseYaml(y); } catch (e) { assert.fail(`${e.message}\n${JSON.stringify(v)}\n${y}`); }
    assert.deepEqual(back, v, `${JSON.stringify(v)}\n${y}`);
  }
});
