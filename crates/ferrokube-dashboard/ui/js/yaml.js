// YAML for people: an emitter for the YAML view (kubectl's layout) and a
// parser for edit and create, covering what Kubernetes manifests use:
// block mappings and sequences, plain/quoted/block scalars, flow [..] and
// {..}, comments and `---` documents (no anchors or tags).

const PLAIN_SAFE = /^[A-Za-z0-9_./][A-Za-z0-9_./ :@,=+()$%^&*!?<>\-]*$/;
const AMBIGUOUS = /^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|y|Y|n|N|[-+]?(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/;

function scalar(s) {
  if (s === '') return '""';
  if (AMBIGUOUS.test(s) || !PLAIN_SAFE.test(s) || s.endsWith(' ') || s.endsWith(':') ||
      s.includes(': ') || s.includes(' #')) {
    return JSON.stringify(s);
  }
  return s;
}

function key(k) {
  return scalar(String(k));
}

function emitScalar(v) {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  return scalar(String(v));
}

// Multi-line text as a literal block when it reads back the same: no tabs
// or carriage returns, no line ending in a space, not starting with one.
function isBlockString(v) {
  if (typeof v !== 'string' || !v.includes('\n') || /[\t\r\u0085\u2028\u2029]/.test(v) || /^\s/.test(v)) return false;
  return v.split('\n').every((l) => !/ $/.test(l));
}

function blockString(v, ind) {
  const body = v.endsWith('\n') ? v.slice(0, -1) : v;
  const chomp = v.endsWith('\n\n') ? '+' : v.endsWith('\n') ? '' : '-';
  const pad = ' '.repeat(ind);
  return '|' + chomp + '\n' + body.split('\n').map((l) => (l ? pad + l : '')).join('\n');
}

function emitNode(v, ind, out) {
  const pad = ' '.repeat(ind);
  if (Array.isArray(v)) {
    for (const item of v) {
      if (item && typeof item === 'object' && !Array.isArray(item) && Object.keys(item).length) {
        const sub = [];
        emitNode(item, ind + 2, sub);
        sub[0] = pad + '- ' + sub[0].slice(ind + 2);
        out.push(...sub);
      } else if (Array.isArray(item) && item.length) {
        const sub = [];
        emitNode(item, ind + 2, sub);
        sub[0] = pad + '- ' + sub[0].slice(ind + 2);
        out.push(...sub);
      } else if (isBlockString(item)) {
        out.push(pad + '- ' + blockString(item, ind + 2));
      } else {
        out.push(pad + '- ' + inline(item));
      }
    }
    return;
  }
  for (const [k, val] of Object.entries(v)) {
    if (val && typeof val === 'object' && !Array.isArray(val) && Object.keys(val).length) {
      out.push(pad + key(k) + ':');
      emitNode(val, ind + 2, out);
    } else if (Array.isArray(val) && val.length) {
      out.push(pad + key(k) + ':');
      emitNode(val, ind, out);
    } else if (isBlockString(val)) {
      out.push(pad + key(k) + ': ' + blockString(val, ind + 2));
    } else {
      out.push(pad + key(k) + ': ' + inline(val));
    }
  }
}

function inline(v) {
  if (Array.isArray(v)) return '[]';
  if (v && typeof v === 'object') return '{}';
  return emitScalar(v);
}

/** YAML text of a JSON value. */
export function toYaml(v) {
  if (v === null || typeof v !== 'object') return emitScalar(v) + '\n';
  if (Array.isArray(v) ? !v.length : !Object.keys(v).length) return inline(v) + '\n';
  const out = [];
  emitNode(v, 0, out);
  return out.join('\n') + '\n';
}

/** A copy without metadata.managedFields (the YAML view and the editor). */
export function withoutManagedFields(obj) {
  if (!obj || !obj.metadata || !obj.metadata.managedFields) return obj;
  const metadata = { ...obj.metadata };
  delete metadata.managedFields;
  return { ...obj, metadata };
}

// ---------------------------------------------------------------- parser

export class YamlError extends Error {
  constructor(message, line) {
    super(line !== undefined ? `line ${line + 1}: ${message}` : message);
  }
}

function resolvePlain(s) {
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  if (/^(true|True|TRUE|yes|Yes|YES|on|On|ON)$/.test(s)) return true;
  if (/^(false|False|FALSE|no|No|NO|off|Off|OFF)$/.test(s)) return false;
  if (/^[-+]?\d+$/.test(s)) {
    const n = Number(s);
    if (Number.isSafeInteger(n)) return n;
    return s;
  }
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  if (/^[-+]?\.(inf|Inf|INF)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(s)) return NaN;
  return s;
}

function indentOf(line) {
  let i = 0;
  while (i < line.length && line[i] === ' ') i++;
  return i;
}

/** The text of a line without a trailing comment (outside quotes). */
function stripComment(s) {
  let q = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === '\\' && q === '"') i++;
      else if (c === q) q = '';
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s[{,:]/.test(s[i - 1])) q = c;
    } else if (c === '#' && (i === 0 || s[i - 1] === ' ' || s[i - 1] === '\t')) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

