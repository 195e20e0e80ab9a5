//! Metadata properties: `name-len(1) name value-len(4, BE) value`, repeated.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

/// Connection metadata: an ordered list of (name, value) properties.
///
/// Names are kept as sent; lookups with [`Metadata::get`] ignore ASCII case
/// (RFC 23), while we always emit libzmq's canonical spelling because libzmq
/// itself compares case-sensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    props: Vec<(String, Bytes)>,
}

/// A malformed metadata block. The connection must be closed (libzmq: EPROTO).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The block ended inside a property.
    #[error("metadata truncated")]
    Truncated,
    /// A property name is empty or uses characters outside `[A-Za-z0-9-_.+]`.
    #[error("invalid metadata property name")]
    BadName,
    /// A value length is over 2^31-1.
    #[error("metadata value too long")]
    ValueTooLong,
}

impl Metadata {
    /// No properties.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a property.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Bytes>) {
        self.props.push((name.into(), value.into()));
    }

    /// The first value whose name matches `name`, ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All properties, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.props.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.props.len()
    }

    /// True when there are no properties.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// Size of the wire form in bytes.
    pub fn encoded_len(&self) -> usize {
        self.props
            .iter()
            .map(|(n, v)| 1 + n.len() + 4 + v.len())
            .sum()
    }

    /// Appends the wire form. Names longer than 255 bytes are never built by
    /// this crate; values are assumed below 2^31.
    pub fn encode(&self, out: &mut BytesMut) {
        for (name, value) in &self.props {
            out.put_u8(name.len() as u8);
            out.put_slice(name.as_bytes());
            out.put_u32(value.len() as u32);
            out.put_slice(value);
        }
    }

    /// Parses a whole metadata block. Values are slices of `data`.
    pub fn decode(data: &Bytes) -> Result<Metadata, MetadataError> {
        let mut props = Vec::new();
        let mut pos = 0usize;
        while pos < data.len() {
            let name_len = usize::from(data[pos]);
            pos += 1;
            if name_len == 0 {
                return Err(MetadataError::BadName);
            }
            let name = data
                .get(pos..pos + name_len)
                .ok_or(MetadataError::Truncated)?;
            if !name
                .iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'+'))
            {
                return Err(MetadataError::BadName);
            }
            // Checked above: ASCII only.
            let name = String::from_utf8_lossy(name).into_owned();
            pos += name_len;
            let raw = data.get(pos..pos + 4).ok_or(MetadataError::Truncated)?;
            let value_len = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
            if value_len > i32::MAX as u32 {
                return Err(MetadataError::ValueTooLong);
            }
            pos += 4;
            let end = pos
                .checked_add(value_len as usize)
                .filter(|&e| e <= data.len())
                .ok_or(MetadataError::Truncated)?;
            props.push((name, data.slice(pos..end)));
            pos = end;
        }
        Ok(Metadata { props })
    }
}

/// Most metadata blocks [`SharedMetadata::intern`] keeps for the life of
/// the process.
const INTERNED: usize = 256;
/// The largest metadata (in its wire form) worth interning: a hostile
/// peer's big blocks must not stay in memory after it leaves.
const INTERNED_LEN: usize = 512;

/// The metadata blocks interned so far (see [`SharedMetadata::intern`]).
static TABLE: std::sync::Mutex<Vec<&'static Arc<Metadata>>> = std::sync::Mutex::new(Vec::new());

/// Connection metadata as the messages of a connection share it.
///
/// Every message received carries its connection's metadata, and an
/// `Arc` cost two atomic read-modify-writes per message (the clone when
/// received, the drop when done): ~15% of a 16-byte receiver's time.
/// Most programs see few distinct blocks (the peer's socket type and
/// address, an identity), so [`intern`](Self::intern) keeps up to 256
/// small ones for the life of the process, shared by a plain reference;
/// the rest are counted as usual.
#[derive(Clone, Debug)]
pub struct SharedMetadata(Shared);

