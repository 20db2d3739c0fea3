//! SPDY/3.1 framing, as much of it as the API server needs to be a client of
//! a kubelet's (containerd's) remote-command streaming server: the frames
//! (SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS,
//! WINDOW_UPDATE, DATA), the name/value header blocks compressed with zlib
//! and SPDY/3's preset dictionary (one compression context per direction for
//! the whole connection, each block ended with a sync flush), and the flow
//! control windows.
//!
//! Flow control: on the receiving side [`RecvCredit`] hands back WINDOW_UPDATE
//! frames (per stream and, SPDY/3.1, for the session) as data is consumed, so
//! a sender that honours windows never stalls. On the sending side
//! [`SendWindows`] keeps the windows, but only holds data back once the peer
//! has shown it does flow control (sent a WINDOW_UPDATE or an initial window
//! setting): Go's spdystream, which the kubelet side of Kubernetes and
//! containerd use, neither enforces nor replenishes windows, so a client that
//! waited on them would stop after 64 KiB of stdin.
//!
//! Decoding never panics: a frame longer than [`MAX_FRAME_LEN`], a header
//! block that does not parse or inflates past [`MAX_HEADER_BLOCK`], or a
//! version other than 3 is an error, which ends the connection.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

/// The protocol version in every control frame.
pub(crate) const VERSION: u16 = 3;
/// The initial window of a stream and of the session (SPDY/3.1).
pub(crate) const DEFAULT_WINDOW: u32 = 64 * 1024;
/// The largest frame payload accepted or sent (SPDY allows 16 MiB; kubelets
/// write at most a pipe buffer at a time).
pub(crate) const MAX_FRAME_LEN: usize = 1 << 20;
/// The largest header block once inflated.
pub(crate) const MAX_HEADER_BLOCK: usize = 64 * 1024;

pub(crate) const FLAG_FIN: u8 = 0x01;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// SETTINGS_INITIAL_WINDOW_SIZE.
pub(crate) const SETTINGS_INITIAL_WINDOW_SIZE: u32 = 7;
/// RST_STREAM status CANCEL (sent by the tests' peers).
#[cfg(test)]
pub(crate) const RST_CANCEL: u32 = 5;

