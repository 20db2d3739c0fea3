//! Kubernetes' APIResponseCompression: a response of more than 128 KiB to
//! a client whose `Accept-Encoding` names `gzip` is sent gzip-compressed
//! (level 1, the fastest: the point is fewer bytes on slow links, not the
//! fewest), with `Content-Encoding: gzip` and `Vary: Accept-Encoding`.
//!
//! As in Kubernetes, only whole answers are compressed: watches, logs,
//! exec/attach/port-forward, proxies and upgrades go out as they are. The
//! first 128 KiB are held back until the response proves larger (then the
//! whole of it is compressed, streamed) or ends (then it is sent as it was).
//! Only responses over the network are compressed: the in-process
//! transport ([`crate::Local`]) never is.

use std::io::Write;

use bytes::{Bytes, BytesMut};
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Frame;

use crate::server::{Body, RequestBody};

/// Responses longer than this are compressed (Kubernetes'
/// `defaultGzipThresholdBytes`).
pub(crate) const THRESHOLD: usize = 128 * 1024;

/// Kubernetes' `gzipContentEncodingLevel`.
const LEVEL: u32 = 1;

/// Whether `Accept-Encoding` names `gzip` (Kubernetes'
/// `ContentEncodingSupported`: a comma-separated token that is exactly
/// `gzip`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "gzip")
}

/// Whether the response to `req` may be compressed: the client takes gzip
/// and it is not a watch, a stream or an upgrade.
pub(crate) fn wanted(req: &Request<RequestBody>) -> bool {
    if !accepts_gzip(req.headers())
        || req.method() == Method::HEAD
        || req.headers().contains_key(header::UPGRADE)
    {
        return false;
    }
    let path = req.uri().path();
    if crate::dashboard::is_dashboard_path(path) {
        // Its files come with their own gzip copies.
        return false;
    }
    let query = crate::options::Query::parse(req.uri().query());
    let watch = matches!(query.get("watch"), Some("true" | "1" | ""));
    let info = crate::request_info::parse(req.method().as_str(), path, watch);
    let streamed = matches!(
        info.subresource.as_str(),
        "log" | "exec" | "attach" | "portforward" | "proxy"
    ) || info.parts.iter().any(|p| p == "proxy");
    info.verb != "watch" && !streamed
}

/// A gzip encoder whose output is taken as it comes.
struct Encoder(flate2::write::GzEncoder<Vec<u8>>);

impl Encoder {
    fn new() -> Encoder {
        Encoder(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::new(LEVEL),
        ))
    }

    /// Compresses `data`; the output made so far.
    fn feed(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        self.0.write_all(data)?;
        Ok(Bytes::from(std::mem::take(self.0.get_mut())))
    }

    /// The rest of the output.
    fn finish(self) -> std::io::Result<Bytes> {
        self.0.finish().map(Bytes::from)
    }
}

/// `resp`, compressed if it is longer than [`THRESHOLD`] and not already
/// encoded.
pub(crate) async fn compress(resp: Response<Body>) -> Response<Body> {
    let skip = resp.headers().contains_key(header::CONTENT_ENCODING)
        || matches!(
            resp.status(),
            StatusCode::SWITCHING_PROTOCOLS | StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
        )
        || resp
            .body()
            .size_hint()
            .upper()
            .is_some_and(|n| n <= THRESHOLD as u64);
    if skip {
        return resp;
    }
    let (mut parts, mut body) = resp.into_parts();
    // Held back until the response proves long.
    let mut head = BytesMut::new();
    let mut ended = true;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Some(data) = f.data_ref() {
                    head.extend_from_slice(data);
                }
            }
            Err(e) => {
                // Sent as far as it came, then the error, as it would have.
                let prefix = futures::stream::iter([Ok(Frame::data(head.freeze())), Err(e)]);
                return Response::from_parts(
                    parts,
                    BodyExt::boxed(http_body_util::StreamBody::new(prefix)),
                );
            }
        }
        if head.len() > THRESHOLD {
            ended = false;
            break;
        }
    }
    if ended {
        let full = http_body_util::Full::new(head.freeze())
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed();
        return Response::from_parts(parts, full);
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    Response::from_parts(parts, gzip_body(head.freeze(), body))
}

