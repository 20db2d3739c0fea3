//! WebSocket requests for `pods/exec`, `pods/attach` and `pods/portforward`
//! that the API server answers itself and translates to SPDY/3.1 towards the
//! kubelet, as Kubernetes' API server does (its stream translator and
//! tunnelling handler), because the node side (containerd 1.6's streaming
//! server) speaks SPDY and only older WebSocket protocols:
//!
//! - **exec/attach, `v5.channel.k8s.io`**: every WebSocket binary message is
//!   one channel byte and data: 0 stdin, 1 stdout, 2 stderr, 3 error (a
//!   `metav1.Status`, from which kubectl takes the exit code), 4 resize
//!   (JSON sizes); v5 adds 255, CLOSE, whose next byte names the channel
//!   the client has finished writing (stdin: its end of file). Text
//!   messages are read as binary ones (the Python client writes a `str` to
//!   stdin as text). Towards the
//!   kubelet this is `v4.channel.k8s.io` over SPDY: one stream per channel,
//!   named by its `streamtype` header, created as the query asks (error
//!   always; stdin, stdout; stderr unless a TTY; resize with a TTY). Data
//!   goes across as it comes, in order; CLOSE of stdin becomes the end of
//!   the stdin stream. When the kubelet has ended the error and output
//!   streams, or closes the connection, the WebSocket is closed with
//!   1000 (normal closure), which kubectl reads as the end of every stream.
//! - **port-forward, `SPDY/3.1+portforward.k8s.io`**: the client speaks
//!   SPDY inside WebSocket binary messages; the kubelet gets a SPDY/3.1
//!   upgrade for `portforward.k8s.io` and the bytes are copied across,
//!   message payloads one way and binary messages the other.
//!
//! The session ends when either side closes or fails; the tasks end with it
//! (one task per session, the directions as futures inside it). When the
//! kubelet side ends first, the server sends its close and then reads on
//! (at most [`CLOSE_WAIT`]) until the client's close, as RFC 6455 wants:
//! dropping the connection while the client still sends heartbeat pings
//! would reset it and lose output the client has not read yet. Buffers are
//! bounded: a WebSocket message or SPDY frame of at most
//! [`MAX_MESSAGE`]/[`spdy::MAX_FRAME_LEN`] (1 MiB) bytes, 8 frames queued
//! towards the kubelet, and nothing read from one side until the other has
//! taken the previous piece.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http::{header, HeaderMap};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::spdy::{self, Frame, RecvCredit, SendWindows};

/// The remote-command protocol the API server translates.
pub(crate) const CHANNEL_V5: &str = "v5.channel.k8s.io";
/// Port-forward tunnelled in a WebSocket.
pub(crate) const PORT_FORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";
/// The largest WebSocket message (or frame) accepted from a client.
pub(crate) const MAX_MESSAGE: usize = 1 << 20;
/// Frames queued towards the kubelet (the SYN_STREAMs fit at the start).
const QUEUED_FRAMES: usize = 8;

/// How long a client may take to answer the server's close. Until then its
/// connection stays open: closing it with the client still sending (a
/// heartbeat ping) would make the client's kernel drop output the client has
/// not read yet. kubectl answers once it has read everything.
pub(crate) const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

const CH_STDIN: u8 = 0;
const CH_STDOUT: u8 = 1;
const CH_STDERR: u8 = 2;
const CH_ERROR: u8 = 3;
const CH_RESIZE: u8 = 4;
const CH_CLOSE: u8 = 255;

/// A WebSocket request this server answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WsRequest {
    /// The subprotocol chosen from the client's offer.
    pub protocol: &'static str,
    /// `Sec-WebSocket-Accept` for the answer.
    pub accept: String,
}

/// The protocols offered in `Sec-WebSocket-Protocol`, in order.
fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether `headers` ask for a WebSocket this server translates for the
/// subresource `sub`: `Ok(None)` when not (other WebSocket protocols and
/// SPDY go to the kubelet as they are), an error message for a WebSocket
/// request that cannot be answered.
pub(crate) fn translated(
    headers: &HeaderMap,
    sub: &str,
) -> Result<Option<WsRequest>, UpgradeError> {
    if !is_websocket(headers) {
        return Ok(None);
    }
    let offered = offered(headers);
    let want = match sub {
        "exec" | "attach" => CHANNEL_V5,
        "portforward" => PORT_FORWARD_TUNNEL,
        _ => return Ok(None),
    };
    if !offered.iter().any(|p| p == want) {
        return Ok(None);
    }
    answer(headers, want).map(Some)
}