/// Header names (lower case) and values; several values of one name are
/// joined with NUL, as on the wire.
pub(crate) type Headers = Vec<(String, String)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Bytes,
    },
    SynStream {
        stream: u32,
        associated: u32,
        priority: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    /// (flags, id, value) entries.
    Settings {
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream: u32,
        delta: u32,
    },
    /// A control frame of a type SPDY/3 does not define: ignored, as the
    /// protocol says.
    Unknown {
        kind: u16,
    },
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SpdyError {
    #[error("a SPDY frame of {0} bytes (at most {MAX_FRAME_LEN})")]
    TooLarge(usize),
    #[error("malformed SPDY {0} frame")]
    Malformed(&'static str),
    #[error("SPDY version {0} (only 3 is spoken)")]
    Version(u16),
    #[error("SPDY header block: {0}")]
    HeaderBlock(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Header names SPDY/3's dictionary starts with, each preceded by its
/// length as a 32-bit big-endian integer.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The rest of the dictionary, as is.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec",
    " 00:00:00",
    " Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,public",
    "private",
    "max-age=",
    "gzip,deflate,sdch",
    "charset=utf-8",
    "charset=iso-8859-1,utf-,*,enq=0.",
);

/// SPDY/3's zlib dictionary for header blocks.
pub(crate) static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut d = Vec::with_capacity(1424);
    for w in DICTIONARY_WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    d
});

/// Writes frames; owns the connection's header compression context.
pub(crate) struct Encoder {
    deflate: Compress,
}

impl Encoder {
    pub(crate) fn new() -> Result<Encoder, SpdyError> {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate
            .set_dictionary(&DICTIONARY)
            .map_err(|e| SpdyError::HeaderBlock(e.to_string()))?;
        Ok(Encoder { deflate })
    }

    fn header_block(&mut self, headers: &Headers) -> Result<Vec<u8>, SpdyError> {
        let mut raw = Vec::new();
        raw.put_u32(headers.len() as u32);
        for (k, v) in headers {
            raw.put_u32(k.len() as u32);
            raw.extend_from_slice(k.to_ascii_lowercase().as_bytes());
            raw.put_u32(v.len() as u32);
            raw.extend_from_slice(v.as_bytes());
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(&raw[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| SpdyError::HeaderBlock(e.to_string()))?;
            consumed += (self.deflate.total_in() - before) as usize;
            // Done once all input is in and the flush left room to spare.
            if consumed >= raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }

    fn control(dst: &mut BytesMut, kind: u16, flags: u8, body: &[u8]) -> Result<(), SpdyError> {
        if body.len() > MAX_FRAME_LEN {
            return Err(SpdyError::TooLarge(body.len()));
        }
        dst.reserve(8 + body.len());
        dst.put_u16(0x8000 | VERSION);
        dst.put_u16(kind);
        dst.put_u8(flags);
        dst.put_uint(body.len() as u64, 3);
        dst.extend_from_slice(body);
        Ok(())
    }

    /// Appends `frame`'s bytes to `dst`.
    pub(crate) fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), SpdyError> {
        let fin = |f: bool| if f { FLAG_FIN } else { 0 };
        match frame {
            Frame::Data {
                stream,
                fin: f,
                data,
            } => {
                if data.len() > MAX_FRAME_LEN {
                    return Err(SpdyError::TooLarge(data.len()));
                }
                dst.reserve(8 + data.len());
                dst.put_u32(stream & 0x7fff_ffff);
                dst.put_u8(fin(*f));
                dst.put_uint(data.len() as u64, 3);
                dst.extend_from_slice(data);
                Ok(())
            }
            Frame::SynStream {
                stream,
                associated,
                priority,
                flags,
                headers,
            } => {
                let block = self.header_block(headers)?;
                let mut body = Vec::with_capacity(10 + block.len());
                body.put_u32(stream & 0x7fff_ffff);
                body.put_u32(associated & 0x7fff_ffff);
                body.put_u8((priority & 0x7) << 5);
                body.put_u8(0); // slot
                body.extend_from_slice(&block);
                Self::control(dst, SYN_STREAM, *flags, &body)
            }
            Frame::SynReply {
                stream,
                fin: f,
                headers,
            }
            | Frame::Headers {
                stream,
                fin: f,
                headers,
            } => {
                let kind = if matches!(frame, Frame::SynReply { .. }) {
                    SYN_REPLY
                } else {
                    HEADERS
                };
                let block = self.header_block(headers)?;
                let mut body = Vec::with_capacity(4 + block.len());
                body.put_u32(stream & 0x7fff_ffff);
                body.extend_from_slice(&block);
                Self::control(dst, kind, fin(*f), &body)
            }
            Frame::RstStream { stream, status } => {
                let mut body = [0u8; 8];
                body[..4].copy_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                body[4..].copy_from_slice(&status.to_be_bytes());
                Self::control(dst, RST_STREAM, 0, &body)
            }
            Frame::Settings { entries } => {
                let mut body = Vec::with_capacity(4 + 8 * entries.len());
                body.put_u32(entries.len() as u32);
                for (flags, id, value) in entries {
                    body.put_u8(*flags);
                    body.put_uint(u64::from(*id & 0xff_ffff), 3);
                    body.put_u32(*value);
                }
                Self::control(dst, SETTINGS, 0, &body)
            }
            Frame::Ping { id } => Self::control(dst, PING, 0, &id.to_be_bytes()),
            Frame::GoAway { last_good, status } => {
                let mut body = [0u8; 8];
                body[..4].copy_from_slice(&(last_good & 0x7fff_ffff).to_be_bytes());
                body[4..].copy_from_slice(&status.to_be_bytes());
                Self::control(dst, GOAWAY, 0, &body)
            }
            Frame::WindowUpdate { stream, delta } => {
                let mut body = [0u8; 8];
                body[..4].copy_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
                body[4..].copy_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
                Self::control(dst, WINDOW_UPDATE, 0, &body)
            }
            Frame::Unknown { kind } => Self::control(dst, *kind, 0, &[]),
        }
    }
}

/// Reads frames; owns the connection's header decompression context.
pub(crate) struct Decoder {
    inflate: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder {
            inflate: Decompress::new(true),
        }
    }

    fn inflate(&mut self, block: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let bad = |e: &dyn std::fmt::Display| SpdyError::HeaderBlock(e.to_string());
        let mut out = Vec::with_capacity((block.len() * 4).clamp(256, MAX_HEADER_BLOCK));
        let mut consumed = 0usize;
        loop {
            if out.len() == out.capacity() {
                out.reserve(1024);
            }
            let (before_in, before_out) = (self.inflate.total_in(), out.len());
            let r =
                self.inflate
                    .decompress_vec(&block[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.inflate.total_in() - before_in) as usize;
            match r {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&DICTIONARY)
                        .map_err(|e| bad(&e))?;
                    continue;
                }
                Err(e) => return Err(bad(&e)),
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(bad(&format!("larger than {MAX_HEADER_BLOCK} bytes")));
            }
            if consumed >= block.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if consumed < block.len()
                && self.inflate.total_in() == before_in
                && out.len() == before_out
                && out.len() < out.capacity()
            {
                return Err(bad(&"no progress (data after the end of the stream?)"));
            }
        }
    }

    fn headers(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let raw = self.inflate(block)?;
        parse_header_block(&raw)
    }

    /// One frame from the front of `src`, if it holds a whole one.
    pub(crate) fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if src.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, src[5], src[6], src[7]]) as usize;
        if len > MAX_FRAME_LEN {
            return Err(SpdyError::TooLarge(len));
        }
        if src.len() < 8 + len {
            src.reserve(8 + len - src.len());
            return Ok(None);
        }
        let head = src.split_to(8);
        let mut body = src.split_to(len).freeze();
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
            return Ok(Some(Frame::Data {
                stream,
                fin: flags & FLAG_FIN != 0,
                data: body,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(SpdyError::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let fin = flags & FLAG_FIN != 0;
        let frame = match kind {
            SYN_STREAM => {
                need(&body, 10, "SYN_STREAM")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                let associated = body.get_u32() & 0x7fff_ffff;
                let priority = body.get_u8() >> 5;
                let _slot = body.get_u8();
                let headers = self.headers(&body)?;
                Frame::SynStream {
                    stream,
                    associated,
                    priority,
                    flags,
                    headers,
                }
            }
            SYN_REPLY | HEADERS => {
                need(&body, 4, "SYN_REPLY")?;
                let stream = body.get_u32() & 0x7fff_ffff;
                let headers = self.headers(&body)?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream,
                        fin,
                        headers,
                    }
                }
            }
            kind => other_control_frame(kind, body)?,
        };
        Ok(Some(frame))
    }
}

