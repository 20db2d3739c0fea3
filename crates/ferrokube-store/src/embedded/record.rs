//! The log's records and their framing.
//!
//! A frame is `[payload length: u32 LE][crc32 of payload: u32 LE][payload]`.
//! A payload is one record: a type byte and its fields (integers as i64 LE,
//! strings and byte strings as a u32 LE length and the bytes).

use bytes::{Buf, BufMut, Bytes};

use crate::types::{KeyValue, LeaseId, Revision};

/// The largest payload a valid frame can have: a value at the limit plus a
/// key and the fixed fields, with room to spare.
pub(super) const MAX_PAYLOAD: usize = 8 << 20;

pub(super) const FRAME_HEADER: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Record {
    /// A key written at `kv.mod_revision` (create or update).
    Put(KeyValue),
    /// A key deleted at `revision`.
    Delete {
        key: String,
        revision: Revision,
    },
    /// History below `revision` discarded.
    Compact {
        revision: Revision,
    },
    LeaseGrant {
        id: LeaseId,
        ttl: i64,
    },
    LeaseRevoke {
        id: LeaseId,
    },
}

const PUT: u8 = 1;
const DELETE: u8 = 2;
const COMPACT: u8 = 3;
const LEASE_GRANT: u8 = 4;
const LEASE_REVOKE: u8 = 5;

impl Record {
    /// Appends this record, framed, to `out`.
    pub(super) fn encode_frame(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u32_le(0);
        out.put_u32_le(0);
        match self {
            Record::Put(kv) => {
                out.put_u8(PUT);
                out.put_i64_le(kv.mod_revision);
                out.put_i64_le(kv.create_revision);
                out.put_i64_le(kv.version);
                out.put_i64_le(kv.lease);
                put_bytes(out, kv.key.as_bytes());
                put_bytes(out, &kv.value);
            }
            Record::Delete { key, revision } => {
                out.put_u8(DELETE);
                out.put_i64_le(*revision);
                put_bytes(out, key.as_bytes());
            }
            Record::Compact { revision } => {
                out.put_u8(COMPACT);
                out.put_i64_le(*revision);
            }
            Record::LeaseGrant { id, ttl } => {
                out.put_u8(LEASE_GRANT);
                out.put_i64_le(*id);
                out.put_i64_le(*ttl);
            }
            Record::LeaseRevoke { id } => {
                out.put_u8(LEASE_REVOKE);
                out.put_i64_le(*id);
            }
        }
        let payload_len = out.len() - start - FRAME_HEADER;
        let crc = crc32fast::hash(&out[start + FRAME_HEADER..]);
        out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// Decodes one payload (already checked against its crc).
    pub(super) fn decode(payload: &[u8]) -> Result<Record, DecodeError> {
        let mut buf = payload;
        let kind = get_u8(&mut buf)?;
        let rec = match kind {
            PUT => {
                let mod_revision = get_i64(&mut buf)?;
                let create_revision = get_i64(&mut buf)?;
                let version = get_i64(&mut buf)?;
                let lease = get_i64(&mut buf)?;
                let key = get_string(&mut buf)?;
                let value = get_bytes(&mut buf)?;
                Record::Put(KeyValue {
                    key,
                    value,
                    create_revision,
                    mod_revision,
                    version,
                    lease,
                })
            }
            DELETE => {
                let revision = get_i64(&mut buf)?;
                let key = get_string(&mut buf)?;
                Record::Delete { key, revision }
            }
            COMPACT => Record::Compact {
                revision: get_i64(&mut buf)?,
            },
            LEASE_GRANT => Record::LeaseGrant {
                id: get_i64(&mut buf)?,
                ttl: get_i64(&mut buf)?,
            },
            LEASE_REVOKE => Record::LeaseRevoke {
                id: get_i64(&mut buf)?,
            },
            other => return Err(DecodeError::UnknownType(other)),
        };
        if !buf.is_empty() {
            return Err(DecodeError::TrailingBytes(buf.len()));
        }
        Ok(rec)
    }
}

/// Why a log record (whose checksum matched) cannot be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum DecodeError {
    /// The record ends before its last field.
    #[error("record truncated")]
    Truncated,
    /// The record's type byte is none this version writes.
    #[error("unknown record type {0}")]
    UnknownType(u8),
    /// Bytes follow the record's last field.
    #[error("{0} trailing bytes after a record")]
    TrailingBytes(usize),
    /// A key is not UTF-8 text.
    #[error("key is not UTF-8")]
    KeyNotUtf8,
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_u32_le(b.len() as u32);
    out.put_slice(b);
}

