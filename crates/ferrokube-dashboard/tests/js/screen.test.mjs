// The terminal emulator's screen model: text, wrapping, escape sequences, keys and paste as the container receives them.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Screen, keyInput, pasteInput, RGB, BOLD, UNDERLINE, REVERSE, lineText } from '../../ui/js/terminal.js';

const scr = (c = 10, r = 4, o) => new Screen(c, r, o);

test('text and newlines', () => {
  const s = scr();
  s.write('hello\r\nworld');
  assert.equal(s.text(), 'hello\nworld\n\n');
  assert.equal(s.x, 5); assert.equal(s.y, 1);
});

test('autowrap with pending wrap', () => {
  const s = scr(5, 3);
  s.write('abcde');
  assert.equal(s.x, 4); assert.ok(s.wrapPending);
  s.write('f');
  assert.equal(s.text(), 'abcde\nf\n');
  s.write('\x1b[?7l');
  s.write('ghijklm');
  assert.equal(lineText(s.buf[1]), 'fghim');
});

test('scrolling into scrollback', () => {
  const s = scr(5, 2);
  s.write('1\r\n2\r\n3\r\n4');
  assert.equal(s.text(), '3\n4');
  assert.deepEqual(s.scrollback.map(lineText), ['1', '2']);
});

test('cursor movement and erase', () => {
  const s = scr(10, 3);
  s.write('abcdefghij\x1b[1;3H\x1b[K');
  assert.equal(lineText(s.buf[0]), 'ab');
  s.write('\x1b[2;5HX\x1b[1K');
  assert.equal(lineText(s.buf[1]), '');
  s.write('\x1b[3;1Hzzz\x1b[2J');
  assert.equal(s.text(), '\n\n');
  s.write('\x1b[2;2H\x1b[A\x1b[3C\x1b[BQ\x1b[GR\x1b[3dS');
  assert.equal(s.text(), '\nR   Q\n S');
});

test('insert/delete chars and lines', () => {
  const s = scr(8, 4);
  s.write('abcdef\x1b[1;3H\x1b[2@');
  assert.equal(lineText(s.buf[0]), 'ab  cdef');
  s.write('\x1b[3P');
  assert.equal(lineText(s.buf[0]), 'abdef');
  s.write('\x1b[1;1H\x1b[2X');
  assert.equal(lineText(s.buf[0]), '  def');
  s.write('\x1b[1;1H1\r\n2\r\n3\r\n4\x1b[2;1H\x1b[L');
  assert.equal(s.text(), '1 def\n\n2\n3');
  s.write('\x1b[M\x1b[M');
  assert.equal(s.text(), '1 def\n3\n\n');
});

test('scroll region', () => {
  const s = scr(5, 5);
  s.write('a\r\nb\r\nc\r\nd\r\ne\x1b[2;4r');
  assert.equal(s.x, 0); assert.equal(s.y, 0);
  s.write('\x1b[4;1H\n');
  assert.equal(s.text(), 'a\nc\nd\n\ne');
  s.write('\x1b[2;1H\x1bM');
  assert.equal(s.text(), 'a\n\nc\nd\ne');
  assert.equal(s.scrollback.length, 0);
  s.write('\x1b[S');
  assert.equal(s.text(), 'a\nc\nd\n\ne');
  s.write('\x1b[T');
  assert.equal(s.text(), 'a\n\nc\nd\ne');
});

test('SGR colours', () => {
  const s = scr(10, 2);
  s.write('\x1b[1;4;31mA\x1b[38;5;200;48;2;1;2;3mB\x1b[38:2::9:8:7mC\x1b[0;7mD\x1b[mE\x1b[92;104mF');
  const at = s.buf[0].at;
  assert.deepEqual({ ...at[0] }, { fg: 1, bg: -1, flags: BOLD | UNDERLINE });
  assert.deepEqual({ ...at[1] }, { fg: 200, bg: RGB | 0x010203, flags: BOLD | UNDERLINE });
  assert.equal(at[2].fg, RGB | 0x090807);
  assert.deepEqual({ ...at[3] }, { fg: -1, bg: -1, flags: REVERSE });
  assert.deepEqual({ ...at[4] }, { fg: -1, bg: -1, flags: 0 });
  assert.deepEqual({ ...at[5] }, { fg: 10, bg: 12, flags: 0 });
});

test('alternate screen and save/restore', () => {
  const s = scr(10, 3);
  s.write('main\x1b[?1049h\x1b[Hfull');
  assert.equal(s.text(), 'full\n\n');
  s.write('\x1b[?1049l');
  assert.equal(s.text(), 'main\n\n');
  assert.equal(s.x, 4);
  s.write('\x1b7\x1b[3;3Hx\x1b8y');
  assert.equal(s.text(), 'mainy\n\n  x');
});

test('modes', () => {
  const s = scr();
  s.write('\x1b[?1h\x1b[?2004h\x1b[?25l');
  assert.ok(s.modes.appCursor && s.modes.bracketedPaste && !s.modes.cursorVisible);
  s.write('\x1b[?1l\x1b[?2004l\x1b[?25h');
  assert.ok(!s.modes.appCursor && !s.modes.bracketedPaste && s.modes.cursorVisible);
});

test('OSC title ignored, DCS dropped, split sequences', () => {
  let title = '';
  const s = scr(20, 2, { onTitle: (t) => (title = t) });
  s.write('\x1b]0;my title\x07a\x1b]2;t2\x1b\\b\x1bPq#0;1\x1b\\c');
  assert.equal(lineText(s.buf[0]), 'abc');
  assert.equal(title, 't2');
  s.write('\x1b[');
  s.write('3');
  s.write('1mX');
  assert.equal(s.buf[0].at[3].fg, 1);
});