/// Refuses a frame body shorter than `n` bytes.
fn need(body: &Bytes, n: usize, name: &'static str) -> Result<(), SpdyError> {
    if body.len() < n {
        Err(SpdyError::Malformed(name))
    } else {
        Ok(())
    }
}

/// A control frame without a header block, from its `kind` and `body`.
fn other_control_frame(kind: u16, mut body: Bytes) -> Result<Frame, SpdyError> {
    Ok(match kind {
        RST_STREAM => {
            if body.len() != 8 {
                return Err(SpdyError::Malformed("RST_STREAM"));
            }
            Frame::RstStream {
                stream: body.get_u32() & 0x7fff_ffff,
                status: body.get_u32(),
            }
        }
        SETTINGS => {
            need(&body, 4, "SETTINGS")?;
            let n = body.get_u32() as usize;
            if body.len() != n.saturating_mul(8) {
                return Err(SpdyError::Malformed("SETTINGS"));
            }
            let entries = (0..n)
                .map(|_| {
                    let fid = body.get_u32();
                    ((fid >> 24) as u8, fid & 0xff_ffff, body.get_u32())
                })
                .collect();
            Frame::Settings { entries }
        }
        PING => {
            if body.len() != 4 {
                return Err(SpdyError::Malformed("PING"));
            }
            Frame::Ping { id: body.get_u32() }
        }
        GOAWAY => {
            // SPDY/2's GOAWAY had no status; accept both.
            need(&body, 4, "GOAWAY")?;
            let last_good = body.get_u32() & 0x7fff_ffff;
            let status = if body.len() >= 4 { body.get_u32() } else { 0 };
            Frame::GoAway { last_good, status }
        }
        WINDOW_UPDATE => {
            if body.len() != 8 {
                return Err(SpdyError::Malformed("WINDOW_UPDATE"));
            }
            Frame::WindowUpdate {
                stream: body.get_u32() & 0x7fff_ffff,
                delta: body.get_u32() & 0x7fff_ffff,
            }
        }
        kind => Frame::Unknown { kind },
    })
}