/** Where the `key:` separator of a mapping line is, or -1. */
function keyEnd(s) {
  let i = 0;
  if (s[0] === '"' || s[0] === "'") {
    const q = s[0];
    i = 1;
    while (i < s.length) {
      if (s[i] === '\\' && q === '"') { i += 2; continue; }
      if (s[i] === q) { if (q === "'" && s[i + 1] === "'") { i += 2; continue; } break; }
      i++;
    }
    i++;
    while (s[i] === ' ') i++;
    return s[i] === ':' && (i + 1 === s.length || s[i + 1] === ' ') ? i : -1;
  }
  if (s[0] === '[' || s[0] === '{' || s.startsWith('- ') || s === '-') return -1;
  for (; i < s.length; i++) {
    if (s[i] === ':' && (i + 1 === s.length || s[i + 1] === ' ')) return i;
    if (s[i] === ' ' && s[i + 1] === '#') return -1;
  }
  return -1;
}

function unquoteDouble(s, line) {
  try {
    return JSON.parse(s.replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1').replace(/\t/g, '\\t'));
  } catch {
    throw new YamlError('bad double-quoted string', line);
  }
}

class Parser {
  constructor(text) {
    this.lines = text.replace(/\r\n?/g, '\n').split('\n');
    // The text after the last newline is no line.
    if (this.lines.length > 1 && this.lines[this.lines.length - 1] === '') this.lines.pop();
    this.i = 0;
  }

  // Skips blank and comment lines; returns the next content line's index or -1.
  next() {
    while (this.i < this.lines.length) {
      const l = this.lines[this.i];
      const t = l.trim();
      if (t === '' || t.startsWith('#')) { this.i++; continue; }
      if (l.includes('\t') && /^\s*\t/.test(l)) throw new YamlError('tabs cannot indent', this.i);
      return this.i;
    }
    return -1;
  }

  node(minIndent) {
    const at = this.next();
    if (at < 0) return null;
    const line = this.lines[at];
    const ind = indentOf(line);
    if (ind < minIndent) return null;
    const content = stripComment(line.slice(ind));
    if (content === '---' || content === '...') return null;
    if (content === '-' || content.startsWith('- ')) return this.seq(ind);
    if (keyEnd(content) >= 0) return this.map(ind);
    this.i++;
    return this.value(content, ind, at);
  }

  seq(ind) {
    const out = [];
    for (let guard = 0; guard < 1e6; guard++) {
      const at = this.next();
      if (at < 0) break;
      const line = this.lines[at];
      if (indentOf(line) !== ind) break;
      const content = stripComment(line.slice(ind));
      if (!(content === '-' || content.startsWith('- '))) break;
      const rest = content.slice(1);
      if (rest.trim() === '') {
        this.i++;
        out.push(this.node(ind + 1));
      } else {
        // Re-read the item's text as if it started on its own line, deeper.
        const extra = 1 + indentOf(rest);
        this.lines[at] = ' '.repeat(ind + extra) + rest.slice(indentOf(rest));
        out.push(this.node(ind + 1));
      }
    }
    return out;
  }

  map(ind) {
    const out = {};
    for (let guard = 0; guard < 1e6; guard++) {
      const at = this.next();
      if (at < 0) break;
      const line = this.lines[at];
      if (indentOf(line) !== ind) {
        if (indentOf(line) > ind) throw new YamlError('unexpected indentation', at);
        break;
      }
      const content = stripComment(line.slice(ind));
      if (content === '---' || content === '...') break;
      const e = keyEnd(content);
      if (e < 0) {
        if (content.startsWith('- ') || content === '-') break;
        throw new YamlError('expected "key: value"', at);
      }
      let k = content.slice(0, e).trim();
      if (k[0] === '"') k = unquoteDouble(k, at);
      else if (k[0] === "'") k = k.slice(1, -1).replace(/''/g, "'");
      const rest = content.slice(e + 1).trim();
      this.i = at + 1;
      if (Object.prototype.hasOwnProperty.call(out, k)) throw new YamlError(`duplicate key "${k}"`, at);
      if (rest === '') {
        const nx = this.next();
        if (nx < 0) { out[k] = null; continue; }
        const nind = indentOf(this.lines[nx]);
        const nc = this.lines[nx].slice(nind);
        if (nind > ind) out[k] = this.node(ind + 1);
        else if (nind === ind && (nc.startsWith('- ') || nc.trim() === '-')) out[k] = this.seq(ind);
        else out[k] = null;
      } else {
        out[k] = this.value(rest, ind, at, line.slice(ind + e + 1));
      }
    }
    return out;
  }

  // A quoted scalar that starts with `s`, joined with the lines after it
  // until `closed` says its closing quote is there.
  quoted(s, closed, at) {
    for (let n = 0; !closed(s) && n < 100000; n++) {
      if (this.i >= this.lines.length) throw new YamlError('unterminated string', at);
      s += '\n' + this.lines[this.i++];
    }
    return s;
  }

  // A value written on a line (after `key:` or alone).
  value(text, ind, at, raw) {
    const c = text[0];
    if (c === '|' || c === '>') return this.block(text, ind, at);
    if (c === '[' || c === '{') return this.flowMulti(text, at);
    if (c === '"') {
      const s = this.quoted(raw !== undefined ? raw.trim() : text, closedDouble, at);
      const end = endDouble(s);
      const tail = stripComment(s.slice(end + 1)).trim();
      if (tail) throw new YamlError('text after a quoted string', at);
      return unquoteDouble(foldQuoted(s.slice(0, end + 1)), at);
    }
    if (c === "'") {
      const s = this.quoted(raw !== undefined ? raw.trim() : text, closedSingle, at);
      const end = endSingle(s);
      return foldQuoted(s.slice(1, end)).replace(/''/g, "'");
    }
    if (c === '&' || c === '*' || c === '!') throw new YamlError('anchors, aliases and tags are not supported', at);
    // A plain scalar, maybe continued on deeper lines.
    let s = text;
    for (let n = 0; n < 100000; n++) {
      const nx = this.next();
      if (nx < 0) break;
      const l = this.lines[nx];
      if (indentOf(l) <= ind) break;
      const t = stripComment(l.trim());
      if (keyEnd(t) >= 0 || t.startsWith('- ')) break;
      s += ' ' + t;
      this.i = nx + 1;
    }
    return resolvePlain(s);
  }

  block(header, ind, at) {
    const m = /^([|>])([+-]?)(\d?)([+-]?)\s*(#.*)?$/.exec(header);
    if (!m) throw new YamlError('bad block scalar header', at);
    const folded = m[1] === '>';
    const chomp = m[2] || m[4];
    const lines = [];
    let blockInd = m[3] ? ind + Number(m[3]) : -1;
    while (this.i < this.lines.length) {
      const l = this.lines[this.i];
      if (l.trim() === '') { lines.push(''); this.i++; continue; }
      const li = indentOf(l);
      if (blockInd < 0) {
        if (li <= ind) break;
        blockInd = li;
      }
      if (li < blockInd) break;
      lines.push(l.slice(blockInd));
      this.i++;
    }
    // Trailing blank lines belong to chomping.
    let trailing = 0;
    while (lines.length && lines[lines.length - 1] === '') { lines.pop(); trailing++; }
    let body;
    if (folded) {
      body = '';
      for (let k = 0; k < lines.length; k++) {
        const l = lines[k];
        if (k === 0) body = l;
        else if (l === '' || l.startsWith(' ') || lines[k - 1].startsWith(' ') || lines[k - 1] === '') body += '\n' + l;
        else body += ' ' + l;
      }
      body = body.replace(/\n(?=[^\n ])/g, (x, off) => (body[off - 1] === '\n' ? '' : '\n'));
    } else {
      body = lines.join('\n');
    }
    if (!lines.length) return '';
    if (chomp === '-') return body;
    if (chomp === '+') return body + '\n'.repeat(trailing + 1);
    return body + '\n';
  }

  flowMulti(text, at) {
    let s = text;
    for (let n = 0; !balanced(s) && n < 100000; n++) {
      if (this.i >= this.lines.length) throw new YamlError('unterminated flow collection', at);
      s += ' ' + stripComment(this.lines[this.i++].trim());
    }
    const f = new Flow(s, at);
    const v = f.value();
    f.ws();
    if (f.p < s.length) throw new YamlError('text after a flow collection', at);
    return v;
  }
}

function endDouble(s) {
  for (let i = 1; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '"') return i;
  }
  return -1;
}
function closedDouble(s) { return endDouble(s) >= 0; }
function endSingle(s) {
  for (let i = 1; i < s.length; i++) {
    if (s[i] === "'") { if (s[i + 1] === "'") { i++; continue; } return i; }
  }
  return -1;
}
function closedSingle(s) { return endSingle(s) >= 0; }
function foldQuoted(s) {
  return s.replace(/[ \t]*\n[ \t]*/g, '\n').replace(/([^\n])\n(?!\n)/g, '$1 ').replace(/\n\n/g, '\n');
}

function balanced(s) {
  let depth = 0;
  let q = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === '\\' && q === '"') i++;
      else if (c === q) q = '';
    } else if (c === '"' || c === "'") q = c;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
  }
  return depth <= 0 && !q;
}