test('replies', () => {
  const out = [];
  const s = scr(10, 5, { onReply: (r) => out.push(r) });
  s.write('\x1b[3;4H\x1b[6n\x1b[5n\x1b[c');
  assert.deepEqual(out, ['\x1b[3;4R', '\x1b[0n', '\x1b[?1;2c']);
});

test('wide and combining characters', () => {
  const s = scr(5, 2);
  s.write('漢字e\u0301');
  assert.equal(lineText(s.buf[0]), '漢字e\u0301');
  assert.equal(s.x, 4); assert.ok(s.wrapPending);
  const t = scr(5, 2);
  t.write('abcd漢');
  assert.equal(t.text(), 'abcd\n漢');
});

test('tabs, backspace, line drawing', () => {
  const s = scr(20, 2);
  s.write('a\tb\x08c\r\n\x1b(0lqk\x1b(Bq');
  assert.equal(s.text(), 'a       c\n┌─┐q');
});

test('resize keeps the cursor row', () => {
  const s = scr(10, 5);
  s.write('1\r\n2\r\n3\r\n4\r\n5');
  s.resize(6, 3);
  assert.equal(s.text(), '3\n4\n5');
  assert.equal(s.y, 2);
  s.resize(6, 4);
  assert.equal(s.text(), '3\n4\n5\n');
  const t = scr(10, 5);
  t.write('top');
  t.resize(10, 2);
  assert.equal(t.text(), 'top\n');
});

test('keys', () => {
  const k = (key, o = {}) => keyInput({ key, ...o }, o.modes || {});
  assert.equal(k('a'), 'a');
  assert.equal(k('Enter'), '\r');
  assert.equal(k('Backspace'), '\x7f');
  assert.equal(k('ArrowUp'), '\x1b[A');
  assert.equal(k('ArrowUp', { modes: { appCursor: true } }), '\x1bOA');
  assert.equal(k('ArrowLeft', { ctrlKey: true }), '\x1b[1;5D');
  assert.equal(k('c', { ctrlKey: true }), '\x03');
  assert.equal(k('x', { altKey: true }), '\x1bx');
  assert.equal(k('Delete'), '\x1b[3~');
  assert.equal(k('PageUp'), '\x1b[5~');
  assert.equal(k('Home'), '\x1b[H');
  assert.equal(k('End', { modes: { appCursor: true } }), '\x1bOF');
  assert.equal(k('Tab', { shiftKey: true }), '\x1b[Z');
  assert.equal(k('Escape'), '\x1b');
  assert.equal(k('Shift', { shiftKey: true }), null);
  assert.equal(k('v', { ctrlKey: true }), null);
  assert.equal(k('[', { ctrlKey: true }), '\x1b');
  assert.equal(k('F1'), '\x1bOP');
  assert.equal(k('F5'), '\x1b[15~');
  assert.equal(pasteInput('a\nb', { bracketedPaste: true }), '\x1b[200~a\rb\x1b[201~');
});

test('origin mode and regions', () => {
  const s = scr(10, 6);
  s.write('\x1b[2;4r\x1b[?6h\x1b[1;1HA\x1b[10;1HB');
  assert.equal(s.text(), '\nA\n\nB\n\n');
  const out = [];
  s.onReply = (r) => out.push(r);
  s.write('\x1b[6n');
  assert.deepEqual(out, ['\x1b[3;2R']);
  s.write('\x1b[?6l\x1b[r\x1b[6;1HZ');
  assert.equal(s.buf[5].ch[0], 'Z');
});

test('erase uses the background (BCE), insert mode, REP, LNM', () => {
  const s = scr(6, 3);
  s.write('\x1b[44m\x1b[2K\x1b[0m');
  assert.equal(s.buf[0].at[3].bg, 4);
  s.write('abc\x1b[1G\x1b[4hX\x1b[4l');
  assert.equal(lineText(s.buf[0]), 'Xabc');
  s.write('\x1b[2;1Hq\x1b[3b');
  assert.equal(lineText(s.buf[1]), 'qqqq');
  s.write('\x1b[20h\x1b[3;3Hk\nm');
  assert.equal(s.y, 2);
});

test('RIS clears the screen and keeps the scrollback', () => {
  const s = scr(5, 2);
  s.write('1\r\n2\r\n3\x1bc');
  assert.equal(s.text(), '\n');
  assert.deepEqual(s.scrollback.map(lineText), ['1']);
  s.write('\x1b[3J');
  assert.equal(s.scrollback.length, 0);
});

test('CR at a pending wrap stays on the line', () => {
  const s = scr(3, 3);
  s.write('abc\rX');
  assert.equal(s.text(), 'Xbc\n\n');
});

test('alternate screen keeps the main screen and no scrollback', () => {
  const s = scr(5, 2);
  s.write('keep\x1b[?1049h1\r\n2\r\n3\r\n4');
  assert.equal(s.scrollback.length, 0);
  s.write('\x1b[?1049l');
  assert.equal(s.text(), 'keep\n');
});

test('a huge repeat or parameter stays bounded', () => {
  const s = scr(5, 2);
  s.write('a\x1b[99999999b\x1b[99999999;99999999H\x1b[99999999@');
  assert.equal(s.x, 4); assert.equal(s.y, 1);
});