/// A WebSocket request that cannot be answered (a 400 with this message).
#[derive(Debug, thiserror::Error)]
pub(crate) enum UpgradeError {
    /// The upgrade has no `Sec-WebSocket-Key` to answer with.
    #[error("a WebSocket upgrade needs a Sec-WebSocket-Key header")]
    NoKey,
    /// None of the protocols the client offers for `pods/log` is spoken
    /// here (Kubernetes' refusal, the offers as Go prints them).
    #[error("requested protocol(s) are not supported: {0:?}; supports {LOG_PROTOCOLS:?}")]
    Protocols(Vec<String>),
}

/// Whether `headers` ask for an upgrade to a WebSocket.
fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The answer to a WebSocket upgrade in `protocol`: needs the client's key.
fn answer(headers: &HeaderMap, protocol: &'static str) -> Result<WsRequest, UpgradeError> {
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(UpgradeError::NoKey)?;
    Ok(WsRequest {
        protocol,
        accept: accept_key(key),
    })
}

/// A `pods/log` WebSocket: each piece of the log is one message, binary
/// for the protocols `""` (none offered) and `binary.k8s.io`, base64 text for
/// `base64.binary.k8s.io`, as Kubernetes' WebSocket reader sends it.
pub(crate) const LOG_PROTOCOLS: [&str; 3] = ["", "binary.k8s.io", "base64.binary.k8s.io"];

/// Whether `headers` ask for `pods/log` over a WebSocket: the protocol
/// picked (the client's first offer this server speaks; `""` when none is
/// offered) and the accept key, or the refusal Kubernetes gives.
pub(crate) fn log_socket(headers: &HeaderMap) -> Result<Option<WsRequest>, UpgradeError> {
    if !is_websocket(headers) {
        return Ok(None);
    }
    let mut offered = offered(headers);
    if offered.is_empty() {
        offered.push(String::new());
    }
    let protocol = offered
        .iter()
        .find_map(|p| LOG_PROTOCOLS.iter().find(|a| *a == p))
        .ok_or_else(|| UpgradeError::Protocols(offered.clone()))?;
    answer(headers, protocol).map(Some)
}

/// Sends `body` (a log) to the client as messages in `protocol`'s form,
/// then closes normally and waits (at most [`CLOSE_WAIT`]) for the client's
/// close. What the client sends meanwhile is read and dropped.
pub(crate) async fn send_log<S, B>(ws: WebSocketStream<S>, body: B, protocol: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    use http_body_util::BodyExt;
    let base64 = protocol == "base64.binary.k8s.io";
    let (mut ws_tx, mut ws_rx) = ws.split();
    let mut body = body;
    let down = async {
        while let Some(frame) = body.frame().await {
            let data = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Err(e) => {
                    tracing::debug!(error = %e, "log over WebSocket: the kubelet's stream failed");
                    break;
                }
            };
            if data.is_empty() {
                continue;
            }
            let msg = if base64 {
                Message::Text(
                    base64::engine::general_purpose::STANDARD
                        .encode(&data)
                        .into(),
                )
            } else {
                Message::Binary(data)
            };
            if ws_tx.send(msg).await.is_err() {
                return;
            }
        }
        let _ = ws_tx.send(normal_close()).await;
    };
    let up = async {
        while let Some(msg) = ws_rx.next().await {
            if matches!(msg, Ok(Message::Close(_)) | Err(_)) {
                return;
            }
        }
    };
    tokio::pin!(up, down);
    tokio::select! {
        _ = &mut up => {}
        _ = &mut down => {
            let _ = tokio::time::timeout(CLOSE_WAIT, &mut up).await;
        }
    }
}

/// RFC 6455's `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub(crate) fn accept_key(key: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.as_bytes());
    ctx.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref())
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .max_write_buffer_size(2 * MAX_MESSAGE)
}

/// The client's upgraded connection as a WebSocket (server role).
pub(crate) async fn server_socket(io: Upgraded) -> WebSocketStream<TokioIo<Upgraded>> {
    WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, Some(ws_config())).await
}

fn normal_close() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}