fn parse_header_block(mut raw: &[u8]) -> Result<Headers, SpdyError> {
    let bad = || SpdyError::HeaderBlock("truncated name/value block".into());
    let take = |raw: &mut &[u8]| -> Result<String, SpdyError> {
        if raw.len() < 4 {
            return Err(bad());
        }
        let n = raw.get_u32() as usize;
        if raw.len() < n {
            return Err(bad());
        }
        let s = String::from_utf8_lossy(&raw[..n]).into_owned();
        raw.advance(n);
        Ok(s)
    };
    if raw.len() < 4 {
        return Err(bad());
    }
    let count = raw.get_u32() as usize;
    // Each pair takes at least 8 bytes: a bad count cannot make us allocate.
    if count > raw.len() / 8 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let k = take(&mut raw)?;
        let v = take(&mut raw)?;
        out.push((k.to_ascii_lowercase(), v));
    }
    Ok(out)
}

/// The receive side of flow control: data consumed and not yet handed back.
/// WINDOW_UPDATEs go out once a quarter of a window has been consumed, so
/// the sender always has at least three quarters of its window open.
#[derive(Debug, Default)]
pub(crate) struct RecvCredit {
    pending: BTreeMap<u32, u32>,
}

impl RecvCredit {
    const THRESHOLD: u32 = DEFAULT_WINDOW / 4;

    /// `n` bytes of `stream` were consumed (passed on); the WINDOW_UPDATE
    /// frames now due, for the stream and for the session (stream 0).
    pub(crate) fn consumed(&mut self, stream: u32, n: usize) -> Vec<Frame> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let mut out = Vec::new();
        if n == 0 {
            return out;
        }
        for id in [stream, 0] {
            let p = self.pending.entry(id).or_default();
            *p = p.saturating_add(n);
            if *p >= Self::THRESHOLD {
                out.push(Frame::WindowUpdate {
                    stream: id,
                    delta: (*p).min(0x7fff_ffff),
                });
                *p = 0;
            }
        }
        out
    }

    /// A stream that ended needs no more credit.
    pub(crate) fn forget(&mut self, stream: u32) {
        self.pending.remove(&stream);
    }
}

/// The send side of flow control: the peer's windows for each stream and
/// for the session. See the module doc for when they hold data back.
#[derive(Debug)]
pub(crate) struct SendWindows {
    enforced: bool,
    initial: i64,
    session: i64,
    streams: BTreeMap<u32, i64>,
}

impl Default for SendWindows {
    fn default() -> Self {
        SendWindows {
            enforced: false,
            initial: i64::from(DEFAULT_WINDOW),
            session: i64::from(DEFAULT_WINDOW),
            streams: BTreeMap::new(),
        }
    }
}

impl SendWindows {
    /// Applies a WINDOW_UPDATE from the peer.
    pub(crate) fn update(&mut self, stream: u32, delta: u32) {
        self.enforced = true;
        let delta = i64::from(delta & 0x7fff_ffff);
        if stream == 0 {
            self.session = (self.session + delta).min(i64::from(i32::MAX));
        } else {
            let initial = self.initial;
            let w = self.streams.entry(stream).or_insert(initial);
            *w = (*w + delta).min(i64::from(i32::MAX));
        }
    }

    /// Applies SETTINGS_INITIAL_WINDOW_SIZE: every stream's window moves by
    /// the difference.
    pub(crate) fn set_initial(&mut self, value: u32) {
        self.enforced = true;
        let value = i64::from(value & 0x7fff_ffff);
        let diff = value - self.initial;
        self.initial = value;
        for w in self.streams.values_mut() {
            *w += diff;
        }
    }

    /// How many of `want` bytes may go on `stream` now.
    pub(crate) fn allowance(&self, stream: u32, want: usize) -> usize {
        let want = want.min(MAX_FRAME_LEN);
        if !self.enforced {
            return want;
        }
        let w = self.streams.get(&stream).copied().unwrap_or(self.initial);
        let open = w.min(self.session).max(0);
        want.min(usize::try_from(open).unwrap_or(0))
    }

