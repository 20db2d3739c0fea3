// A terminal into a container: our own small xterm-style emulator (the
// VT100/xterm subset shells and common full-screen tools use), rendered as
// DOM rows, connected to the exec WebSocket (exec.js).
//
// `Screen` is the emulator (no DOM: node's test runner can drive it),
// `keyInput` turns keyboard events into the bytes a terminal sends, and
// `mountTerminal` puts both on the page.

import { openExec, exitOf, explainFailure } from './exec.js';
import { ensureCss } from './termcss.js';

// Pen flags.
export const BOLD = 1;
export const DIM = 2;
export const ITALIC = 4;
export const UNDERLINE = 8;
export const BLINK = 16;
export const REVERSE = 32;
export const INVISIBLE = 64;
export const STRIKE = 128;
/** A colour that is not a palette index: 0x1000000 | 0xRRGGBB. */
export const RGB = 0x1000000;

const BLANK = Object.freeze({ fg: -1, bg: -1, flags: 0 });
const pens = new Map();

/** The pen for these attributes (shared, immutable; -1 is the default colour). */
export function pen(fg, bg, flags) {
  if (fg === -1 && bg === -1 && flags === 0) return BLANK;
  const k = `${fg}/${bg}/${flags}`;
  let p = pens.get(k);
  if (!p) {
    if (pens.size >= 4096) pens.clear();
    p = Object.freeze({ fg, bg, flags });
    pens.set(k, p);
  }
  return p;
}

const samePen = (a, b) => a === b || (a.fg === b.fg && a.bg === b.bg && a.flags === b.flags);

// Parser states.
const GROUND = 0;
const ESC = 1;
const CSI = 2;
const OSC = 3;
const STR = 4; // DCS, SOS, PM, APC: read and dropped
const OSC_ESC = 5;
const STR_ESC = 6;

const MAX_PARAMS = 32;
const MAX_OSC = 4096;

// DEC special graphics (ESC ( 0), as line-drawing tools use it.
const LINE_DRAWING = {
  '`': '◆', a: '▒', f: '°', g: '±', h: '␤', i: '␋', j: '┘', k: '┐', l: '┌', m: '└', n: '┼',
  o: '⎺', p: '⎻', q: '─', r: '⎼', s: '⎽', t: '├', u: '┤', v: '┴', w: '┬', x: '│', y: '≤',
  z: '≥', '{': 'π', '|': '≠', '}': '£', '~': '·',
};

/** Columns a code point takes: 0 (combining), 1, or 2 (wide: CJK, emoji). */
export function charWidth(cp) {
  if (cp < 0x300) return 1;
  if (
    (cp >= 0x300 && cp <= 0x36f) ||
    (cp >= 0x483 && cp <= 0x489) ||
    (cp >= 0x591 && cp <= 0x5bd) ||
    (cp >= 0x610 && cp <= 0x61a) ||
    (cp >= 0x64b && cp <= 0x65f) ||
    (cp >= 0x1ab0 && cp <= 0x1aff) ||
    (cp >= 0x1dc0 && cp <= 0x1dff) ||
    (cp >= 0x200b && cp <= 0x200f) ||
    (cp >= 0x20d0 && cp <= 0x20ff) ||
    (cp >= 0xfe00 && cp <= 0xfe0f) ||
    (cp >= 0xfe20 && cp <= 0xfe2f) ||
    (cp >= 0xe0100 && cp <= 0xe01ef)
  ) {
    return 0;
  }
  if (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x231a && cp <= 0x231b) ||
    (cp >= 0x2329 && cp <= 0x232a) ||
    (cp >= 0x23e9 && cp <= 0x23ec) ||
    (cp >= 0x25fd && cp <= 0x25fe) ||
    (cp >= 0x2614 && cp <= 0x2615) ||
    (cp >= 0x2648 && cp <= 0x2653) ||
    (cp >= 0x26aa && cp <= 0x26ab) ||
    (cp >= 0x26bd && cp <= 0x26be) ||
    (cp >= 0x26c4 && cp <= 0x26c5) ||
    (cp >= 0x2705 && cp <= 0x2705) ||
    (cp >= 0x270a && cp <= 0x270b) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xa960 && cp <= 0xa97f) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe10 && cp <= 0xfe19) ||
    (cp >= 0xfe30 && cp <= 0xfe6f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f004 && cp <= 0x1f004) ||
    (cp >= 0x1f0cf && cp <= 0x1f0cf) ||
    (cp >= 0x1f18e && cp <= 0x1f18e) ||
    (cp >= 0x1f191 && cp <= 0x1f19a) ||
    (cp >= 0x1f200 && cp <= 0x1f251) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f680 && cp <= 0x1f6ff) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x1fa70 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

function blankLine(cols, p) {
  return { ch: new Array(cols).fill(' '), at: new Array(cols).fill(p), wrapped: false, ver: 0 };
}

/** The text of a line, trailing blanks dropped. */
export function lineText(line) {
  let end = line.ch.length;
  while (end > 0 && line.ch[end - 1] === ' ') end--;
  let s = '';
  for (let i = 0; i < end; i++) s += line.ch[i];
  return s;
}

/**
 * The emulator: a grid of cells (a line is `{ch: string[], at: pen[],
 * wrapped, ver}`; a wide character's second cell holds ''), a cursor,
 * bounded scrollback, the main and alternate screens, and the parser.
 * Options: scrollback (lines kept), onReply(string) for answers the
 * terminal sends (device status, attributes), onBell(), onTitle(string).
 */
export class Screen {
  constructor(cols = 80, rows = 24, opts = {}) {
    this.cols = Math.max(1, cols | 0);
    this.rows = Math.max(1, rows | 0);
    this.maxScrollback = opts.scrollback ?? 5000;
    this.onReply = opts.onReply || (() => {});
    this.onBell = opts.onBell || (() => {});
    this.onTitle = opts.onTitle || (() => {});
    /** Lines that left the top of the main screen, oldest first (bounded). */
    this.scrollback = [];
    /** Lines pushed to the scrollback since the renderer last took them. */
    this.scrolledOut = [];
    /** Set when the scrollback was cleared (ED 3, reset). */
    this.scrollbackCleared = false;
    this.reset();
  }

