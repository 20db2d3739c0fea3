//! Container logs as `/containerLogs/{ns}/{pod}/{container}` serves them: the
//! options (`follow`, `tailLines`, `sinceSeconds`, `sinceTime`, `timestamps`,
//! `limitBytes`, `previous`), the CRI log file format, and the stream.
//!
//! The runtime writes each container instance's output to its own file, one
//! record a line: `<RFC3339Nano time> <stdout|stderr> <F|P> <content>`, where
//! `P` marks a piece of a longer line continued by the next record of the
//! same stream and `F` ends a line. Records are joined back into lines (one
//! timestamp per line, the first piece's), filtered by time, cut to the last
//! `tailLines`, optionally prefixed by the time (Kubernetes' fixed nine-digit
//! RFC 3339 form) and cut at `limitBytes`. Following keeps reading the file
//! (polling every 100 ms) until the container has stopped and its last
//! records are out, or the client goes away.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// What a logs request asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<u64>,
    /// Only lines at or after this time.
    pub since: Option<Timestamp>,
}

/// Why a log request's options are refused (a 400 with this text, naming the
/// bad parameter).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LogOptionsError {
    /// A flag (`follow`, `previous`, `timestamps`) is not a boolean.
    #[error("{param}: invalid boolean value {value:?}")]
    InvalidBoolean {
        /// The parameter.
        param: &'static str,
        /// What it was given.
        value: String,
    },
    /// A number parameter is not a number.
    #[error("{param}: invalid value {value:?}")]
    InvalidNumber {
        /// The parameter.
        param: &'static str,
        /// What it was given.
        value: String,
    },
    /// `tailLines` is negative.
    #[error("tailLines: must be greater than or equal to 0")]
    NegativeTailLines,
    /// `limitBytes` or `sinceSeconds` is not positive.
    #[error("{0}: must be greater than 0")]
    NotPositive(&'static str),
    /// `sinceTime` is not an RFC 3339 time.
    #[error("sinceTime: invalid RFC 3339 time {0:?}")]
    InvalidTime(String),
    /// Both `sinceTime` and `sinceSeconds` are given.
    #[error("at most one of sinceTime or sinceSeconds may be specified")]
    BothSince,
}

fn flag(param: &'static str, v: &str) -> Result<bool, LogOptionsError> {
    match v {
        "" | "true" | "1" | "True" | "TRUE" | "t" | "T" => Ok(true),
        "false" | "0" | "False" | "FALSE" | "f" | "F" => Ok(false),
        _ => Err(LogOptionsError::InvalidBoolean {
            param,
            value: v.to_string(),
        }),
    }
}

fn number_error(param: &'static str, v: &str) -> LogOptionsError {
    LogOptionsError::InvalidNumber {
        param,
        value: v.to_string(),
    }
}

impl LogOptions {
    /// The options of a query (`key=value` pairs), as of `now`. Errors name
    /// the bad parameter.
    pub(crate) fn from_query(
        pairs: &[(String, String)],
        now: Timestamp,
    ) -> Result<LogOptions, LogOptionsError> {
        let mut o = LogOptions::default();
        let mut since_seconds = None;
        let mut since_time = None;
        for (k, v) in pairs {
            match k.as_str() {
                "follow" => o.follow = flag("follow", v)?,
                "previous" => o.previous = flag("previous", v)?,
                "timestamps" => o.timestamps = flag("timestamps", v)?,
                "tailLines" => {
                    let n: i64 = v.parse().map_err(|_| number_error("tailLines", v))?;
                    if n < 0 {
                        return Err(LogOptionsError::NegativeTailLines);
                    }
                    o.tail_lines = Some(n as usize);
                }
                "limitBytes" => {
                    let n: i64 = v.parse().map_err(|_| number_error("limitBytes", v))?;
                    if n < 1 {
                        return Err(LogOptionsError::NotPositive("limitBytes"));
                    }
                    o.limit_bytes = Some(n as u64);
                }
                "sinceSeconds" => {
                    let n: i64 = v.parse().map_err(|_| number_error("sinceSeconds", v))?;
                    if n < 1 {
                        return Err(LogOptionsError::NotPositive("sinceSeconds"));
                    }
                    since_seconds = Some(n);
                }
                "sinceTime" => {
                    let t: Timestamp = v
                        .parse()
                        .map_err(|_| LogOptionsError::InvalidTime(v.to_string()))?;
                    since_time = Some(t);
                }
                _ => {}
            }
        }
        o.since = match (since_seconds, since_time) {
            (Some(_), Some(_)) => return Err(LogOptionsError::BothSince),
            (Some(s), None) => Some(
                now.checked_sub(jiff::SignedDuration::from_secs(s))
                    .unwrap_or(Timestamp::MIN),
            ),
            (None, t) => t,
        };
        Ok(o)
    }
}