    /// `n` bytes went on `stream`.
    pub(crate) fn spent(&mut self, stream: u32, n: usize) {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let initial = self.initial;
        let w = self.streams.entry(stream).or_insert(initial);
        *w -= n;
        self.session -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let mut enc = Encoder::new().unwrap();
        let mut dec = Decoder::new();
        let mut wire = BytesMut::new();
        for f in frames {
            enc.encode(f, &mut wire).unwrap();
        }
        let mut out = Vec::new();
        // Fed a byte at a time: partial frames wait for the rest.
        let mut buf = BytesMut::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        let d = &*DICTIONARY;
        assert_eq!(d.len(), 1423);
        assert_eq!(&d[..11], b"\0\0\0\x07options");
        assert!(d.ends_with(b"charset=iso-8859-1,utf-,*,enq=0."));
        // The Adler-32 a peer's zlib stream names its dictionary by.
        let (mut a, mut b) = (1u32, 0u32);
        for x in d {
            a = (a + u32::from(*x)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2, "{:#x}", (b << 16) | a);
    }

    #[test]
    fn every_frame_round_trips() {
        let frames = vec![
            Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: vec![("streamtype".into(), "error".into())],
            },
            Frame::SynStream {
                stream: 3,
                associated: 0,
                priority: 7,
                flags: FLAG_FIN,
                headers: vec![
                    ("streamtype".into(), "stdin".into()),
                    ("port".into(), "80".into()),
                ],
            },
            Frame::SynReply {
                stream: 1,
                fin: false,
                headers: vec![],
            },
            Frame::Headers {
                stream: 3,
                fin: true,
                headers: vec![("x".into(), "a\0b".into())],
            },
            Frame::Data {
                stream: 3,
                fin: false,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream: 3,
                fin: true,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream: 5,
                status: RST_CANCEL,
            },
            Frame::Settings {
                entries: vec![(0, SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)],
            },
            Frame::Ping { id: 2 },
            Frame::GoAway {
                last_good: 7,
                status: 0,
            },
            Frame::WindowUpdate {
                stream: 0,
                delta: 4096,
            },
            Frame::Unknown { kind: 0x55 },
        ];
        assert_eq!(round_trip(&frames), frames);
    }