/// Port-forward: WebSocket binary payloads to the kubelet's SPDY connection
/// and its bytes back as binary messages, until either side ends.
pub(crate) async fn tunnel<S, N>(ws: WebSocketStream<S>, node: N)
where
    S: AsyncRead + AsyncWrite + Unpin,
    N: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut node_rx, mut node_tx) = tokio::io::split(node);
    let up = async {
        let mut node_open = true;
        while let Some(msg) = ws_rx.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    // Once the kubelet is gone, read on (discarding) until
                    // the client's close.
                    if node_open && node_tx.write_all(&b).await.is_err() {
                        node_open = false;
                    }
                }
                Ok(Message::Close(_)) => return,
                Ok(Message::Text(_)) => {
                    tracing::debug!("port-forward tunnel: text message, closing");
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward tunnel: client side ended");
                    return;
                }
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match node_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let data = Bytes::copy_from_slice(&buf[..n]);
                    if ws_tx.send(Message::Binary(data)).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = ws_tx.send(normal_close()).await;
    };
    tokio::pin!(up, down);
    tokio::select! {
        _ = &mut up => {}
        _ = &mut down => {
            let _ = tokio::time::timeout(CLOSE_WAIT, &mut up).await;
        }
    }
}

/// Which streams an exec or attach asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// The SPDY streams of one exec, by channel.
#[derive(Debug, Default)]
struct Ids {
    by_channel: BTreeMap<u8, u32>,
}

impl Ids {
    /// SYN_STREAM frames in Kubernetes' order (error first), and the ids.
    fn open(s: Streams) -> (Ids, Vec<Frame>) {
        let mut wanted = vec![(CH_ERROR, "error")];
        if s.stdin {
            wanted.push((CH_STDIN, "stdin"));
        }
        if s.stdout {
            wanted.push((CH_STDOUT, "stdout"));
        }
        // With a TTY, stderr is merged into stdout on the node's side.
        if s.stderr && !s.tty {
            wanted.push((CH_STDERR, "stderr"));
        }
        if s.tty {
            wanted.push((CH_RESIZE, "resize"));
        }
        let mut ids = Ids::default();
        let mut frames = Vec::new();
        for (i, (ch, name)) in wanted.into_iter().enumerate() {
            // A client's streams have odd ids.
            let id = 1 + 2 * i as u32;
            ids.by_channel.insert(ch, id);
            frames.push(Frame::SynStream {
                stream: id,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: vec![("streamtype".into(), name.into())],
            });
        }
        (ids, frames)
    }

    fn id(&self, ch: u8) -> Option<u32> {
        self.by_channel.get(&ch).copied()
    }

    fn channel(&self, id: u32) -> Option<u8> {
        self.by_channel
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(k, _)| *k)
    }
}

/// What the kubelet-reading side leaves for the kubelet-writing side:
/// window updates to send and to apply, ping replies. Coalesced, so a
/// writer stuck on a slow kubelet never makes the reader wait.
#[derive(Default)]
struct Control {
    pending: Mutex<Pending>,
    notify: Notify,
}

#[derive(Default)]
struct Pending {
    credit: BTreeMap<u32, u32>,
    grants: BTreeMap<u32, u32>,
    initial_window: Option<u32>,
    pings: Vec<u32>,
}

impl Control {
    /// Leaves something for the writer and wakes it.
    fn with(&self, f: impl FnOnce(&mut Pending)) {
        f(&mut self.pending.lock());
        self.notify.notify_one();
    }

    /// The writer's side: window changes applied, replies encoded into `buf`.
    fn apply(
        &self,
        windows: &mut SendWindows,
        enc: &mut spdy::Encoder,
        buf: &mut BytesMut,
    ) -> Result<(), spdy::SpdyError> {
        let p = std::mem::take(&mut *self.pending.lock());
        if let Some(v) = p.initial_window {
            windows.set_initial(v);
        }
        for (stream, delta) in p.grants {
            windows.update(stream, delta);
        }
        for (stream, delta) in p.credit {
            enc.encode(&Frame::WindowUpdate { stream, delta }, buf)?;
        }
        for id in p.pings {
            enc.encode(&Frame::Ping { id }, buf)?;
        }
        Ok(())
    }
}

