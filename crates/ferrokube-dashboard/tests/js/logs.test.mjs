// The logs view's pure parts: timestamps split and compared, the resume after a dropped follow stream, the log URL.
import test from 'node:test';
import assert from 'node:assert/strict';
import { splitTimestamp, compareTime, Resume, logPath } from '../../ui/js/logs.js';

test('split', () => {
  assert.deepEqual(splitTimestamp('2024-01-02T03:04:05.123456789Z hello world'), ['2024-01-02T03:04:05.123456789Z', 'hello world']);
  assert.deepEqual(splitTimestamp('2024-01-02T03:04:05Z '), ['2024-01-02T03:04:05Z', '']);
  assert.deepEqual(splitTimestamp('plain line'), [null, 'plain line']);
});
test('compare', () => {
  assert.ok(compareTime('2024-01-02T03:04:05.000000001Z', '2024-01-02T03:04:05Z') > 0);
  assert.ok(compareTime('2024-01-02T03:04:05.5Z', '2024-01-02T03:04:05.400000000Z') > 0);
  assert.equal(compareTime('2024-01-02T04:04:05+01:00', '2024-01-02T03:04:05Z'), 0);
  assert.ok(compareTime('2024-01-02T03:04:04.999999999Z', '2024-01-02T03:04:05Z') < 0);
});
test('resume skips what was taken', () => {
  const r = new Resume();
  for (const t of ['2024-01-01T00:00:01.000000000Z', '2024-01-01T00:00:02.000000000Z', '2024-01-01T00:00:02.000000000Z']) r.took(t);
  const skip = r.skipper();
  // A server truncating sinceTime to seconds sends from :02 (or earlier).
  assert.equal(skip('2024-01-01T00:00:01.000000000Z'), true);
  assert.equal(skip('2024-01-01T00:00:02.000000000Z'), true);
  assert.equal(skip('2024-01-01T00:00:02.000000000Z'), true);
  assert.equal(skip('2024-01-01T00:00:02.000000000Z'), false);
  assert.equal(skip('2024-01-01T00:00:01.000000000Z'), false);
});
test('path', () => {
  assert.equal(logPath({ namespace: 'a b', pod: 'p', container: 'c', follow: true, tailLines: 10 }), '/api/v1/namespaces/a%20b/pods/p/log?container=c&follow=true&timestamps=true&tailLines=10');
  assert.equal(logPath({ namespace: 'n', pod: 'p', container: 'c', follow: true, tailLines: 10, sinceTime: 'T' }), '/api/v1/namespaces/n/pods/p/log?container=c&follow=true&timestamps=true&sinceTime=T');
});