#[derive(Clone, Debug)]
enum Shared {
    Counted(Arc<Metadata>),
    Interned(&'static Arc<Metadata>),
}

impl SharedMetadata {
    /// Shares `meta`: the interned block equal to it, a newly interned copy
    /// while the table has room and `meta` is small, else a counted one.
    pub fn intern(meta: Metadata) -> SharedMetadata {
        if meta.encoded_len() <= INTERNED_LEN {
            let mut table = TABLE
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(&found) = table.iter().find(|e| ****e == meta) {
                return SharedMetadata(Shared::Interned(found));
            }
            if table.len() < INTERNED {
                // Values copied out: decoded ones are slices of the
                // connection's read buffer, which they would keep alive.
                let props = meta
                    .props
                    .iter()
                    .map(|(n, v)| (n.clone(), Bytes::copy_from_slice(v)))
                    .collect();
                let kept: &'static Arc<Metadata> =
                    Box::leak(Box::new(Arc::new(Metadata { props })));
                table.push(kept);
                return SharedMetadata(Shared::Interned(kept));
            }
        }
        SharedMetadata(Shared::Counted(Arc::new(meta)))
    }

    /// Shares `meta` as it is, counted.
    pub fn counted(meta: Arc<Metadata>) -> SharedMetadata {
        SharedMetadata(Shared::Counted(meta))
    }

    /// The metadata as an `Arc`.
    pub fn as_arc(&self) -> &Arc<Metadata> {
        match &self.0 {
            Shared::Counted(m) => m,
            Shared::Interned(m) => m,
        }
    }

    /// Whether the block is interned (shared without counting).
    pub fn is_interned(&self) -> bool {
        matches!(self.0, Shared::Interned(_))
    }
}

impl std::ops::Deref for SharedMetadata {
    type Target = Metadata;
    fn deref(&self) -> &Metadata {
        self.as_arc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_small_blocks_are_interned_once_and_big_ones_counted() {
        let mut m = Metadata::new();
        m.insert("Socket-Type", "PUSH");
        m.insert("X-Interning-Test", "unique to this test");
        let a = SharedMetadata::intern(m.clone());
        let b = SharedMetadata::intern(m.clone());
        assert!(a.is_interned() && b.is_interned());
        assert!(Arc::ptr_eq(a.as_arc(), b.as_arc()));
        assert_eq!(*a, m);
        // Copied out of the buffer the values came from.
        let mut out = BytesMut::new();
        m.encode(&mut out);
        let buf = out.freeze();
        let decoded = Metadata::decode(&buf).unwrap();
        let c = SharedMetadata::intern(decoded);
        let v = c.get("X-Interning-Test").unwrap();
        assert!(!buf.as_ptr_range().contains(&v.as_ptr()));
        let mut big = Metadata::new();
        big.insert("X-Big", vec![7u8; INTERNED_LEN]);
        let d = SharedMetadata::intern(big.clone());
        assert!(!d.is_interned());
        assert_eq!(*d, big);
    }

    #[test]
    fn round_trip_and_case_insensitive_lookup() {
        let mut m = Metadata::new();
        m.insert("Socket-Type", "DEALER");
        m.insert("Identity", "");
        m.insert("X-Foo.bar+1_", vec![0u8, 1, 2]);
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(out.len(), m.encoded_len());
        let back = Metadata::decode(&out.freeze()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.get("socket-type").unwrap(), "DEALER");
        assert_eq!(back.get("identity").unwrap(), "");
    }

    #[test]
    fn malformed_blocks() {
        let cases: &[(&[u8], MetadataError)] = &[
            (b"\x00", MetadataError::BadName),
            (b"\x05ab", MetadataError::Truncated),
            (b"\x02a b\x00\x00\x00\x00", MetadataError::BadName),
            (b"\x01a\x00\x00", MetadataError::Truncated),
            (b"\x01a\x00\x00\x00\x05abc", MetadataError::Truncated),
            (b"\x01a\x80\x00\x00\x00", MetadataError::ValueTooLong),
            (b"\x01a\xff\xff\xff\xff", MetadataError::ValueTooLong),
        ];
        for (raw, err) in cases {
            assert_eq!(
                Metadata::decode(&Bytes::copy_from_slice(raw)).as_ref(),
                Err(err),
                "{raw:?}"
            );
        }
    }
}