/// The kubelet-writing side: frames from `rx`, data cut to what the peer's
/// windows allow (see `spdy::SendWindows`), control frames as they come.
async fn spdy_writer<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::Receiver<Frame>,
    ctl: Arc<Control>,
) -> Result<(), spdy::SpdyError> {
    let mut enc = spdy::Encoder::new()?;
    let mut windows = SendWindows::default();
    let mut buf = BytesMut::new();
    loop {
        ctl.apply(&mut windows, &mut enc, &mut buf)?;
        if !buf.is_empty() {
            w.write_all(&buf).await?;
            w.flush().await?;
            buf.clear();
        }
        let frame = tokio::select! {
            biased;
            _ = ctl.notify.notified() => continue,
            f = rx.recv() => match f {
                Some(f) => f,
                None => return Ok(()),
            },
        };
        match frame {
            Frame::Data { stream, fin, data } => {
                let mut rest = data;
                loop {
                    let n = windows.allowance(stream, rest.len());
                    if n == 0 && !rest.is_empty() {
                        // The peer's window is shut: wait for its update.
                        ctl.notify.notified().await;
                        ctl.apply(&mut windows, &mut enc, &mut buf)?;
                        continue;
                    }
                    let chunk = rest.split_to(n);
                    windows.spent(stream, chunk.len());
                    let last = rest.is_empty();
                    enc.encode(
                        &Frame::Data {
                            stream,
                            fin: fin && last,
                            data: chunk,
                        },
                        &mut buf,
                    )?;
                    w.write_all(&buf).await?;
                    buf.clear();
                    if last {
                        break;
                    }
                }
            }
            other => {
                enc.encode(&other, &mut buf)?;
                w.write_all(&buf).await?;
                buf.clear();
            }
        }
        w.flush().await?;
    }
}

/// The client-reading side: channel messages to SPDY streams.
async fn client_to_node<S>(
    mut ws_rx: futures::stream::SplitStream<WebSocketStream<S>>,
    ids: &Ids,
    tx: mpsc::Sender<Frame>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stdin_closed = false;
    let mut node_open = true;
    while let Some(msg) = ws_rx.next().await {
        let data = match msg {
            Ok(Message::Binary(b)) => b,
            // A text message carries its channel and data as a binary one
            // does: Kubernetes reads both kinds alike, and the official
            // Python client sends text when given a `str` for stdin.
            Ok(Message::Text(t)) => Bytes::from(t),
            Ok(Message::Close(c)) => {
                tracing::debug!(close = ?c, "exec over WebSocket: the client closed");
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "exec over WebSocket: client side ended");
                return;
            }
        };
        let Some(&ch) = data.first() else { continue };
        let frame = match ch {
            CH_STDIN | CH_RESIZE => {
                let Some(id) = ids.id(ch) else { continue };
                if data.len() == 1 || (ch == CH_STDIN && stdin_closed) {
                    continue;
                }
                Frame::Data {
                    stream: id,
                    fin: false,
                    data: data.slice(1..),
                }
            }
            CH_CLOSE => {
                let (Some(&CH_STDIN), Some(id)) = (data.get(1), ids.id(CH_STDIN)) else {
                    continue;
                };
                if std::mem::replace(&mut stdin_closed, true) {
                    continue;
                }
                Frame::Data {
                    stream: id,
                    fin: true,
                    data: Bytes::new(),
                }
            }
            other => {
                tracing::debug!(channel = other, "exec over WebSocket: unknown channel");
                continue;
            }
        };
        // Once the kubelet is gone, read on (discarding) until the client's
        // close.
        if node_open && tx.send(frame).await.is_err() {
            node_open = false;
        }
    }
    tracing::debug!("exec over WebSocket: the client's connection ended");
}

/// What a frame from the kubelet other than data means to the reader.
enum Seen {
    /// The stream ended.
    Ended(u32),
    /// Nothing for the reader (the frame was noted for the writer, if at all).
    Nothing,
    /// The kubelet is going away: stop reading.
    GoAway,
}

/// Notes a frame from the kubelet other than data for the writer side
/// (pings to answer, window grants, the initial window) and says whether a
/// stream ended.
fn on_node_frame(frame: Frame, ctl: &Control) -> Seen {
    match frame {
        Frame::SynReply { stream, fin, .. } | Frame::Headers { stream, fin, .. } => {
            if fin {
                tracing::debug!(
                    stream,
                    "exec over WebSocket: a stream ended with its headers"
                );
            }
            if fin {
                Seen::Ended(stream)
            } else {
                Seen::Nothing
            }
        }
        Frame::RstStream { stream, status } => {
            tracing::debug!(
                stream,
                status,
                "exec over WebSocket: the kubelet reset a stream"
            );
            Seen::Ended(stream)
        }
        Frame::Ping { id } => {
            // The server's pings have even ids; odd ones would be
            // replies to ours (we send none).
            if id % 2 == 0 {
                ctl.with(|p| {
                    if p.pings.len() < 16 {
                        p.pings.push(id)
                    }
                });
            }
            Seen::Nothing
        }
        Frame::WindowUpdate { stream, delta } => {
            ctl.with(|p| {
                let g = p.grants.entry(stream).or_default();
                *g = g.saturating_add(delta);
            });
            Seen::Nothing
        }
        Frame::Settings { entries } => {
            for (_, id, value) in entries {
                if id == spdy::SETTINGS_INITIAL_WINDOW_SIZE {
                    ctl.with(|p| p.initial_window = Some(value));
                }
            }
            Seen::Nothing
        }
        Frame::GoAway { .. } => {
            tracing::debug!("exec over WebSocket: GOAWAY from the kubelet");
            Seen::GoAway
        }
        Frame::Data { .. } | Frame::SynStream { .. } | Frame::Unknown { .. } => Seen::Nothing,
    }
}