  /** Back to the power-on state (RIS). */
  reset() {
    this.main = [];
    this.alt = [];
    for (let i = 0; i < this.rows; i++) {
      this.main.push(blankLine(this.cols, BLANK));
      this.alt.push(blankLine(this.cols, BLANK));
    }
    this.buf = this.main;
    this.altActive = false;
    this.x = 0;
    this.y = 0;
    this.wrapPending = false;
    this.pen = BLANK;
    this.top = 0;
    this.bottom = this.rows - 1;
    this.tabs = new Set();
    for (let i = 8; i < 1000; i += 8) this.tabs.add(i);
    this.charsets = ['B', 'B'];
    this.gl = 0;
    this.saved = null;
    this.savedMain = null;
    this.modes = {
      appCursor: false,
      appKeypad: false,
      autowrap: true,
      origin: false,
      insert: false,
      newline: false,
      cursorVisible: true,
      bracketedPaste: false,
      reverseVideo: false,
      mouse: 0,
    };
    this.title = '';
    this.lastChar = ' ';
    this.state = GROUND;
    this.inter = '';
    this.params = [];
    this.cur = -1;
    this.sub = null;
    this.prefix = '';
    this.osc = '';
    this.changed = true;
    // The scrollback stays (as xterm's RIS leaves it); the renderer
    // redraws every row.
  }

  /** The screen's text: rows joined by "\n", trailing blanks dropped. */
  text() {
    return this.buf.map(lineText).join('\n');
  }

