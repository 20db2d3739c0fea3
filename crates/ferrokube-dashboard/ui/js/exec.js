// Exec into a container over the Kubernetes WebSocket remote-command
// protocol, as kubectl 1.32 speaks it: subprotocol `v5.channel.k8s.io`
// (`v4.channel.k8s.io` offered second). Every binary message is one channel
// byte and its data: 0 stdin, 1 stdout, 2 stderr, 3 the error channel (a
// metav1.Status once the command has ended), 4 resize (JSON
// `{"Width":w,"Height":h}`); v5 adds 255 = CLOSE, whose next byte is the
// channel the sender has finished writing. The session cookie authenticates
// the upgrade (the browser sends it and the Origin itself).

export const PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];

const CH_STDIN = 0;
const CH_STDOUT = 1;
const CH_STDERR = 2;
const CH_ERROR = 3;
const CH_RESIZE = 4;
const CH_CLOSE = 255;

/** Input queued while the socket is still connecting (bytes, bounded). */
const MAX_QUEUED = 1 << 20;
/**
 * An empty stdin message this often keeps idle sessions from being cut by
 * proxies between the browser and the server (browsers cannot send
 * WebSocket pings, which kubectl sends every 5 s); API servers drop empty
 * data.
 */
const KEEPALIVE_MS = 30000;
/** The error channel is one small Status; more than this is not read. */
const MAX_STATUS = 64 << 10;

const enc = new TextEncoder();