/// The kubelet-reading side: stream data to channel messages, until the
/// error and output streams have ended or the kubelet closes.
async fn node_to_client<R, S>(
    mut r: R,
    ids: &Ids,
    mut ws_tx: futures::stream::SplitSink<WebSocketStream<S>, Message>,
    ctl: Arc<Control>,
) where
    R: AsyncRead + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut dec = spdy::Decoder::new();
    let mut credit = RecvCredit::default();
    let mut finishing = false;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    // The streams whose end the client waits for.
    let mut open: Vec<u32> = [CH_ERROR, CH_STDOUT, CH_STDERR]
        .iter()
        .filter_map(|ch| ids.id(*ch))
        .collect();
    'read: loop {
        loop {
            let frame = match dec.decode(&mut buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "exec over WebSocket: bad frame from the kubelet");
                    break 'read;
                }
            };
            let ended = match frame {
                Frame::Data { stream, fin, data } => {
                    if !data.is_empty() {
                        if let Some(ch @ (CH_STDOUT | CH_STDERR | CH_ERROR)) = ids.channel(stream) {
                            let mut msg = BytesMut::with_capacity(1 + data.len());
                            msg.put_u8(ch);
                            msg.extend_from_slice(&data);
                            if let Err(e) = ws_tx.send(Message::Binary(msg.freeze())).await {
                                tracing::debug!(error = %e, "exec over WebSocket: writing to the client failed");
                                return;
                            }
                        }
                        // The Status on the error stream means the command
                        // is over and the kubelet is closing: no more window
                        // updates then, whose late arrival could make it
                        // reset a connection we have not finished reading.
                        finishing |= ids.channel(stream) == Some(CH_ERROR);
                        let due = credit.consumed(stream, data.len());
                        if !due.is_empty() && !finishing {
                            ctl.with(|p| {
                                for f in due {
                                    if let Frame::WindowUpdate { stream, delta } = f {
                                        let c = p.credit.entry(stream).or_default();
                                        *c = c.saturating_add(delta).min(0x7fff_ffff);
                                    }
                                }
                            });
                        }
                    }
                    if fin {
                        tracing::debug!(stream, "exec over WebSocket: a stream's data ended");
                    }
                    fin.then_some(stream)
                }
                other => match on_node_frame(other, &ctl) {
                    Seen::Ended(stream) => Some(stream),
                    Seen::Nothing => None,
                    Seen::GoAway => break 'read,
                },
            };
            if let Some(stream) = ended {
                credit.forget(stream);
                open.retain(|s| *s != stream);
                if open.is_empty() {
                    tracing::debug!("exec over WebSocket: the kubelet ended every stream");
                    break 'read;
                }
            }
        }
        match r.read_buf(&mut buf).await {
            Ok(0) => {
                tracing::debug!("exec over WebSocket: the kubelet closed");
                break;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "exec over WebSocket: kubelet side ended");
                break;
            }
        }
    }
    let _ = ws_tx.send(normal_close()).await;
}

