//! The data directory on disk: a format marker, a lock, and one append-only
//! log of framed records.
//!
//! ```text
//! DATA_DIR/FORMAT   "ferrokube-embedded-store v1"
//! DATA_DIR/LOCK     held with flock while a process has the store open
//! DATA_DIR/log      framed records (see `record`), fsynced per batch
//! ```
//!
//! At open the whole log is read and checked. A frame cut short at the very
//! end, or a damaged last frame with nothing after it, is a write that was
//! torn by a crash before it was acknowledged: it is cut off (and logged). A
//! damaged frame with more data after it, an unknown record, or a FORMAT of
//! another version is damage: opening fails with a clear message and nothing
//! is changed. Compaction rewrites the log (new file, fsync, rename, fsync of
//! the directory), so a crash leaves either the old or the new log.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::record::{read_frame, Frame, Record};
use crate::{Result, StoreError};

pub(super) const FORMAT_FILE: &str = "FORMAT";
pub(super) const FORMAT: &str = "ferrokube-embedded-store v1\n";
pub(super) const LOG_FILE: &str = "log";
const LOG_TMP: &str = "log.tmp";
const LOCK_FILE: &str = "LOCK";

/// The open log.
pub(super) struct Wal {
    dir: PathBuf,
    file: File,
    /// Bytes in the log.
    pub len: u64,
    _lock: File,
}

fn corrupt(dir: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: dir.display().to_string(),
        reason: reason.into(),
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `contents` to `dir/name` atomically and durably.
fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(contents)?;
    f.sync_all()?;
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

#[expect(unsafe_code, reason = "flock(2) has no safe wrapper in std")]
fn lock(dir: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))?;
    // SAFETY: flock on a file descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Unavailable(format!(
            "data directory {} is in use by another process",
            dir.display()
        )));
    }
    Ok(f)
}

impl Wal {
    /// Opens (or creates) the data directory and returns the log's records.
    pub(super) fn open(dir: &Path) -> Result<(Wal, Vec<Record>)> {
        fs::create_dir_all(dir)?;
        let lock = lock(dir)?;
        let format_path = dir.join(FORMAT_FILE);
        let log_path = dir.join(LOG_FILE);
        if format_path.exists() {
            let found = fs::read_to_string(&format_path)
                .map_err(|e| corrupt(dir, format!("cannot read {FORMAT_FILE}: {e}")))?;
            if found != FORMAT {
                return Err(corrupt(
                    dir,
                    format!(
                        "written by another version of the store ({:?}); this ferrokube reads {:?}",
                        found.trim(),
                        FORMAT.trim()
                    ),
                ));
            }
            if !log_path.exists() {
                return Err(corrupt(dir, format!("the {LOG_FILE} file is missing")));
            }
        } else {
            let others: Vec<String> = fs::read_dir(dir)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != LOCK_FILE)
                .collect();
            if !others.is_empty() {
                return Err(corrupt(
                    dir,
                    format!(
                        "not an embedded store (no {FORMAT_FILE} file) and not empty: {}",
                        others.join(", ")
                    ),
                ));
            }
            File::create(&log_path)?.sync_all()?;
            write_atomic(dir, FORMAT_FILE, FORMAT.as_bytes())?;
        }
        // A rewrite interrupted before its rename: the old log is intact.
        let _ = fs::remove_file(dir.join(LOG_TMP));

        let mut data = Vec::new();
        File::open(&log_path)?.read_to_end(&mut data)?;
        let (records, good_len) = parse(dir, &data)?;
        let file = OpenOptions::new().append(true).open(&log_path)?;
        if good_len < data.len() {
            tracing::warn!(
                dir = %dir.display(),
                dropped_bytes = data.len() - good_len,
                "embedded store: cutting off a torn write at the end of the log (never acknowledged)"
            );
            file.set_len(good_len as u64)?;
            file.sync_all()?;
        }
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                file,
                len: good_len as u64,
                _lock: lock,
            },
            records,
        ))
    }

    /// Appends framed records and waits until they are on disk.
    pub(super) fn append(&mut self, frames: &[u8]) -> std::io::Result<()> {
        self.file.write_all(frames)?;
        self.file.sync_data()?;
        self.len += frames.len() as u64;
        Ok(())
    }

    /// Replaces the log with `records`, atomically and durably.
    pub(super) fn rewrite(&mut self, records: &[Record]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            r.encode_frame(&mut buf);
        }
        write_atomic(&self.dir, LOG_FILE, &buf)?;
        self.file = OpenOptions::new()
            .append(true)
            .open(self.dir.join(LOG_FILE))?;
        self.len = buf.len() as u64;
        Ok(())
    }
}

/// Parses the log; returns its records and the length of its intact part.
fn parse(dir: &Path, data: &[u8]) -> Result<(Vec<Record>, usize)> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < data.len() {
        match read_frame(&data[at..]) {
            Frame::Ok { payload, len } => {
                let rec = Record::decode(payload).map_err(|e| {
                    corrupt(dir, format!("log record at byte {at} is not readable: {e}"))
                })?;
                records.push(rec);
                at += len;
            }
            Frame::Truncated => return Ok((records, at)),
            Frame::Bad(why) => {
                let rest = &data[at..];
                let declared = rest
                    .get(..4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize + 8)
                    .unwrap_or(0);
                // The last frame, or zeros after it: a torn tail.
                let torn = rest.iter().all(|&b| b == 0) || declared == rest.len();
                if torn {
                    return Ok((records, at));
                }
                return Err(corrupt(
                    dir,
                    format!(
                        "log damaged at byte {at} of {} ({why}) with intact data after it; \
                         refusing to open rather than lose data: restore the directory from a backup",
                        data.len()
                    ),
                ));
            }
        }
    }
    Ok((records, at))
}