fn get_u8(buf: &mut &[u8]) -> Result<u8, DecodeError> {
    if buf.remaining() < 1 {
        return Err(DecodeError::Truncated);
    }
    Ok(buf.get_u8())
}

fn get_i64(buf: &mut &[u8]) -> Result<i64, DecodeError> {
    if buf.remaining() < 8 {
        return Err(DecodeError::Truncated);
    }
    Ok(buf.get_i64_le())
}

fn get_bytes(buf: &mut &[u8]) -> Result<Bytes, DecodeError> {
    if buf.remaining() < 4 {
        return Err(DecodeError::Truncated);
    }
    let len = buf.get_u32_le() as usize;
    if buf.remaining() < len {
        return Err(DecodeError::Truncated);
    }
    let b = Bytes::copy_from_slice(&buf[..len]);
    buf.advance(len);
    Ok(b)
}

fn get_string(buf: &mut &[u8]) -> Result<String, DecodeError> {
    let b = get_bytes(buf)?;
    String::from_utf8(b.to_vec()).map_err(|_| DecodeError::KeyNotUtf8)
}

/// What reading a frame at some offset found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame<'a> {
    /// A whole, intact frame: its payload and total length.
    Ok { payload: &'a [u8], len: usize },
    /// The bytes end inside the frame (a torn write at the tail).
    Truncated,
    /// A frame whose checksum or length is wrong.
    Bad(String),
}

/// Reads the frame at the start of `data`.
pub(super) fn read_frame(data: &[u8]) -> Frame<'_> {
    if data.len() < FRAME_HEADER {
        return Frame::Truncated;
    }
    let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let crc = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
    if len == 0 || len > MAX_PAYLOAD {
        return Frame::Bad(format!("impossible record length {len}"));
    }
    if data.len() < FRAME_HEADER + len {
        return Frame::Truncated;
    }
    let payload = &data[FRAME_HEADER..FRAME_HEADER + len];
    if crc32fast::hash(payload) != crc {
        return Frame::Bad("checksum mismatch".into());
    }
    Frame::Ok {
        payload,
        len: FRAME_HEADER + len,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv() -> KeyValue {
        KeyValue {
            key: "/a/b".into(),
            value: Bytes::from_static(b"hello"),
            create_revision: 3,
            mod_revision: 7,
            version: 2,
            lease: 99,
        }
    }

    #[test]
    fn records_round_trip() {
        let recs = vec![
            Record::Put(kv()),
            Record::Delete {
                key: "/x".into(),
                revision: 8,
            },
            Record::Compact { revision: 5 },
            Record::LeaseGrant { id: 42, ttl: 60 },
            Record::LeaseRevoke { id: 42 },
        ];
        let mut buf = Vec::new();
        for r in &recs {
            r.encode_frame(&mut buf);
        }
        let mut at = 0;
        let mut back = Vec::new();
        while at < buf.len() {
            match read_frame(&buf[at..]) {
                Frame::Ok { payload, len } => {
                    back.push(Record::decode(payload).unwrap());
                    at += len;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, recs);
    }

    #[test]
    fn damage_is_detected() {
        let mut buf = Vec::new();
        Record::Put(kv()).encode_frame(&mut buf);
        assert_eq!(read_frame(&buf[..buf.len() - 1]), Frame::Truncated);
        assert_eq!(read_frame(&buf[..3]), Frame::Truncated);
        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        assert!(matches!(read_frame(&flipped), Frame::Bad(_)));
        let zeros = vec![0u8; 32];
        assert!(matches!(read_frame(&zeros), Frame::Bad(_)));
        assert!(Record::decode(&[9]).is_err());
        assert!(Record::decode(&[PUT, 1, 2]).is_err());
    }
}