/// exec/attach: `v5.channel.k8s.io` from the client, `v4.channel.k8s.io`
/// over SPDY to the kubelet, until either side ends.
pub(crate) async fn exec<S, N>(ws: WebSocketStream<S>, node: N, streams: Streams)
where
    S: AsyncRead + AsyncWrite + Unpin,
    N: AsyncRead + AsyncWrite + Unpin,
{
    let (ws_tx, ws_rx) = ws.split();
    let (node_rx, node_tx) = tokio::io::split(node);
    let (ids, syns) = Ids::open(streams);
    let (tx, rx) = mpsc::channel::<Frame>(QUEUED_FRAMES);
    let ctl = Arc::new(Control::default());
    for f in syns {
        // The channel has room for them all; they go first.
        if tx.try_send(f).is_err() {
            return;
        }
    }
    let writer = spdy_writer(node_tx, rx, ctl.clone());
    let up = client_to_node(ws_rx, &ids, tx);
    let down = node_to_client(node_rx, &ids, ws_tx, ctl);
    tokio::pin!(writer, up, down);
    // The writer failing (the kubelet gone) ends nothing by itself: what the
    // kubelet sent before is still to be read and passed on by `down`.
    let mut writer_done = false;
    loop {
        tokio::select! {
            r = &mut writer, if !writer_done => {
                writer_done = true;
                if let Err(e) = r {
                    tracing::debug!(error = %e, "exec over WebSocket: writing to the kubelet failed");
                }
            }
            // The client went away: drop the kubelet's connection (it stops
            // the command's streams).
            _ = &mut up => return,
            // The kubelet is done and the close is sent: wait for the client's.
            _ = &mut down => break,
        }
    }
    let answered = async {
        loop {
            tokio::select! {
                _ = &mut up => return,
                _ = &mut writer, if !writer_done => writer_done = true,
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, answered).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use tokio::io::duplex;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[test]
    fn the_accept_key_is_rfc6455s() {
        // RFC 6455, section 1.3.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn only_the_new_protocols_are_translated() {
        let h = |proto: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            h.insert(
                header::SEC_WEBSOCKET_KEY,
                HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
            );
            h.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_str(proto).unwrap(),
            );
            h
        };
        let v5 = h("v5.channel.k8s.io, v4.channel.k8s.io");
        assert_eq!(
            translated(&v5, "exec").unwrap().unwrap().protocol,
            CHANNEL_V5
        );
        assert_eq!(
            translated(&v5, "attach").unwrap().unwrap().protocol,
            CHANNEL_V5
        );
        assert_eq!(translated(&v5, "portforward").unwrap(), None);
        assert_eq!(translated(&h("v4.channel.k8s.io"), "exec").unwrap(), None);
        let pf = h("SPDY/3.1+portforward.k8s.io");
        assert_eq!(
            translated(&pf, "portforward").unwrap().unwrap().protocol,
            PORT_FORWARD_TUNNEL
        );
        let mut spdy = HeaderMap::new();
        spdy.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert_eq!(translated(&spdy, "exec").unwrap(), None);
        let mut no_key = v5.clone();
        no_key.remove(header::SEC_WEBSOCKET_KEY);
        assert!(translated(&no_key, "exec").is_err());
    }

    #[test]
    fn streams_are_opened_as_kubernetes_clients_do() {
        let names = |s: Streams| -> Vec<(u32, String)> {
            Ids::open(s)
                .1
                .into_iter()
                .map(|f| match f {
                    Frame::SynStream {
                        stream, headers, ..
                    } => (stream, headers[0].1.clone()),
                    _ => unreachable!(),
                })
                .collect()
        };
        let all = Streams {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        assert_eq!(
            names(all),
            vec![
                (1, "error".into()),
                (3, "stdin".into()),
                (5, "stdout".into()),
                (7, "stderr".into())
            ]
        );
        let tty = Streams { tty: true, ..all };
        assert_eq!(
            names(tty),
            vec![
                (1, "error".into()),
                (3, "stdin".into()),
                (5, "stdout".into()),
                (7, "resize".into())
            ]
        );
    }

    /// An exec session in a task of its own, between in-memory pipes of
    /// `buffer` bytes: returns the client's end (a WebSocket's raw socket),
    /// the kubelet's end (SPDY) and the session's task.
    fn spawn_exec(
        buffer: usize,
        streams: Streams,
    ) -> (
        tokio::io::DuplexStream,
        tokio::io::DuplexStream,
        tokio::task::JoinHandle<()>,
    ) {
        let (client_io, server_io) = duplex(buffer);
        let (node_io, kubelet_io) = duplex(buffer);
        let session = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            exec(ws, node_io, streams).await;
        });
        (client_io, kubelet_io, session)
    }

    /// A fake kubelet on the far end of a SPDY connection: it reads the
    /// streams, echoes stdin to stdout until stdin ends, writes a large
    /// output and a Status on the error stream, then closes.
    #[tokio::test]
    #[expect(
        clippy::too_many_lines,
        reason = "one scenario: a whole exec session, frame by frame"
    )]
    async fn exec_is_translated_both_ways() {
        let (client_io, kubelet_io, session) = spawn_exec(
            64 * 1024,
            Streams {
                stdin: true,
                stdout: true,
                stderr: true,
                tty: false,
            },
        );
        let kubelet = tokio::spawn(async move {
            let (mut r, mut w) = tokio::io::split(kubelet_io);
            let mut dec = spdy::Decoder::new();
            let mut enc = spdy::Encoder::new().unwrap();
            let mut buf = BytesMut::new();
            let mut types = BTreeMap::new();
            let mut stdin = Vec::new();
            let mut credited = 0u64;
            let big = 300_000usize;
            let mut out = BytesMut::new();
            loop {
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    match f {
                        Frame::SynStream {
                            stream, headers, ..
                        } => {
                            types.insert(headers[0].1.clone(), stream);
                            enc.encode(
                                &Frame::SynReply {
                                    stream,
                                    fin: false,
                                    headers: vec![],
                                },
                                &mut out,
                            )
                            .unwrap();
                        }
                        Frame::Data { stream, fin, data } => {
                            assert_eq!(Some(&stream), types.get("stdin"));
                            stdin.extend_from_slice(&data);
                            if fin {
                                let stdout = types["stdout"];
                                enc.encode(
                                    &Frame::Data {
                                        stream: stdout,
                                        fin: false,
                                        data: Bytes::from(stdin.clone()),
                                    },
                                    &mut out,
                                )
                                .unwrap();
                                // More than any window: the client must
                                // credit it back as it goes.
                                for _ in 0..big / 10_000 {
                                    enc.encode(
                                        &Frame::Data {
                                            stream: types["stderr"],
                                            fin: false,
                                            data: Bytes::from(vec![b'x'; 10_000]),
                                        },
                                        &mut out,
                                    )
                                    .unwrap();
                                }
                                enc.encode(
                                    &Frame::Data {
                                        stream: types["error"],
                                        fin: false,
                                        data: Bytes::from_static(b"{\"status\":\"Failure\",\"reason\":\"NonZeroExitCode\"}"),
                                    },
                                    &mut out,
                                )
                                .unwrap();
                                for s in ["error", "stdout", "stderr", "stdin"] {
                                    enc.encode(
                                        &Frame::RstStream {
                                            stream: types[s],
                                            status: spdy::RST_CANCEL,
                                        },
                                        &mut out,
                                    )
                                    .unwrap();
                                }
                            }
                        }
                        Frame::WindowUpdate { stream: 0, delta } => credited += u64::from(delta),
                        _ => {}
                    }
                }
                if !out.is_empty() {
                    w.write_all(&out).await.unwrap();
                    out.clear();
                }
                match r.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            (types, stdin, credited)
        });
        let mut ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        ws.send(Message::Binary(Bytes::from_static(b"\x00hel")))
            .await
            .unwrap();
        // Text carries channel and data as binary does.
        ws.send(Message::Text("\u{0}lo\n".into())).await.unwrap();
        // A channel nobody asked for and an empty message are ignored.
        ws.send(Message::Binary(Bytes::from_static(b"\x04{}")))
            .await
            .unwrap();
        ws.send(Message::Binary(Bytes::new())).await.unwrap();
        // v5's CLOSE of stdin.
        ws.send(Message::Binary(Bytes::from_static(b"\xff\x00")))
            .await
            .unwrap();
        let mut got: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
        let mut close = None;
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Binary(b)) => got.entry(b[0]).or_default().extend_from_slice(&b[1..]),
                Ok(Message::Close(c)) => close = c,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        assert_eq!(close.map(|c| c.code), Some(CloseCode::Normal));
        assert_eq!(got[&CH_STDOUT], b"hello\n");
        assert_eq!(got[&CH_STDERR].len(), 300_000);
        assert!(got[&CH_ERROR].starts_with(b"{\"status\":\"Failure\""));
        session.await.unwrap();
        let (types, stdin, credited) = kubelet.await.unwrap();
        assert_eq!(types.len(), 4);
        assert_eq!(stdin, b"hello\n");
        assert!(
            credited > 300_000 - u64::from(spdy::DEFAULT_WINDOW),
            "{credited}"
        );
    }

    /// A kubelet that does keep windows (spdystream does not) gets no more
    /// stdin than its window allows, and the rest once it opens it.
    #[tokio::test]
    async fn stdin_waits_for_a_peer_that_keeps_windows() {
        let (client_io, kubelet_io, session) = spawn_exec(
            64 * 1024,
            Streams {
                stdin: true,
                stdout: true,
                ..Streams::default()
            },
        );
        let (mut r, mut w) = tokio::io::split(kubelet_io);
        let mut enc = spdy::Encoder::new().unwrap();
        let mut out = BytesMut::new();
        // Streams: error 1, stdin 3, stdout 5. A 100-byte window, then a
        // byte of stdout so the client knows the setting has been read.
        for f in [
            Frame::Settings {
                entries: vec![(0, spdy::SETTINGS_INITIAL_WINDOW_SIZE, 100)],
            },
            Frame::Data {
                stream: 5,
                fin: false,
                data: Bytes::from_static(b"!"),
            },
        ] {
            enc.encode(&f, &mut out).unwrap();
        }
        w.write_all(&out).await.unwrap();
        out.clear();
        let mut ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let first = ws.next().await.unwrap().unwrap();
        assert_eq!(first, Message::Binary(Bytes::from_static(b"\x01!")));
        let mut msg = vec![CH_STDIN];
        msg.extend_from_slice(&[b'z'; 1000]);
        ws.send(Message::Binary(msg.into())).await.unwrap();
        let mut dec = spdy::Decoder::new();
        let mut buf = BytesMut::new();
        let mut stdin = 0usize;
        let read_stdin = |dec: &mut spdy::Decoder, buf: &mut BytesMut, stdin: &mut usize| {
            while let Some(f) = dec.decode(buf).unwrap() {
                if let Frame::Data {
                    stream: 3, data, ..
                } = f
                {
                    *stdin += data.len();
                }
            }
        };
        // Whatever arrives within half a second: the window's worth.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), async {
            loop {
                if r.read_buf(&mut buf).await.unwrap() == 0 {
                    break;
                }
                read_stdin(&mut dec, &mut buf, &mut stdin);
            }
        })
        .await;
        assert_eq!(stdin, 100);
        enc.encode(
            &Frame::WindowUpdate {
                stream: 3,
                delta: 900,
            },
            &mut out,
        )
        .unwrap();
        w.write_all(&out).await.unwrap();
        while stdin < 1000 {
            assert!(r.read_buf(&mut buf).await.unwrap() > 0);
            read_stdin(&mut dec, &mut buf, &mut stdin);
        }
        assert_eq!(stdin, 1000);
        drop(ws);
        session.await.unwrap();
    }

    /// When the client goes away, the session ends and the kubelet's
    /// connection is closed.
    #[tokio::test]
    async fn a_client_leaving_ends_the_session() {
        let (client_io, mut kubelet_io, session) = spawn_exec(
            1024,
            Streams {
                stdout: true,
                ..Streams::default()
            },
        );
        drop(client_io);
        tokio::time::timeout(std::time::Duration::from_secs(5), session)
            .await
            .expect("the session ended")
            .unwrap();
        let mut rest = Vec::new();
        // The SYN_STREAMs, then the end.
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            kubelet_io.read_to_end(&mut rest),
        )
        .await
        .expect("closed")
        .unwrap();
    }

    /// Garbage from the kubelet ends the session with a normal close; no panic.
    #[tokio::test]
    async fn a_malformed_frame_ends_the_session() {
        let (client_io, mut kubelet_io, session) = spawn_exec(
            1024,
            Streams {
                stdout: true,
                ..Streams::default()
            },
        );
        kubelet_io
            .write_all(&[0x80, 9, 0, 1, 0, 0, 0, 0])
            .await
            .unwrap();
        let mut ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let mut closed = false;
        while let Some(Ok(m)) = ws.next().await {
            closed |= matches!(m, Message::Close(_));
        }
        assert!(closed);
        session.await.unwrap();
    }

    #[tokio::test]
    async fn port_forward_bytes_are_tunnelled() {
        let (client_io, server_io) = duplex(1024);
        let (node_io, mut kubelet_io) = duplex(1024);
        let session = tokio::spawn(async move {
            let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
            tunnel(ws, node_io).await;
        });
        let mut ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        ws.send(Message::Binary(Bytes::from_static(b"ping")))
            .await
            .unwrap();
        let mut b = [0u8; 4];
        kubelet_io.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"ping");
        kubelet_io.write_all(b"pong").await.unwrap();
        drop(kubelet_io);
        let mut got = Vec::new();
        let mut closed = false;
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Binary(b) => got.extend_from_slice(&b),
                Message::Close(_) => closed = true,
                _ => {}
            }
        }
        assert_eq!(got, b"pong");
        assert!(closed);
        session.await.unwrap();
    }
}