class Flow {
  constructor(s, line) { this.s = s; this.p = 0; this.line = line; }
  ws() { while (this.p < this.s.length && /\s/.test(this.s[this.p])) this.p++; }
  value() {
    this.ws();
    const c = this.s[this.p];
    if (c === '[') {
      this.p++;
      const out = [];
      for (let n = 0; n < 1e6; n++) {
        this.ws();
        if (this.s[this.p] === ']') { this.p++; return out; }
        out.push(this.value());
        this.ws();
        if (this.s[this.p] === ',') this.p++;
        else if (this.s[this.p] !== ']') throw new YamlError('expected , or ]', this.line);
      }
    }
    if (c === '{') {
      this.p++;
      const out = {};
      for (let n = 0; n < 1e6; n++) {
        this.ws();
        if (this.s[this.p] === '}') { this.p++; return out; }
        const k = this.scalar(true);
        this.ws();
        let v = null;
        if (this.s[this.p] === ':') { this.p++; v = this.value(); }
        out[String(k)] = v;
        this.ws();
        if (this.s[this.p] === ',') this.p++;
        else if (this.s[this.p] !== '}') throw new YamlError('expected , or }', this.line);
      }
    }
    return this.scalar(false);
  }
  scalar(isKey) {
    this.ws();
    const s = this.s;
    if (s[this.p] === '"') {
      const rest = s.slice(this.p);
      const e = endDouble(rest);
      if (e < 0) throw new YamlError('unterminated string', this.line);
      this.p += e + 1;
      return unquoteDouble(rest.slice(0, e + 1), this.line);
    }
    if (s[this.p] === "'") {
      const rest = s.slice(this.p);
      const e = endSingle(rest);
      if (e < 0) throw new YamlError('unterminated string', this.line);
      this.p += e + 1;
      return rest.slice(1, e).replace(/''/g, "'");
    }
    const start = this.p;
    while (this.p < s.length && !',]}'.includes(s[this.p]) && !(s[this.p] === ':' && (isKey || /\s/.test(s[this.p + 1] || ' ')))) this.p++;
    const t = s.slice(start, this.p).trim();
    return isKey ? t : resolvePlain(t);
  }
}

/** The documents of a YAML stream, each with its own text. */
export function splitDocuments(text) {
  const docs = [];
  let cur = [];
  for (const l of text.replace(/\r\n?/g, '\n').split('\n')) {
    if (/^---(\s|$)/.test(l) || /^\.\.\.\s*$/.test(l)) {
      docs.push(cur.join('\n'));
      cur = [];
      const rest = l.slice(3).trim();
      if (rest && !rest.startsWith('#') && !l.startsWith('...')) cur.push(rest);
    } else {
      cur.push(l);
    }
  }
  docs.push(cur.join('\n'));
  return docs.filter((d) => d.split('\n').some((l) => l.trim() && !l.trim().startsWith('#')));
}

/** Parses one YAML document (JSON is YAML too). */
export function parseYaml(text) {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    try { return JSON.parse(t); } catch { /* flow YAML below */ }
  }
  const p = new Parser(text);
  const v = p.node(0);
  const rest = p.next();
  if (rest >= 0) {
    const c = p.lines[rest].trim();
    if (c !== '---' && c !== '...') throw new YamlError('unexpected text', rest);
  }
  return v;
}