/// One line of output, joined from its records.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogLine {
    pub time: Timestamp,
    /// The content, with its newline unless it is the unterminated end of
    /// the output.
    pub content: Vec<u8>,
}

/// Joins CRI log records, fed as arbitrary chunks of the file, into lines
/// (in the order they are completed).
#[derive(Default)]
pub(crate) struct Assembler {
    /// An unfinished record (no newline yet).
    record: Vec<u8>,
    /// Pieces of a partial line per stream (stdout, stderr).
    partial: [Option<LogLine>; 2],
}

impl Assembler {
    /// Feeds file bytes; complete lines go to `out`.
    pub(crate) fn push(&mut self, data: &[u8], out: &mut Vec<LogLine>) {
        let mut rest = data;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            self.record.extend_from_slice(&rest[..nl]);
            let record = std::mem::take(&mut self.record);
            self.record_line(&record, out);
            rest = &rest[nl + 1..];
        }
        self.record.extend_from_slice(rest);
    }

    /// The end of the file: what is pending goes out as it is.
    pub(crate) fn finish(&mut self, out: &mut Vec<LogLine>) {
        if !self.record.is_empty() {
            let record = std::mem::take(&mut self.record);
            self.record_line(&record, out);
        }
        let mut pending: Vec<LogLine> = self.partial.iter_mut().filter_map(Option::take).collect();
        pending.sort_by_key(|l| l.time);
        out.extend(pending);
    }

    fn record_line(&mut self, record: &[u8], out: &mut Vec<LogLine>) {
        let Some(r) = parse_record(record) else {
            tracing::debug!("skipping a malformed log record");
            return;
        };
        let slot = &mut self.partial[r.stream as usize];
        let line = slot.get_or_insert_with(|| LogLine {
            time: r.time,
            content: Vec::new(),
        });
        line.content.extend_from_slice(r.content);
        if !r.partial {
            line.content.push(b'\n');
            if let Some(l) = slot.take() {
                out.push(l);
            }
        }
    }
}

/// A record's stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stream {
    Stdout = 0,
    Stderr = 1,
}

/// One parsed record of a CRI log file.
#[derive(Debug, PartialEq)]
pub(crate) struct Record<'a> {
    pub time: Timestamp,
    pub stream: Stream,
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses `<time> <stream> <tag> <content>` (a record without a tag, as old
/// runtimes wrote, is a full line).
pub(crate) fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(3, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    let rest = parts.next().unwrap_or(b"");
    let (partial, content) = match rest.split_first() {
        Some((b'P', c)) if c.is_empty() || c[0] == b' ' => (true, c.get(1..).unwrap_or(b"")),
        Some((b'F', c)) if c.is_empty() || c[0] == b' ' => (false, c.get(1..).unwrap_or(b"")),
        _ => (false, rest),
    };
    Some(Record {
        time,
        stream,
        partial,
        content,
    })
}

/// Kubernetes' output time format: RFC 3339 in UTC with nine fractional digits.
pub(crate) fn format_time(t: Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond()
    )
}

/// Turns lines into output bytes, applying `since`, `timestamps` and
/// `limitBytes`; `None` once the byte limit is reached.
pub(crate) struct Writer {
    opts: LogOptions,
    written: u64,
}

impl Writer {
    pub(crate) fn new(opts: LogOptions) -> Writer {
        Writer { opts, written: 0 }
    }