  /** Feeds decoded output (a string of code points). */
  write(s) {
    const n = s.length;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        }
      }
      this.feed(c);
    }
    this.changed = true;
  }

  feed(c) {
    let st = this.state;
    if (st === OSC || st === STR) {
      if (c === 0x07) {
        if (st === OSC) this.oscEnd();
        this.state = GROUND;
      } else if (c === 0x1b) {
        this.state = st === OSC ? OSC_ESC : STR_ESC;
      } else if (c === 0x18 || c === 0x1a) {
        this.state = GROUND;
      } else if (st === OSC && this.osc.length < MAX_OSC) {
        this.osc += String.fromCodePoint(c);
      }
      return;
    }
    if (st === OSC_ESC || st === STR_ESC) {
      if (st === OSC_ESC) this.oscEnd();
      this.state = GROUND;
      if (c === 0x5c) return; // ST
      // Another sequence begins.
      this.state = ESC;
      this.inter = '';
      st = ESC;
    }
    if (c < 0x20) {
      if (c === 0x1b) {
        this.state = ESC;
        this.inter = '';
      } else if (c === 0x18 || c === 0x1a) {
        this.state = GROUND;
      } else {
        // C0 controls act in the middle of sequences too (VT behaviour).
        this.control(c);
      }
      return;
    }
    if (c === 0x7f || (c >= 0x80 && c < 0xa0)) return;
    if (st === GROUND) this.print(c);
    else if (st === ESC) this.escape(c);
    else if (st === CSI) this.csi(c);
  }

  control(c) {
    switch (c) {
      case 0x07:
        this.onBell();
        break;
      case 0x08:
        this.wrapPending = false;
        if (this.x > 0) this.x--;
        break;
      case 0x09:
        this.tab(1);
        break;
      case 0x0a:
      case 0x0b:
      case 0x0c:
        this.index();
        if (this.modes.newline) this.x = 0;
        break;
      case 0x0d:
        this.x = 0;
        this.wrapPending = false;
        break;
      case 0x0e:
        this.gl = 1;
        break;
      case 0x0f:
        this.gl = 0;
        break;
      default:
        break;
    }
  }

  escape(c) {
    if (c >= 0x20 && c <= 0x2f) {
      if (this.inter.length < 2) this.inter += String.fromCharCode(c);
      return;
    }
    const f = String.fromCharCode(c);
    const it = this.inter;
    this.state = GROUND;
    if (it === '') {
      switch (f) {
        case '[':
          this.state = CSI;
          this.params = [];
          this.cur = -1;
          this.sub = null;
          this.prefix = '';
          this.inter = '';
          return;
        case ']':
          this.state = OSC;
          this.osc = '';
          return;
        case 'P':
        case 'X':
        case '^':
        case '_':
          this.state = STR;
          return;
        case '7':
          this.saveCursor();
          return;
        case '8':
          this.restoreCursor();
          return;
        case 'D':
          this.index();
          return;
        case 'E':
          this.x = 0;
          this.index();
          return;
        case 'M':
          this.reverseIndex();
          return;
        case 'H':
          this.tabs.add(this.x);
          return;
        case 'c':
          this.reset();
          return;
        case '=':
          this.modes.appKeypad = true;
          return;
        case '>':
          this.modes.appKeypad = false;
          return;
        default:
          return;
      }
    }
    if (it === '(' || it === ')') {
      this.charsets[it === '(' ? 0 : 1] = f;
      return;
    }
    if (it === '#' && f === '8') {
      // DECALN: the screen full of E.
      for (let y = 0; y < this.rows; y++) {
        const l = blankLine(this.cols, BLANK);
        l.ch.fill('E');
        this.buf[y] = l;
      }
      this.x = 0;
      this.y = 0;
    }
  }

  csi(c) {
    if (c >= 0x30 && c <= 0x39) {
      this.cur = this.cur < 0 ? c - 0x30 : Math.min(this.cur * 10 + (c - 0x30), 99999);
      return;
    }
    if (c === 0x3b || c === 0x3a) {
      if (c === 0x3a) {
        if (!this.sub) this.sub = [];
        this.sub.push(this.cur);
      } else {
        this.pushParam();
      }
      this.cur = -1;
      return;
    }
    if (c >= 0x3c && c <= 0x3f) {
      if (this.params.length === 0 && this.cur < 0 && this.prefix === '') this.prefix = String.fromCharCode(c);
      else this.prefix = '!bad';
      return;
    }
    if (c >= 0x20 && c <= 0x2f) {
      if (this.inter.length < 2) this.inter += String.fromCharCode(c);
      return;
    }
    if (c >= 0x40 && c <= 0x7e) {
      this.pushParam();
      this.state = GROUND;
      if (this.prefix !== '!bad') this.dispatch(String.fromCharCode(c));
      return;
    }
    // Anything else inside CSI is dropped.
  }

  pushParam() {
    let v = this.cur;
    if (this.sub) {
      this.sub.push(v);
      v = this.sub;
      this.sub = null;
    }
    if (this.params.length < MAX_PARAMS) this.params.push(v);
  }

  /** Parameter i (its first part), or def when absent or 0 and zeroIsDefault. */
  p(i, def) {
    let v = this.params[i];
    if (Array.isArray(v)) v = v[0];
    return v === undefined || v < 0 ? def : v;
  }

  /** A count parameter: at least 1. */
  n(i) {
    return Math.max(1, this.p(i, 1));
  }

  dispatch(f) {
    const pr = this.prefix;
    const it = this.inter;
    if (pr === '?') {
      if (f === 'h' || f === 'l') {
        for (let i = 0; i < this.params.length; i++) this.decMode(this.p(i, 0), f === 'h');
      } else if (f === 'J') {
        this.eraseDisplay(this.p(0, 0));
      } else if (f === 'K') {
        this.eraseLine(this.p(0, 0));
      }
      return;
    }
    if (pr === '>') {
      if (f === 'c') this.onReply('\x1b[>0;10;1c');
      return;
    }
    if (pr !== '') return;
    if (it === '!' && f === 'p') {
      this.softReset();
      return;
    }
    if (it !== '') return; // DECSCUSR (" q") and others: nothing to do
    const rows = this.rows;
    switch (f) {
      case '@':
        this.insertChars(this.n(0));
        break;
      case 'A':
        this.moveUp(this.n(0));
        break;
      case 'B':
      case 'e':
        this.moveDown(this.n(0));
        break;
      case 'C':
      case 'a':
        this.goto(this.x + this.n(0), this.y);
        break;
      case 'D':
        this.goto(this.x - this.n(0), this.y);
        break;
      case 'E':
        this.moveDown(this.n(0));
        this.x = 0;
        break;
      case 'F':
        this.moveUp(this.n(0));
        this.x = 0;
        break;
      case 'G':
      case '`':
        this.goto(this.n(0) - 1, this.y);
        break;
      case 'H':
      case 'f': {
        const off = this.modes.origin ? this.top : 0;
        let y = this.n(0) - 1 + off;
        if (this.modes.origin) y = Math.min(y, this.bottom);
        this.goto(this.n(1) - 1, y);
        break;
      }
      case 'I':
        this.tab(this.n(0));
        break;
      case 'J':
        this.eraseDisplay(this.p(0, 0));
        break;
      case 'K':
        this.eraseLine(this.p(0, 0));
        break;
      case 'L':
        this.insertLines(this.n(0));
        break;
      case 'M':
        this.deleteLines(this.n(0));
        break;
      case 'P':
        this.deleteChars(this.n(0));
        break;
      case 'S':
        this.scrollUp(this.n(0));
        break;
      case 'T':
        if (this.params.length <= 1) this.scrollDown(this.n(0));
        break;
      case 'X':
        this.eraseChars(this.n(0));
        break;
      case 'Z':
        this.tab(-this.n(0));
        break;
      case 'b': {
        const k = Math.min(this.n(0), this.cols * rows);
        const cp = this.lastChar.codePointAt(0);
        for (let i = 0; i < k; i++) this.print(cp);
        break;
      }
      case 'c':
        if (this.p(0, 0) === 0) this.onReply('\x1b[?1;2c');
        break;
      case 'd': {
        const off = this.modes.origin ? this.top : 0;
        this.goto(this.x, this.n(0) - 1 + off);
        break;
      }
      case 'g':
        if (this.p(0, 0) === 0) this.tabs.delete(this.x);
        else if (this.p(0, 0) === 3) this.tabs.clear();
        break;
      case 'h':
      case 'l':
        for (let i = 0; i < this.params.length; i++) {
          const m = this.p(i, 0);
          if (m === 4) this.modes.insert = f === 'h';
          else if (m === 20) this.modes.newline = f === 'h';
        }
        break;
      case 'm':
        this.sgr();
        break;
      case 'n':
        if (this.p(0, 0) === 5) this.onReply('\x1b[0n');
        else if (this.p(0, 0) === 6) {
          const y = this.modes.origin ? this.y - this.top : this.y;
          this.onReply(`\x1b[${y + 1};${this.x + 1}R`);
        }
        break;
      case 'r': {
        const top = this.p(0, 1) - 1;
        const bottom = Math.min(this.p(1, rows), rows) - 1;
        if (top >= 0 && top < bottom) {
          this.top = top;
          this.bottom = bottom;
          this.goto(0, this.modes.origin ? top : 0);
        }
        break;
      }
      case 's':
        this.saveCursor();
        break;
      case 'u':
        this.restoreCursor();
        break;
      case 't':
        if (this.p(0, 0) === 18) this.onReply(`\x1b[8;${rows};${this.cols}t`);
        break;
      default:
        break;
    }
  }

  decMode(m, on) {
    const md = this.modes;
    switch (m) {
      case 1:
        md.appCursor = on;
        break;
      case 5:
        md.reverseVideo = on;
        this.touchAll();
        break;
      case 6:
        md.origin = on;
        this.goto(0, on ? this.top : 0);
        break;
      case 7:
        md.autowrap = on;
        break;
      case 25:
        md.cursorVisible = on;
        break;
      case 47:
      case 1047:
        if (on) this.useAlt(true, false);
        else this.useAlt(false, m === 1047);
        break;
      case 1048:
        if (on) this.saveCursor();
        else this.restoreCursor();
        break;
      case 1049:
        if (on) {
          this.saveCursor();
          this.useAlt(true, true);
        } else {
          this.useAlt(false, false);
          this.restoreCursor();
        }
        break;
      case 2004:
        md.bracketedPaste = on;
        break;
      case 9:
      case 1000:
      case 1002:
      case 1003:
        md.mouse = on ? m : 0;
        break;
      default:
        break;
    }
  }

  useAlt(on, clear) {
    if (on) {
      if (!this.altActive) {
        this.altActive = true;
        this.buf = this.alt;
      }
      if (clear) {
        for (let y = 0; y < this.rows; y++) this.alt[y] = blankLine(this.cols, BLANK);
      }
    } else if (this.altActive) {
      if (clear) {
        for (let y = 0; y < this.rows; y++) this.alt[y] = blankLine(this.cols, BLANK);
      }
      this.altActive = false;
      this.buf = this.main;
    }
    this.touchAll();
  }

  softReset() {
    this.modes.insert = false;
    this.modes.origin = false;
    this.modes.autowrap = true;
    this.modes.appCursor = false;
    this.modes.cursorVisible = true;
    this.top = 0;
    this.bottom = this.rows - 1;
    this.pen = BLANK;
    this.charsets = ['B', 'B'];
    this.gl = 0;
    this.saved = null;
  }

  saveCursor() {
    this.saved = {
      x: this.x,
      y: this.y,
      pen: this.pen,
      wrapPending: this.wrapPending,
      origin: this.modes.origin,
      autowrap: this.modes.autowrap,
      charsets: this.charsets.slice(),
      gl: this.gl,
    };
  }

  restoreCursor() {
    const s = this.saved;
    if (!s) {
      this.goto(0, 0);
      this.pen = BLANK;
      return;
    }
    this.x = Math.min(s.x, this.cols - 1);
    this.y = Math.min(s.y, this.rows - 1);
    this.pen = s.pen;
    this.wrapPending = s.wrapPending && this.x === this.cols - 1;
    this.modes.origin = s.origin;
    this.modes.autowrap = s.autowrap;
    this.charsets = s.charsets.slice();
    this.gl = s.gl;
  }

  oscEnd() {
    const s = this.osc;
    this.osc = '';
    const semi = s.indexOf(';');
    const code = semi < 0 ? s : s.slice(0, semi);
    if (code === '0' || code === '2') {
      this.title = s.slice(semi + 1);
      this.onTitle(this.title);
    }
    // Other OSCs (colours, hyperlinks, clipboard) are ignored.
  }

  /** The pen erased cells get: the current background only (xterm's BCE). */
  erasePen() {
    return this.pen.bg === -1 ? BLANK : pen(-1, this.pen.bg, 0);
  }

  touch(line) {
    line.ver++;
    return line;
  }

  touchAll() {
    for (const l of this.buf) l.ver++;
  }

  goto(x, y) {
    this.x = Math.max(0, Math.min(this.cols - 1, x));
    this.y = Math.max(0, Math.min(this.rows - 1, y));
    this.wrapPending = false;
  }

  moveUp(n) {
    const stop = this.y >= this.top ? this.top : 0;
    this.goto(this.x, Math.max(stop, this.y - n));
  }

  moveDown(n) {
    const stop = this.y <= this.bottom ? this.bottom : this.rows - 1;
    this.goto(this.x, Math.min(stop, this.y + n));
  }

  tab(n) {
    let x = this.x;
    const step = n > 0 ? 1 : -1;
    for (let k = Math.abs(n); k > 0; k--) {
      x += step;
      while (x > 0 && x < this.cols - 1 && !this.tabs.has(x)) x += step;
      if (x <= 0 || x >= this.cols - 1) break;
    }
    this.x = Math.max(0, Math.min(this.cols - 1, x));
    this.wrapPending = false;
  }

  /** LF: down one line, scrolling the region at its bottom. */
  index() {
    this.wrapPending = false;
    if (this.y === this.bottom) this.scrollUp(1);
    else if (this.y < this.rows - 1) this.y++;
  }

  /** RI: up one line, scrolling the region down at its top. */
  reverseIndex() {
    this.wrapPending = false;
    if (this.y === this.top) this.scrollDown(1);
    else if (this.y > 0) this.y--;
  }

  pushScrollback(line) {
    if (this.maxScrollback <= 0) return;
    // Kept lines need no trailing blank cells.
    let end = line.ch.length;
    while (end > 0 && line.ch[end - 1] === ' ' && line.at[end - 1] === BLANK) end--;
    line.ch.length = end;
    line.at.length = end;
    this.scrollback.push(line);
    this.scrolledOut.push(line);
    if (this.scrollback.length > this.maxScrollback + 256) {
      this.scrollback.splice(0, this.scrollback.length - this.maxScrollback);
    }
    if (this.scrolledOut.length > this.maxScrollback + 256) {
      this.scrolledOut.splice(0, this.scrolledOut.length - this.maxScrollback);
    }
  }

  scrollUp(n) {
    const { top, bottom } = this;
    n = Math.min(n, bottom - top + 1);
    const ep = this.erasePen();
    for (let i = 0; i < n; i++) {
      const [gone] = this.buf.splice(top, 1);
      if (top === 0 && !this.altActive) this.pushScrollback(gone);
      this.buf.splice(bottom, 0, blankLine(this.cols, ep));
    }
  }

  scrollDown(n) {
    const { top, bottom } = this;
    n = Math.min(n, bottom - top + 1);
    const ep = this.erasePen();
    for (let i = 0; i < n; i++) {
      this.buf.splice(bottom, 1);
      this.buf.splice(top, 0, blankLine(this.cols, ep));
    }
  }

  insertLines(n) {
    if (this.y < this.top || this.y > this.bottom) return;
    n = Math.min(n, this.bottom - this.y + 1);
    const ep = this.erasePen();
    for (let i = 0; i < n; i++) {
      this.buf.splice(this.bottom, 1);
      this.buf.splice(this.y, 0, blankLine(this.cols, ep));
    }
    this.x = 0;
    this.wrapPending = false;
  }

  deleteLines(n) {
    if (this.y < this.top || this.y > this.bottom) return;
    n = Math.min(n, this.bottom - this.y + 1);
    const ep = this.erasePen();
    for (let i = 0; i < n; i++) {
      this.buf.splice(this.y, 1);
      this.buf.splice(this.bottom, 0, blankLine(this.cols, ep));
    }
    this.x = 0;
    this.wrapPending = false;
  }

  insertChars(n) {
    const l = this.touch(this.buf[this.y]);
    const x = this.x;
    n = Math.min(n, this.cols - x);
    const ep = this.erasePen();
    l.ch.splice(x, 0, ...new Array(n).fill(' '));
    l.at.splice(x, 0, ...new Array(n).fill(ep));
    l.ch.length = this.cols;
    l.at.length = this.cols;
    if (l.ch[this.cols - 1] === '' ) l.ch[this.cols - 1] = ' ';
    this.wrapPending = false;
  }

  deleteChars(n) {
    const l = this.touch(this.buf[this.y]);
    const x = this.x;
    n = Math.min(n, this.cols - x);
    const ep = this.erasePen();
    l.ch.splice(x, n);
    l.at.splice(x, n);
    for (let i = 0; i < n; i++) {
      l.ch.push(' ');
      l.at.push(ep);
    }
    if (l.ch[x] === '') l.ch[x] = ' ';
    this.wrapPending = false;
  }

  eraseCells(l, from, to) {
    const ep = this.erasePen();
    this.touch(l);
    if (from > 0 && l.ch[from] === '') l.ch[from - 1] = ' ';
    if (to < this.cols && l.ch[to] === '') l.ch[to] = ' ';
    for (let i = from; i < to; i++) {
      l.ch[i] = ' ';
      l.at[i] = ep;
    }
  }

  eraseChars(n) {
    this.eraseCells(this.buf[this.y], this.x, Math.min(this.cols, this.x + n));
    this.wrapPending = false;
  }

  eraseLine(mode) {
    const l = this.buf[this.y];
    if (mode === 0) this.eraseCells(l, this.x, this.cols);
    else if (mode === 1) this.eraseCells(l, 0, this.x + 1);
    else if (mode === 2) this.eraseCells(l, 0, this.cols);
    this.wrapPending = false;
  }

  eraseDisplay(mode) {
    if (mode === 0) {
      this.eraseLine(0);
      for (let y = this.y + 1; y < this.rows; y++) this.eraseCells(this.buf[y], 0, this.cols);
    } else if (mode === 1) {
      this.eraseLine(1);
      for (let y = 0; y < this.y; y++) this.eraseCells(this.buf[y], 0, this.cols);
    } else if (mode === 2) {
      for (let y = 0; y < this.rows; y++) this.eraseCells(this.buf[y], 0, this.cols);
    } else if (mode === 3) {
      this.scrollback = [];
      this.scrolledOut = [];
      this.scrollbackCleared = true;
    }
    this.wrapPending = false;
  }

  sgr() {
    const ps = this.params;
    let { fg, bg, flags } = this.pen;
    if (ps.length === 0) ps.push(-1);
    for (let i = 0; i < ps.length; i++) {
      const v = ps[i];
      const sub = Array.isArray(v) ? v : null;
      const n = sub ? Math.max(0, sub[0]) : Math.max(0, v);
      if (n === 0) {
        fg = -1;
        bg = -1;
        flags = 0;
      } else if (n === 1) flags |= BOLD;
      else if (n === 2) flags |= DIM;
      else if (n === 3) flags |= ITALIC;
      else if (n === 4) {
        if (sub && sub[1] === 0) flags &= ~UNDERLINE;
        else flags |= UNDERLINE;
      } else if (n === 5 || n === 6) flags |= BLINK;
      else if (n === 7) flags |= REVERSE;
      else if (n === 8) flags |= INVISIBLE;
      else if (n === 9) flags |= STRIKE;
      else if (n === 21) flags |= UNDERLINE;
      else if (n === 22) flags &= ~(BOLD | DIM);
      else if (n === 23) flags &= ~ITALIC;
      else if (n === 24) flags &= ~UNDERLINE;
      else if (n === 25) flags &= ~BLINK;
      else if (n === 27) flags &= ~REVERSE;
      else if (n === 28) flags &= ~INVISIBLE;
      else if (n === 29) flags &= ~STRIKE;
      else if (n >= 30 && n <= 37) fg = n - 30;
      else if (n === 39) fg = -1;
      else if (n >= 40 && n <= 47) bg = n - 40;
      else if (n === 49) bg = -1;
      else if (n >= 90 && n <= 97) fg = n - 90 + 8;
      else if (n >= 100 && n <= 107) bg = n - 100 + 8;
      else if (n === 38 || n === 48 || n === 58) {
        // 38;5;n or 38;2;r;g;b, or the colon forms 38:5:n, 38:2:r:g:b and
        // 38:2:<colour space>:r:g:b.
        let c;
        if (sub) {
          c = extColor(sub[1], sub.length >= 6 ? sub.slice(3) : sub.slice(2));
        } else {
          const kind = num(ps[i + 1]);
          c = extColor(kind, ps.slice(i + 2, i + 5).map(num));
          i += kind === 5 ? 2 : kind === 2 ? 4 : 1;
        }
        if (c !== undefined && n === 38) fg = c;
        else if (c !== undefined && n === 48) bg = c;
      }
    }
    this.pen = pen(fg, bg, flags);
  }

  print(cp) {
    let ch;
    if (this.charsets[this.gl] === '0' && cp >= 0x5f && cp <= 0x7e) {
      ch = LINE_DRAWING[String.fromCharCode(cp)] || String.fromCharCode(cp);
    } else {
      ch = String.fromCodePoint(cp);
    }
    const w = charWidth(cp);
    const cols = this.cols;
    if (w === 0) {
      // A combining mark joins the character before it.
      let x = this.wrapPending ? this.x : this.x - 1;
      const l = this.buf[this.y];
      if (x > 0 && l.ch[x] === '') x--;
      if (x >= 0 && l.ch[x].length < 32) {
        l.ch[x] += ch;
        this.touch(l);
      }
      return;
    }
    if (this.wrapPending) {
      this.wrapPending = false;
      if (this.modes.autowrap) {
        this.buf[this.y].wrapped = true;
        this.x = 0;
        this.index();
      }
    }
    if (w === 2 && this.x === cols - 1) {
      if (this.modes.autowrap && cols > 1) {
        const l = this.buf[this.y];
        this.eraseCells(l, this.x, cols);
        l.wrapped = true;
        this.x = 0;
        this.index();
      } else if (cols === 1) {
        return;
      } else {
        this.x = cols - 2;
      }
    }
    const l = this.touch(this.buf[this.y]);
    if (this.modes.insert) {
      l.ch.splice(this.x, 0, ...(w === 2 ? [' ', ' '] : [' ']));
      l.at.splice(this.x, 0, ...(w === 2 ? [BLANK, BLANK] : [BLANK]));
      l.ch.length = cols;
      l.at.length = cols;
      if (l.ch[cols - 1] === '') l.ch[cols - 1] = ' ';
    }
    const x = this.x;
    // Overwriting half of a wide character blanks its other half.
    if (l.ch[x] === '' && x > 0) l.ch[x - 1] = ' ';
    const after = x + w;
    if (after < cols && l.ch[after] === '') l.ch[after] = ' ';
    l.ch[x] = ch;
    l.at[x] = this.pen;
    if (w === 2) {
      l.ch[x + 1] = '';
      l.at[x + 1] = this.pen;
    }
    this.lastChar = ch;
    if (x + w >= cols) {
      this.x = cols - 1;
      this.wrapPending = this.modes.autowrap;
    } else {
      this.x = x + w;
    }
  }

  /** New size (no reflow): lines are cut or padded; rows leave at the top into the scrollback. */
  resize(cols, rows) {
    cols = Math.max(1, Math.min(1000, cols | 0));
    rows = Math.max(1, Math.min(500, rows | 0));
    if (cols === this.cols && rows === this.rows) return false;
    for (const buf of [this.main, this.alt]) {
      for (const l of buf) {
        if (cols < l.ch.length) {
          l.ch.length = cols;
          l.at.length = cols;
          if (l.ch[cols - 1] === '') l.ch[cols - 1] = ' ';
        } else {
          while (l.ch.length < cols) {
            l.ch.push(' ');
            l.at.push(BLANK);
          }
        }
        l.ver++;
      }
    }
    this.cols = cols;
    // Fewer rows: drop blank rows below the cursor first, then rows at the
    // top (into the scrollback on the main screen).
    for (const buf of [this.main, this.alt]) {
      const isCur = buf === this.buf;
      while (buf.length > rows) {
        const last = buf[buf.length - 1];
        if ((!isCur || this.y < buf.length - 1) && lineText(last) === '') {
          buf.pop();
        } else {
          const [gone] = buf.splice(0, 1);
          if (buf === this.main) this.pushScrollback(gone);
          if (isCur) this.y = Math.max(0, this.y - 1);
        }
      }
      while (buf.length < rows) buf.push(blankLine(cols, BLANK));
    }
    if (this.saved) this.saved.y = Math.min(this.saved.y, rows - 1);
    this.rows = rows;
    this.top = 0;
    this.bottom = rows - 1;
    this.x = Math.min(this.x, cols - 1);
    this.y = Math.min(this.y, rows - 1);
    this.wrapPending = false;
    this.changed = true;
    return true;
  }
}