/** The exec URL (path and query) for these options, as kubectl builds it. */
export function execPath({ namespace, pod, container, command = ['sh'], tty = true, stdin = true }) {
  const q = new URLSearchParams();
  for (const c of command) q.append('command', c);
  if (container) q.set('container', container);
  if (stdin) q.set('stdin', 'true');
  q.set('stdout', 'true');
  // With a TTY the output streams are one (kubectl asks for no stderr).
  if (!tty) q.set('stderr', 'true');
  if (tty) q.set('tty', 'true');
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/exec?${q}`;
}

/**
 * What a remote-command Status says about how the command ended:
 * `{ exitCode, message }`; exitCode is null when the Status is not an exit
 * (an error of the API server or the runtime: message says what).
 */
export function exitOf(status) {
  if (!status || typeof status !== 'object') return { exitCode: null, message: 'no status' };
  if (status.status === 'Success') return { exitCode: 0, message: '' };
  if (status.reason === 'NonZeroExitCode') {
    const causes = (status.details && status.details.causes) || [];
    for (const c of causes) {
      // StatusCause.Type is "reason" in JSON.
      if (c && c.reason === 'ExitCode') {
        const n = Number.parseInt(c.message, 10);
        if (Number.isFinite(n)) return { exitCode: n, message: status.message || '' };
      }
    }
  }
  return { exitCode: null, message: status.message || status.reason || 'the command failed' };
}

/**
 * Opens an exec session. `handlers`: onOpen(protocol), onStdout(Uint8Array),
 * onStderr(Uint8Array), onStatus(status object), onClose({code, reason,
 * opened, status, error}) — called once, last. Returns the session:
 * send(string|Uint8Array), resize(cols, rows), closeStdin(), close().
 */
export function openExec(opts, handlers = {}) {
  const h = handlers;
  const path = execPath(opts);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  let ws;
  let opened = false;
  let closed = false;
  let queue = [];
  let queued = 0;
  let statusBytes = [];
  let statusLen = 0;
  let status = null;
  let size = null;
  let stdinClosed = false;

  let keepalive = 0;
  const finish = (info) => {
    if (closed) return;
    closed = true;
    if (keepalive) clearInterval(keepalive);
    queue = [];
    parseStatus(true);
    h.onClose && h.onClose({ ...info, opened, status });
  };

  // Reads the error channel's bytes as a Status; `final` (at the close)
  // takes what is there as text when it is not JSON (v1-v3 send text).
  const parseStatus = (final) => {
    if (status || statusLen === 0) return;
    const all = new Uint8Array(statusLen);
    let off = 0;
    for (const b of statusBytes) {
      all.set(b, off);
      off += b.length;
    }
    const text = new TextDecoder().decode(all);
    try {
      status = JSON.parse(text);
    } catch {
      if (!final) return;
      status = { status: 'Failure', message: text };
    }
    statusBytes = [];
    h.onStatus && h.onStatus(status);
  };

  const frame = (channel, data) => {
    const bytes = typeof data === 'string' ? enc.encode(data) : data;
    const msg = new Uint8Array(bytes.length + 1);
    msg[0] = channel;
    msg.set(bytes, 1);
    return msg;
  };

  const sendFrame = (msg) => {
    if (closed) return;
    if (!opened) {
      if (queued + msg.length > MAX_QUEUED) return;
      queue.push(msg);
      queued += msg.length;
      return;
    }
    try {
      ws.send(msg);
    } catch {
      // The socket is closing; onclose reports it.
    }
  };

  try {
    ws = new WebSocket(`${scheme}//${location.host}${path}`, PROTOCOLS);
  } catch (e) {
    queueMicrotask(() => finish({ code: 0, reason: '', error: String(e && e.message ? e.message : e) }));
    return { send() {}, resize() {}, closeStdin() {}, close() {}, protocol: '' };
  }
  ws.binaryType = 'arraybuffer';

  ws.onopen = () => {
    opened = true;
    h.onOpen && h.onOpen(ws.protocol);
    // kubectl sends the terminal's size first, then input.
    if (size) ws.send(frame(CH_RESIZE, JSON.stringify({ Width: size[0], Height: size[1] })));
    for (const m of queue) {
      try {
        ws.send(m);
      } catch {
        break;
      }
    }
    queue = [];
    queued = 0;
    keepalive = setInterval(() => {
      if (!closed && ws.readyState === WebSocket.OPEN && ws.bufferedAmount === 0) {
        try {
          ws.send(new Uint8Array([CH_STDIN]));
        } catch {
          // Closing.
        }
      }
    }, KEEPALIVE_MS);
  };

  ws.onmessage = (ev) => {
    let data;
    if (typeof ev.data === 'string') {
      // Text messages are read as binary ones.
      data = enc.encode(ev.data);
    } else {
      data = new Uint8Array(ev.data);
    }
    if (data.length === 0) return;
    const ch = data[0];
    const body = data.subarray(1);
    if (ch === CH_STDOUT) h.onStdout && h.onStdout(body);
    else if (ch === CH_STDERR) (h.onStderr || h.onStdout) && (h.onStderr || h.onStdout)(body);
    else if (ch === CH_ERROR) {
      if (statusLen + body.length <= MAX_STATUS) {
        statusBytes.push(body.slice());
        statusLen += body.length;
      }
      // A whole Status usually comes in one message: read it at once.
      parseStatus(false);
    }
    // CLOSE (255) from the server: the channel it names ends; the socket's
    // close follows. Other channels are not sent to clients.
  };

  ws.onerror = () => {
    // The close event follows with the details the browser gives.
  };

  ws.onclose = (ev) => {
    finish({ code: ev.code, reason: ev.reason, error: null });
  };

  return {
    get protocol() {
      return ws.protocol;
    },
    send(data) {
      if (stdinClosed) return;
      const bytes = typeof data === 'string' ? enc.encode(data) : data;
      if (bytes.length === 0) return;
      sendFrame(frame(CH_STDIN, bytes));
    },
    resize(cols, rows) {
      if (!(cols > 0 && rows > 0)) return;
      if (size && size[0] === cols && size[1] === rows) return;
      size = [cols, rows];
      if (opened) sendFrame(frame(CH_RESIZE, JSON.stringify({ Width: cols, Height: rows })));
    },
    closeStdin() {
      if (stdinClosed) return;
      stdinClosed = true;
      // Only v5 can say so without ending the whole session.
      if (opened && ws.protocol === PROTOCOLS[0]) sendFrame(new Uint8Array([CH_CLOSE, CH_STDIN]));
    },
    close() {
      if (closed) return;
      try {
        ws.close(1000);
      } catch {
        // Already closing.
      }
      finish({ code: 1000, reason: 'closed by the page', error: null });
    },
  };
}

/**
 * Why an upgrade failed: the browser hides the HTTP answer of a refused
 * WebSocket, so the same URL is asked once with a plain GET (the API server
 * answers a refusal, 401/403/404, with a Status before it looks for the
 * upgrade). Resolves to a message.
 */
export async function explainFailure(opts) {
  try {
    const res = await fetch(execPath(opts), { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    const text = await res.text();
    try {
      const s = JSON.parse(text);
      if (s && s.message) return `${res.status}: ${s.message}`;
    } catch {
      // Not a Status.
    }
    return `${res.status} ${res.statusText}`;
  } catch (e) {
    return String(e && e.message ? e.message : e);
  }
}
