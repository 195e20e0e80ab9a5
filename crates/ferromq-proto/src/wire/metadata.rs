//! Metadata properties: `name-len(1) name value-len(4, BE) value`, repeated.

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

#[cfg(test)]
mod tests {
    use super::*;

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