    /// The bytes for these lines; `done` is set when the limit is reached.
    pub(crate) fn render(&mut self, lines: &[LogLine]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        for l in lines {
            if self.opts.since.is_some_and(|s| l.time < s) {
                continue;
            }
            if self.opts.timestamps {
                out.extend_from_slice(format_time(l.time).as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(&l.content);
        }
        if let Some(limit) = self.opts.limit_bytes {
            let room = limit.saturating_sub(self.written);
            if out.len() as u64 >= room {
                out.truncate(room as usize);
                self.written = limit;
                return (out, true);
            }
        }
        self.written += out.len() as u64;
        (out, false)
    }

    /// Whether a line counts for `tailLines` (it passes `since`).
    pub(crate) fn selects(&self, line: &LogLine) -> bool {
        self.opts.since.is_none_or(|s| line.time >= s)
    }
}

/// Is the container still writing? Asked while following.
#[async_trait::async_trait]
pub(crate) trait Liveness: Send + Sync {
    async fn running(&self) -> bool;
}

const POLL: Duration = Duration::from_millis(100);
const CHUNK: usize = 64 * 1024;

/// Streams the log file at `path` into `tx` as `opts` asks; returns when
/// done, when the container stopped (following), or when the receiver is gone.
pub(crate) async fn stream_file(
    path: PathBuf,
    opts: LogOptions,
    live: Box<dyn Liveness>,
    tx: mpsc::Sender<Bytes>,
) -> std::io::Result<()> {
    let mut file = tokio::fs::File::open(&path).await?;
    let mut asm = Assembler::default();
    let mut writer = Writer::new(opts.clone());
    let mut buf = vec![0u8; CHUNK];
    // The file as it is now: read whole, keep the last `tailLines`.
    let mut tail: VecDeque<LogLine> = VecDeque::new();
    let mut lines = Vec::new();
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        asm.push(&buf[..n], &mut lines);
        for l in lines.drain(..) {
            if !writer.selects(&l) {
                continue;
            }
            tail.push_back(l);
            if opts.tail_lines.is_some_and(|t| tail.len() > t) {
                tail.pop_front();
            }
            if opts.tail_lines.is_none()
                && tail.len() >= 256
                && send(&mut writer, tail.drain(..).collect(), &tx).await
            {
                return Ok(());
            }
        }
    }
    if !opts.follow {
        asm.finish(&mut lines);
        tail.extend(lines.drain(..).filter(|l| writer.selects(l)));
        if let Some(t) = opts.tail_lines {
            while tail.len() > t {
                tail.pop_front();
            }
        }
        send(&mut writer, tail.into_iter().collect(), &tx).await;
        return Ok(());
    }
    if send(&mut writer, tail.into_iter().collect(), &tx).await {
        return Ok(());
    }
    // Following: new records as they come; after the container stops, what
    // is left, then the end.
    let mut last_check = tokio::time::Instant::now();
    let mut stopped = false;
    loop {
        let n = file.read(&mut buf).await?;
        if n > 0 {
            asm.push(&buf[..n], &mut lines);
            if send(&mut writer, std::mem::take(&mut lines), &tx).await {
                return Ok(());
            }
            continue;
        }
        if stopped {
            asm.finish(&mut lines);
            send(&mut writer, lines, &tx).await;
            return Ok(());
        }
        tokio::select! {
            _ = tx.closed() => return Ok(()),
            _ = tokio::time::sleep(POLL) => {}
        }
        if last_check.elapsed() >= Duration::from_secs(1) {
            last_check = tokio::time::Instant::now();
            if !live.running().await {
                // One more read picks up the last records.
                stopped = true;
            }
        }
        // A truncated file (rotation by someone else): start over.
        if let (Ok(meta), Ok(pos)) = (
            tokio::fs::metadata(&path).await,
            file.stream_position().await,
        ) {
            if meta.len() < pos {
                file = tokio::fs::File::open(&path).await?;
            }
        }
    }
}

/// Sends rendered lines; true when the stream should end (limit reached or
/// client gone).
async fn send(writer: &mut Writer, lines: Vec<LogLine>, tx: &mpsc::Sender<Bytes>) -> bool {
    if lines.is_empty() {
        return false;
    }
    let (bytes, done) = writer.render(&lines);
    if !bytes.is_empty() && tx.send(Bytes::from(bytes)).await.is_err() {
        return true;
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn records_parse_with_and_without_tags() {
        let r = parse_record(b"2024-01-02T03:04:05.123456789Z stdout F hello world").unwrap();
        assert_eq!(r.stream, Stream::Stdout);
        assert!(!r.partial);
        assert_eq!(r.content, b"hello world");
        let r = parse_record(b"2024-01-02T03:04:05+01:00 stderr P part").unwrap();
        assert_eq!(r.stream, Stream::Stderr);
        assert!(r.partial);
        assert_eq!(r.time, ts("2024-01-02T02:04:05Z"));
        let r = parse_record(b"2024-01-02T03:04:05Z stdout F ").unwrap();
        assert_eq!(r.content, b"");
        assert!(parse_record(b"garbage").is_none());
        assert!(parse_record(b"2024-01-02T03:04:05Z stdin F x").is_none());
    }

    #[test]
    fn partial_records_join_per_stream_across_chunks() {
        let file = b"2024-01-02T03:04:05Z stdout P hel\n2024-01-02T03:04:06Z stderr F oops\n2024-01-02T03:04:07Z stdout F lo\n2024-01-02T03:04:08Z stdout F next\n";
        let mut asm = Assembler::default();
        let mut out = Vec::new();
        // Fed byte by byte: chunk boundaries do not matter.
        for b in file.iter() {
            asm.push(std::slice::from_ref(b), &mut out);
        }
        asm.finish(&mut out);
        let got: Vec<(String, Timestamp)> = out
            .iter()
            .map(|l| (String::from_utf8(l.content.clone()).unwrap(), l.time))
            .collect();
        assert_eq!(
            got,
            vec![
                ("oops\n".into(), ts("2024-01-02T03:04:06Z")),
                ("hello\n".into(), ts("2024-01-02T03:04:05Z")),
                ("next\n".into(), ts("2024-01-02T03:04:08Z")),
            ]
        );
    }

    #[test]
    fn an_unterminated_partial_line_comes_out_at_the_end() {
        let mut asm = Assembler::default();
        let mut out = Vec::new();
        asm.push(b"2024-01-02T03:04:05Z stdout P no newline\n", &mut out);
        assert!(out.is_empty());
        asm.finish(&mut out);
        assert_eq!(out[0].content, b"no newline");
    }

    #[test]
    fn timestamps_have_nine_fractional_digits_in_utc() {
        assert_eq!(
            format_time(ts("2024-01-02T03:04:05.5+02:00")),
            "2024-01-02T01:04:05.500000000Z"
        );
    }

    #[test]
    fn options_parse_like_the_kubelet() {
        let now = ts("2024-01-02T03:04:05Z");
        let o = LogOptions::from_query(
            &q(&[
                ("follow", "true"),
                ("tailLines", "3"),
                ("timestamps", "1"),
                ("sinceSeconds", "60"),
                ("limitBytes", "10"),
                ("previous", "false"),
            ]),
            now,
        )
        .unwrap();
        assert!(o.follow && o.timestamps && !o.previous);
        assert_eq!(o.tail_lines, Some(3));
        assert_eq!(o.limit_bytes, Some(10));
        assert_eq!(o.since, Some(ts("2024-01-02T03:03:05Z")));
        let o = LogOptions::from_query(&q(&[("sinceTime", "2024-01-01T00:00:00Z")]), now).unwrap();
        assert_eq!(o.since, Some(ts("2024-01-01T00:00:00Z")));
        for bad in [
            vec![("tailLines", "-1")],
            vec![("tailLines", "x")],
            vec![("limitBytes", "0")],
            vec![("sinceSeconds", "0")],
            vec![("sinceTime", "yesterday")],
            vec![("follow", "maybe")],
            vec![("sinceSeconds", "5"), ("sinceTime", "2024-01-01T00:00:00Z")],
        ] {
            assert!(LogOptions::from_query(&q(&bad), now).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_writer_filters_prefixes_and_limits() {
        let lines = vec![
            LogLine {
                time: ts("2024-01-02T03:04:05Z"),
                content: b"old\n".to_vec(),
            },
            LogLine {
                time: ts("2024-01-02T03:04:07Z"),
                content: b"new\n".to_vec(),
            },
        ];
        let mut w = Writer::new(LogOptions {
            since: Some(ts("2024-01-02T03:04:06Z")),
            timestamps: true,
            ..Default::default()
        });
        assert_eq!(
            String::from_utf8(w.render(&lines).0).unwrap(),
            "2024-01-02T03:04:07.000000000Z new\n"
        );
        let mut w = Writer::new(LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        });
        let (b, done) = w.render(&lines);
        assert_eq!(b, b"old\nne");
        assert!(done);
    }

    struct Stopped;
    #[async_trait::async_trait]
    impl Liveness for Stopped {
        async fn running(&self) -> bool {
            false
        }
    }

    async fn collect(path: PathBuf, opts: LogOptions) -> String {
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(stream_file(path, opts, Box::new(Stopped), tx));
        let mut out = Vec::new();
        while let Some(b) = rx.recv().await {
            out.extend_from_slice(&b);
        }
        task.await.unwrap().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn a_file_streams_with_tail_and_follow_ends_when_the_container_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let mut text = String::new();
        for i in 0..1000 {
            text.push_str(&format!("2024-01-02T03:04:05.{i:03}Z stdout F line {i}\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let all = collect(path.clone(), LogOptions::default()).await;
        assert_eq!(all.lines().count(), 1000);
        assert!(all.starts_with("line 0\n") && all.ends_with("line 999\n"));
        let tail = collect(
            path.clone(),
            LogOptions {
                tail_lines: Some(2),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(tail, "line 998\nline 999\n");
        let none = collect(
            path.clone(),
            LogOptions {
                tail_lines: Some(0),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(none, "");
        let followed = tokio::time::timeout(
            Duration::from_secs(10),
            collect(
                path,
                LogOptions {
                    follow: true,
                    tail_lines: Some(1),
                    ..Default::default()
                },
            ),
        )
        .await
        .expect("follow ends once the container is not running");
        assert_eq!(followed, "line 999\n");
    }
}