const num = (v) => (Array.isArray(v) ? v[0] : v);

/** An extended colour: kind 5 (a palette index) or 2 (r, g, b). */
function extColor(kind, vs) {
  const ok = (v) => Number.isInteger(v) && v >= 0 && v <= 255;
  if (kind === 5) return ok(vs[0]) ? vs[0] : undefined;
  if (kind === 2 && ok(vs[0]) && ok(vs[1]) && ok(vs[2])) return RGB | (vs[0] << 16) | (vs[1] << 8) | vs[2];
  return undefined;
}

// The xterm 256-colour palette's 16..255 part, as CSS.
export function paletteColor(n) {
  if (n < 16) return `var(--fk-c${n})`;
  if (n < 232) {
    const k = n - 16;
    const lv = (v) => (v === 0 ? 0 : 55 + v * 40);
    return `rgb(${lv(Math.floor(k / 36))},${lv(Math.floor(k / 6) % 6)},${lv(k % 6)})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

function cssColor(c) {
  if (c >= RGB) return `#${(c & 0xffffff).toString(16).padStart(6, '0')}`;
  return paletteColor(c);
}

/**
 * The bytes a key press sends, or null for keys the terminal leaves to the
 * browser (modifier keys alone, Meta shortcuts, copy/paste).
 */
export function keyInput(e, modes = {}) {
  const key = e.key;
  if (!key || key === 'Unidentified' || e.isComposing || e.keyCode === 229) return null;
  if (e.metaKey) return null;
  const m = (e.shiftKey ? 1 : 0) + (e.altKey ? 2 : 0) + (e.ctrlKey ? 4 : 0);
  const mod = m ? `;${m + 1}` : '';
  const cursorKeys = { ArrowUp: 'A', ArrowDown: 'B', ArrowRight: 'C', ArrowLeft: 'D', Home: 'H', End: 'F' };
  if (cursorKeys[key]) {
    const f = cursorKeys[key];
    if (m) return `\x1b[1${mod}${f}`;
    return modes.appCursor ? `\x1bO${f}` : `\x1b[${f}`;
  }
  const tilde = { Insert: 2, Delete: 3, PageUp: 5, PageDown: 6, F5: 15, F6: 17, F7: 18, F8: 19, F9: 20, F10: 21, F11: 23, F12: 24 };
  if (tilde[key]) return `\x1b[${tilde[key]}${mod}~`;
  const pf = { F1: 'P', F2: 'Q', F3: 'R', F4: 'S' };
  if (pf[key]) return m ? `\x1b[1${mod}${pf[key]}` : `\x1bO${pf[key]}`;
  const alt = e.altKey && !e.ctrlKey ? '\x1b' : '';
  switch (key) {
    case 'Enter':
      return alt + (modes.newline ? '\r\n' : '\r');
    case 'Backspace':
      return alt + (e.ctrlKey ? '\x08' : '\x7f');
    case 'Tab':
      return e.shiftKey ? '\x1b[Z' : alt + '\t';
    case 'Escape':
      return alt + '\x1b';
    default:
      break;
  }
  if ([...key].length !== 1) return null;
  if (e.ctrlKey && !e.altKey) {
    let k = key;
    // Ctrl with another layout's letters: the key's position says which.
    if (e.code && /^Key[A-Z]$/.test(e.code) && !/^[a-zA-Z]$/.test(k)) k = e.code.slice(3);
    const lower = k.toLowerCase();
    if (lower >= 'a' && lower <= 'z' && lower.length === 1) {
      if (e.shiftKey && (lower === 'c' || lower === 'v')) return null; // copy, paste
      if (lower === 'v') return null; // paste
      return String.fromCharCode(lower.charCodeAt(0) - 96);
    }
    const ctl = { '@': 0, ' ': 0, 2: 0, '[': 27, 3: 27, '\\': 28, 4: 28, ']': 29, 5: 29, '^': 30, 6: 30, _: 31, '-': 31, 7: 31, '/': 31, '?': 127, 8: 127 };
    if (k in ctl) return String.fromCharCode(ctl[k]);
    return null;
  }
  if (e.ctrlKey && e.altKey) {
    // AltGr on some systems: the character it makes.
    return /^[a-zA-Z]$/.test(key) ? `\x1b${String.fromCharCode(key.toLowerCase().charCodeAt(0) - 96)}` : key;
  }
  return alt + key;
}

/** Pasted text as the terminal sends it: newlines as CR, bracketed when asked. */
export function pasteInput(text, modes = {}) {
  let t = text.replace(/\r?\n/g, '\r');
  if (modes.bracketedPaste) {
    // A paste cannot end the bracket itself.
    t = `\x1b[200~${t.replace(/\x1b\[201~/g, '')}\x1b[201~`;
  }
  return t;
}

// ---------------------------------------------------------------------------
// The page part.


const h = (tag, cls, attrs = {}) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

/** Renders a line into a row element: runs of one pen as spans. */
function renderLine(row, line, screenReverse) {
  let end = line.ch.length;
  while (end > 0 && line.ch[end - 1] === ' ' && plainPen(line.at[end - 1])) end--;
  const nodes = [];
  let i = 0;
  while (i < end) {
    const p = line.at[i];
    let s = line.ch[i];
    let j = i + 1;
    while (j < end && samePen(line.at[j], p)) {
      s += line.ch[j];
      j++;
    }
    if (p === BLANK && !screenReverse) {
      nodes.push(s);
    } else {
      const span = document.createElement('span');
      span.textContent = s;
      stylePen(span, p, screenReverse);
      nodes.push(span);
    }
    i = j;
  }
  row.replaceChildren(...nodes);
}

const plainPen = (p) => p.bg === -1 && !(p.flags & (REVERSE | UNDERLINE | STRIKE));

function stylePen(span, p, screenReverse) {
  let fg = p.fg;
  let bg = p.bg;
  const f = p.flags;
  const cls = [];
  let rev = !!(f & REVERSE) !== !!screenReverse;
  if (rev) [fg, bg] = [bg, fg];
  if (fg === -1) {
    if (rev) cls.push('fi');
  } else if (fg < 16) {
    cls.push(`f${(f & BOLD) && fg < 8 ? fg + 8 : fg}`);
  } else {
    span.style.color = cssColor(fg);
  }
  if (bg === -1) {
    if (rev) cls.push('bi');
  } else if (bg < 16) {
    cls.push(`b${bg}`);
  } else {
    span.style.backgroundColor = cssColor(bg);
  }
  if (f & BOLD) cls.push('tb');
  if (f & DIM) cls.push('td');
  if (f & ITALIC) cls.push('ti');
  if (f & UNDERLINE) cls.push('tu');
  if (f & STRIKE) cls.push('ts');
  if (f & INVISIBLE) cls.push('th');
  if (f & BLINK) cls.push('tk');
  span.className = cls.join(' ');
}

/**
 * Mounts a terminal running `command` (default a shell) in the container,
 * with a TTY. Returns dispose(): ends the session and empties `el`.
 * `[data-testid=terminal]` is the focusable screen; its text content is
 * the screen's text (rows joined by "\n").
 */
export function mountTerminal(el, { namespace, pod, container, command = ['sh'], scrollback = 5000, exec = openExec } = {}) {
  ensureCss();
  el.replaceChildren();
  const root = h('div', 'fk-term');
  const bar = h('div', 'fk-term-bar');
  const title = h('span', 'fk-term-title');
  title.textContent = `${pod}${container ? ` / ${container}` : ''} — ${command.join(' ')}`;
  const statusEl = h('span', 'fk-term-status', { 'data-testid': 'terminal-status', role: 'status' });
  const reconnect = h('button', 'fk-btn', { type: 'button', 'data-testid': 'terminal-reconnect', hidden: '' });
  reconnect.textContent = 'Reconnect';
  bar.append(title, statusEl, reconnect);
  const wrap = h('div', 'fk-term-wrap');
  const sbEl = h('div', 'fk-term-sb', { 'aria-hidden': 'true' });
  const box = h('div', 'fk-term-box');
  const screenEl = h('div', 'fk-term-screen', {
    'data-testid': 'terminal',
    tabindex: '0',
    role: 'textbox',
    'aria-label': 'Terminal',
    'aria-multiline': 'true',
  });
  const input = h('textarea', 'fk-term-input', {
    'aria-hidden': 'true',
    tabindex: '-1',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
  });
  const cursor = h('div', 'fk-term-cursor');
  const measure = h('div', 'fk-term-measure', { 'aria-hidden': 'true' });
  measure.textContent = 'W'.repeat(40);
  box.append(screenEl, cursor);
  wrap.append(sbEl, box, measure);
  root.append(bar, wrap);
  el.append(root);

  let session = null;
  let ended = false;
  let disposed = false;
  let rowEls = [];
  let rendered = []; // [line, ver] per row
  let raf = 0;
  let cell = { w: 8, h: 17 };
  const outDecoder = { d: new TextDecoder('utf-8') };
  const errDecoder = { d: new TextDecoder('utf-8') };

  const screen = new Screen(80, 24, {
    scrollback,
    onReply: (s) => session && !ended && session.send(s),
    onBell: () => {
      root.classList.add('fk-bell');
      setTimeout(() => root.classList.remove('fk-bell'), 150);
    },
  });

  const setStatus = (text, kind) => {
    statusEl.textContent = text;
    statusEl.dataset.state = kind;
  };

  const atBottom = () => wrap.scrollTop + wrap.clientHeight >= wrap.scrollHeight - 4;

  const render = () => {
    raf = 0;
    if (disposed) return;
    const stick = atBottom();
    // Rows: as many elements as the screen has, separated by "\n" text so
    // the element's text is the screen's text.
    if (rowEls.length !== screen.rows) {
      // The hidden input stays first and in place (moving it would take
      // the focus away); the rows after it are made anew.
      if (input.parentNode !== screenEl) screenEl.prepend(input);
      while (input.nextSibling) input.nextSibling.remove();
      const nodes = [];
      rowEls = [];
      rendered = [];
      for (let y = 0; y < screen.rows; y++) {
        if (y > 0) nodes.push('\n');
        const r = h('div', 'fk-row');
        rowEls.push(r);
        rendered.push(null);
        nodes.push(r);
      }
      screenEl.append(...nodes);
    }
    if (screen.scrollbackCleared) {
      screen.scrollbackCleared = false;
      sbEl.replaceChildren();
    }
    if (screen.scrolledOut.length) {
      const frag = document.createDocumentFragment();
      for (const line of screen.scrolledOut) {
        const r = h('div', 'fk-row');
        renderLine(r, line, screen.modes.reverseVideo);
        frag.append(r);
      }
      screen.scrolledOut = [];
      sbEl.append(frag);
      let extra = sbEl.childElementCount - screen.maxScrollback;
      while (extra-- > 0 && sbEl.firstChild) sbEl.firstChild.remove();
    }
    const rv = screen.modes.reverseVideo;
    root.classList.toggle('fk-rv', rv);
    for (let y = 0; y < screen.rows; y++) {
      const line = screen.buf[y];
      const r = rendered[y];
      if (r && r[0] === line && r[1] === line.ver && r[2] === rv) continue;
      renderLine(rowEls[y], line, rv);
      rendered[y] = [line, line.ver, rv];
    }
    // The cursor.
    const show = screen.modes.cursorVisible && !ended;
    cursor.hidden = !show;
    const line = screen.buf[screen.y];
    const wide = line && line.ch[screen.x + 1] === '';
    cursor.style.transform = `translate(${screen.x * cell.w}px, ${screen.y * cell.h}px)`;
    cursor.style.width = `${cell.w * (wide ? 2 : 1)}px`;
    cursor.style.height = `${cell.h}px`;
    input.style.transform = cursor.style.transform;
    if (stick) wrap.scrollTop = wrap.scrollHeight;
  };

  const schedule = () => {
    if (!raf && !disposed) raf = requestAnimationFrame(render);
  };

  // Size: the cell measured from the font; the grid fills the wrap.
  const fit = () => {
    if (disposed) return;
    // Hidden (display: none, a closed tab): keep the size the program has.
    if (wrap.clientWidth === 0 || wrap.clientHeight === 0) return;
    const mr = measure.getBoundingClientRect();
    if (mr.width > 0) cell = { w: mr.width / 40, h: mr.height || cell.h };
    screenEl.style.setProperty('--fk-cell-h', `${cell.h}px`);
    const cs = getComputedStyle(wrap);
    const padX = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
    const padY = parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom);
    const cols = Math.max(2, Math.floor((wrap.clientWidth - padX) / cell.w));
    const rows = Math.max(1, Math.floor((wrap.clientHeight - padY) / cell.h));
    if (screen.resize(cols, rows)) schedule();
    if (session && !ended) session.resize(screen.cols, screen.rows);
    screenEl.style.width = `${screen.cols * cell.w}px`;
    screenEl.style.height = `${screen.rows * cell.h}px`;
  };
  let fitRaf = 0;
  const ro = new ResizeObserver(() => {
    if (!fitRaf) {
      fitRaf = requestAnimationFrame(() => {
        fitRaf = 0;
        fit();
      });
    }
  });
  ro.observe(wrap);

  const send = (s) => {
    if (!session || ended || !s) return;
    session.send(s);
    if (!atBottom()) wrap.scrollTop = wrap.scrollHeight;
  };

  const onKey = (e) => {
    if (ended) return;
    if (e.shiftKey && !e.ctrlKey && (e.key === 'PageUp' || e.key === 'PageDown')) {
      wrap.scrollTop += (e.key === 'PageUp' ? -1 : 1) * (wrap.clientHeight - cell.h);
      e.preventDefault();
      return;
    }
    // Ctrl+C with text selected copies it; so does Ctrl+Shift+C (which
    // would otherwise open the browser's inspector).
    if (e.ctrlKey && (e.key === 'c' || e.key === 'C')) {
      const sel = window.getSelection();
      const text = sel && !sel.isCollapsed && root.contains(sel.anchorNode) ? sel.toString() : '';
      if (e.shiftKey) {
        e.preventDefault();
        if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
        return;
      }
      if (text) return;
    }
    const data = keyInput(e, screen.modes);
    if (data === null) return;
    e.preventDefault();
    e.stopPropagation();
    send(data);
  };
  const onInput = (e) => {
    if (e.isComposing) return;
    const v = input.value;
    input.value = '';
    if (v) send(v.replace(/\r?\n/g, '\r'));
  };
  const onCompositionEnd = () => {
    const v = input.value;
    input.value = '';
    if (v) send(v);
  };
  const onPaste = (e) => {
    const text = e.clipboardData && e.clipboardData.getData('text/plain');
    e.preventDefault();
    if (text) send(pasteInput(text, screen.modes));
  };
  // The screen is the focusable element; typing goes through the hidden
  // textarea inside it (IME, insertText, mobile keyboards).
  const onFocus = (e) => {
    if (e.target === screenEl) input.focus({ preventScroll: true });
  };
  // The wheel on the alternate screen (a full-screen program that reads
  // no mouse) scrolls it with arrow keys, as xterm's alternateScroll does.
  const onWheel = (e) => {
    if (ended || !screen.altActive || screen.modes.mouse || e.deltaY === 0) return;
    e.preventDefault();
    const n = Math.min(10, Math.max(1, Math.round(Math.abs(e.deltaY) / (cell.h || 16))));
    const up = e.deltaY < 0;
    const k = screen.modes.appCursor ? (up ? '\x1bOA' : '\x1bOB') : up ? '\x1b[A' : '\x1b[B';
    send(k.repeat(n));
  };
  const onMouseUp = () => {
    const sel = window.getSelection();
    if (!sel || sel.isCollapsed) input.focus({ preventScroll: true });
  };
  screenEl.addEventListener('keydown', onKey);
  screenEl.addEventListener('paste', onPaste);
  screenEl.addEventListener('focus', onFocus);
  input.addEventListener('input', onInput);
  input.addEventListener('compositionend', onCompositionEnd);
  wrap.addEventListener('mouseup', onMouseUp);
  wrap.addEventListener('wheel', onWheel, { passive: false });

  const write = (text) => {
    screen.write(text);
    schedule();
  };

  const connect = () => {
    ended = false;
    reconnect.hidden = true;
    outDecoder.d = new TextDecoder('utf-8');
    errDecoder.d = new TextDecoder('utf-8');
    setStatus('Connecting…', 'connecting');
    let status = null;
    const opts = { namespace, pod, container, command, tty: true };
    session = exec(opts, {
      onOpen: () => {
        setStatus('Connected', 'open');
        session.resize(screen.cols, screen.rows);
      },
      onStdout: (b) => write(outDecoder.d.decode(b, { stream: true })),
      onStderr: (b) => write(errDecoder.d.decode(b, { stream: true })),
      onStatus: (s) => {
        status = s;
      },
      onClose: async (info) => {
        if (disposed || ended) return;
        ended = true;
        const rest = outDecoder.d.decode() + errDecoder.d.decode();
        if (rest) screen.write(rest);
        let msg;
        const st = status || info.status;
        if (st) {
          const x = exitOf(st);
          msg = x.exitCode !== null ? `session ended (exit code ${x.exitCode})` : `session ended: ${x.message}`;
        } else if (!info.opened) {
          setStatus('Connecting failed…', 'error');
          const why = await explainFailure(opts);
          if (disposed) return;
          msg = `could not connect: ${why}`;
        } else {
          msg = `session ended (connection closed${info.code && info.code !== 1000 ? `, code ${info.code}` : ''})`;
        }
        setStatus(msg, 'ended');
        screen.write(`\r\n\x1b[0;2m[${msg}]\x1b[0m`);
        root.classList.add('fk-ended');
        reconnect.hidden = false;
        schedule();
      },
    });
    root.classList.remove('fk-ended');
  };

  reconnect.addEventListener('click', () => {
    if (!ended || disposed) return;
    screen.write('\r\n');
    connect();
    fit();
    screenEl.focus();
  });

  fit();
  render();
  connect();
  // A font that arrives later changes the cell.
  if (document.fonts && document.fonts.ready) document.fonts.ready.then(fit, () => {});
  screenEl.focus({ preventScroll: true });

  return function dispose() {
    if (disposed) return;
    disposed = true;
    ended = true;
    ro.disconnect();
    if (raf) cancelAnimationFrame(raf);
    if (fitRaf) cancelAnimationFrame(fitRaf);
    screenEl.removeEventListener('keydown', onKey);
    screenEl.removeEventListener('paste', onPaste);
    screenEl.removeEventListener('focus', onFocus);
    input.removeEventListener('input', onInput);
    input.removeEventListener('compositionend', onCompositionEnd);
    wrap.removeEventListener('mouseup', onMouseUp);
    wrap.removeEventListener('wheel', onWheel);
    if (session) {
      // End of input first (v5), so the shell sees it, then the socket.
      const s = session;
      s.closeStdin();
      setTimeout(() => s.close(), 200);
    }
    el.replaceChildren();
  };
}