/// `head` then the rest of `body`, gzip-compressed as they come.
fn gzip_body(head: Bytes, body: Body) -> Body {
    /// What is left to send: the held-back start, the rest of the body
    /// (through the encoder), or nothing.
    enum State {
        Head(Bytes, Body, Encoder),
        Rest(Body, Encoder),
        Done,
    }
    let stream = futures::stream::unfold(
        State::Head(head, body, Encoder::new()),
        |state| async move {
            let (mut body, mut enc) = match state {
                State::Done => return None,
                State::Head(head, body, mut enc) => {
                    let out = enc.feed(&head).map(Frame::data);
                    return Some((out, State::Rest(body, enc)));
                }
                State::Rest(body, enc) => (body, enc),
            };
            loop {
                match body.frame().await {
                    Some(Ok(f)) => {
                        let Some(data) = f.data_ref() else { continue };
                        match enc.feed(data) {
                            Ok(out) if out.is_empty() => continue,
                            Ok(out) => return Some((Ok(Frame::data(out)), State::Rest(body, enc))),
                            Err(e) => return Some((Err(e), State::Done)),
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), State::Done)),
                    None => return Some((enc.finish().map(Frame::data), State::Done)),
                }
            }
        },
    );
    BodyExt::boxed(http_body_util::StreamBody::new(stream))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use std::io::Read;

    fn request(uri: &str, encoding: Option<&str>) -> Request<RequestBody> {
        let mut b = Request::builder().uri(uri);
        if let Some(e) = encoding {
            b = b.header(header::ACCEPT_ENCODING, e);
        }
        b.body(
            http_body_util::Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .unwrap()
    }

    #[test]
    fn which_requests() {
        assert!(wanted(&request("/api/v1/pods", Some("gzip"))));
        assert!(wanted(&request("/api/v1/pods", Some("deflate, gzip"))));
        assert!(!wanted(&request("/api/v1/pods", None)));
        assert!(!wanted(&request("/api/v1/pods", Some("identity"))));
        assert!(!wanted(&request("/api/v1/pods?watch=1", Some("gzip"))));
        assert!(!wanted(&request("/api/v1/watch/pods", Some("gzip"))));
        assert!(!wanted(&request(
            "/api/v1/namespaces/d/pods/p/log?follow=true",
            Some("gzip")
        )));
        assert!(!wanted(&request(
            "/api/v1/namespaces/d/pods/p/exec",
            Some("gzip")
        )));
        assert!(!wanted(&request("/dashboard/js/app.js", Some("gzip"))));
    }

    fn full(body: Vec<u8>) -> Response<Body> {
        crate::server::full(StatusCode::OK, "application/json", Bytes::from(body))
    }

    /// A body of `chunks` frames of `size` bytes each, with no size known
    /// beforehand (as a streamed list's).
    fn streamed(chunks: usize, size: usize) -> (Response<Body>, Vec<u8>) {
        let all: Vec<u8> = (0..chunks * size).map(|i| (i % 251) as u8).collect();
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = all
            .chunks(size)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let body = BodyExt::boxed(http_body_util::StreamBody::new(futures::stream::iter(
            frames,
        )));
        (Response::new(body), all)
    }

    async fn bytes_of(r: Response<Body>) -> Vec<u8> {
        r.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    fn inflate(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[tokio::test]
    async fn large_answers_are_compressed_small_ones_kept() {
        let big: Vec<u8> = (0..THRESHOLD + 1).map(|i| (i % 7) as u8 + b'a').collect();
        let r = compress(full(big.clone())).await;
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(r.headers()[header::VARY], "Accept-Encoding");
        let z = bytes_of(r).await;
        assert!(z.len() < big.len() / 10);
        assert_eq!(inflate(&z), big);

        let exact = vec![b'x'; THRESHOLD];
        let r = compress(full(exact.clone())).await;
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(r.headers().get(header::VARY).is_none());
        assert_eq!(bytes_of(r).await, exact);
    }

    #[tokio::test]
    async fn streamed_answers_are_judged_by_their_length() {
        let (r, all) = streamed(300, 1024);
        let r = compress(r).await;
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(inflate(&bytes_of(r).await), all);

        let (r, all) = streamed(100, 1024);
        let r = compress(r).await;
        assert!(r.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(bytes_of(r).await, all, "the same bytes");
    }

    #[tokio::test]
    async fn encoded_answers_are_left_alone() {
        let mut r = full(vec![b'a'; THRESHOLD * 2]);
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        let r = compress(r).await;
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "br");
        assert_eq!(bytes_of(r).await.len(), THRESHOLD * 2);
    }
}