    #[test]
    fn header_blocks_are_zlib_with_the_dictionary_across_frames() {
        let mut enc = Encoder::new().unwrap();
        let headers: Headers = vec![("streamtype".into(), "stdout".into())];
        let mut first = BytesMut::new();
        enc.encode(
            &Frame::SynStream {
                stream: 1,
                associated: 0,
                priority: 0,
                flags: 0,
                headers: headers.clone(),
            },
            &mut first,
        )
        .unwrap();
        // zlib header with FDICT set, then the dictionary's Adler-32.
        let block = &first[18..];
        assert_eq!(block[0] & 0x0f, 8, "deflate");
        assert_ne!(block[1] & 0x20, 0, "FDICT");
        assert_eq!(&block[2..6], &0xe3c6_a7c2u32.to_be_bytes());
        // A second block continues the same stream (no new zlib header) and
        // is shorter: the repeated header is a back-reference.
        let mut second = BytesMut::new();
        enc.encode(
            &Frame::SynStream {
                stream: 3,
                associated: 0,
                priority: 0,
                flags: 0,
                headers,
            },
            &mut second,
        )
        .unwrap();
        assert!(second.len() < first.len(), "{second:?} vs {first:?}");
        // flate2's own zlib reader with the dictionary reads the first block.
        let mut d = Decompress::new(true);
        let mut out = Vec::with_capacity(256);
        let e = d
            .decompress_vec(block, &mut out, FlushDecompress::Sync)
            .unwrap_err();
        assert!(e.needs_dictionary().is_some());
        d.set_dictionary(&DICTIONARY).unwrap();
        let at = d.total_in() as usize;
        d.decompress_vec(&block[at..], &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(
            parse_header_block(&out).unwrap(),
            vec![("streamtype".to_string(), "stdout".to_string())]
        );
        // And ours reads both, in order.
        let mut dec = Decoder::new();
        first.extend_from_slice(&second);
        assert!(matches!(
            dec.decode(&mut first).unwrap(),
            Some(Frame::SynStream { stream: 1, .. })
        ));
        assert!(matches!(
            dec.decode(&mut first).unwrap(),
            Some(Frame::SynStream { stream: 3, .. })
        ));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let cases: Vec<Vec<u8>> = vec![
            // A data frame claiming 16 MiB.
            vec![0, 0, 0, 1, 0, 0xff, 0xff, 0xff],
            // SPDY/2.
            vec![0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1],
            // PING of 3 bytes.
            vec![0x80, 3, 0, 6, 0, 0, 0, 3, 0, 0, 1],
            // SYN_STREAM too short.
            vec![0x80, 3, 0, 1, 0, 0, 0, 2, 0, 1],
            // SYN_REPLY whose header block is not zlib.
            vec![0x80, 3, 0, 2, 0, 0, 0, 8, 0, 0, 0, 1, 1, 2, 3, 4],
            // SETTINGS whose count does not match its length.
            vec![0x80, 3, 0, 4, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
            // WINDOW_UPDATE of 4 bytes.
            vec![0x80, 3, 0, 9, 0, 0, 0, 4, 0, 0, 0, 1],
        ];
        for c in cases {
            let mut buf = BytesMut::from(&c[..]);
            assert!(Decoder::new().decode(&mut buf).is_err(), "{c:?}");
        }
        assert!(parse_header_block(&[0, 0, 0, 9, 0, 0]).is_err());
        assert!(parse_header_block(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(parse_header_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
        // A header block that inflates past the limit.
        let mut enc = Encoder::new().unwrap();
        let mut wire = BytesMut::new();
        enc.encode(
            &Frame::SynReply {
                stream: 1,
                fin: false,
                headers: vec![("big".into(), "x".repeat(MAX_HEADER_BLOCK))],
            },
            &mut wire,
        )
        .unwrap();
        assert!(Decoder::new().decode(&mut wire).is_err());
    }

    #[test]
    fn credit_goes_back_as_data_is_consumed() {
        let mut c = RecvCredit::default();
        let mut updates = Vec::new();
        // A megabyte in 1000-byte frames on stream 2.
        for _ in 0..1000 {
            updates.extend(c.consumed(2, 1000));
        }
        let total = |id: u32| -> u32 {
            updates
                .iter()
                .filter_map(|f| match f {
                    Frame::WindowUpdate { stream, delta } if *stream == id => Some(*delta),
                    _ => None,
                })
                .sum()
        };
        // All but less than a quarter window is handed back, on the stream
        // and on the session: a sender keeping windows never runs dry.
        for id in [2, 0] {
            let back = total(id);
            assert!(back <= 1_000_000 && 1_000_000 - back < DEFAULT_WINDOW / 4);
        }
        assert!(c.consumed(2, 0).is_empty());
    }

    #[test]
    fn send_windows_hold_back_only_a_peer_that_does_flow_control() {
        let mut w = SendWindows::default();
        // spdystream never sends WINDOW_UPDATE: nothing is held back.
        w.spent(1, 1 << 20);
        assert_eq!(w.allowance(1, 5000), 5000);
        // A peer that does: its windows count.
        let mut w = SendWindows::default();
        w.update(1, 0);
        assert_eq!(w.allowance(1, 100_000), DEFAULT_WINDOW as usize);
        w.spent(1, 60_000);
        assert_eq!(w.allowance(1, 10_000), 5536);
        w.spent(1, 5536);
        assert_eq!(w.allowance(1, 10), 0);
        w.update(1, 1000);
        // The session window is spent too.
        assert_eq!(w.allowance(1, 10), 0);
        w.update(0, 500);
        assert_eq!(w.allowance(1, 10_000), 500);
        // A new initial window moves existing streams by the difference.
        w.set_initial(DEFAULT_WINDOW + 100);
        w.update(0, 100_000);
        assert_eq!(w.allowance(1, 10_000), 1100);
        assert_eq!(
            w.allowance(3, 1 << 21),
            MAX_FRAME_LEN.min(DEFAULT_WINDOW as usize + 100)
        );
    }
}
