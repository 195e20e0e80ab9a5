//! The 64-byte ZMTP 3.x greeting (RFC 23 / RFC 37).
//!
//! ```text
//! offset  0     1..8        9     10     11     12..31     32         33..63
//!        0xFF  padding     0x7F  major  minor  mechanism  as-server  filler
//! ```
//! Padding carries `identity length + 1` as a big-endian u64 in libzmq (a ZMTP
//! 1.0 compatibility trick); receivers ignore it.

use bytes::{BufMut, BytesMut};

/// Length of a full ZMTP 3.x greeting.
pub const GREETING_LEN: usize = 64;
/// Length of the signature that every ZMTP version after 1.0 starts with.
const SIGNATURE_LEN: usize = 10;

/// The 20-byte, NUL-padded security mechanism name in the greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MechanismName {
    /// `NULL`: no security.
    Null,
    /// `PLAIN`: clear-text user name and password (RFC 24).
    Plain,
    /// `CURVE`: CurveZMQ (RFC 25/26).
    Curve,
    /// Any other name, kept raw so errors can show it.
    Other([u8; 20]),
}

impl MechanismName {
    /// The NUL-padded wire form.
    pub fn to_bytes(self) -> [u8; 20] {
        let name: &[u8] = match self {
            MechanismName::Null => b"NULL",
            MechanismName::Plain => b"PLAIN",
            MechanismName::Curve => b"CURVE",
            MechanismName::Other(raw) => return raw,
        };
        let mut out = [0u8; 20];
        out[..name.len()].copy_from_slice(name);
        out
    }

    /// Parses the wire form. Names compare exactly, as libzmq does.
    pub fn from_bytes(raw: [u8; 20]) -> Self {
        [
            MechanismName::Null,
            MechanismName::Plain,
            MechanismName::Curve,
        ]
        .into_iter()
        .find(|m| m.to_bytes() == raw)
        .unwrap_or(MechanismName::Other(raw))
    }

    /// The name without padding, for messages.
    pub fn display(&self) -> String {
        let raw = self.to_bytes();
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).into_owned()
    }
}

/// A decoded ZMTP 3.x greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// Major version (3 for ZMTP 3.x; larger values are treated as 3).
    pub major: u8,
    /// Minor version: 0 means ZMTP 3.0 behaviour, anything else 3.1.
    pub minor: u8,
    /// The security mechanism.
    pub mechanism: MechanismName,
    /// The as-server flag. libzmq always sends 0, so never rely on it.
    pub as_server: bool,
}

/// Why a greeting was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GreetingError {
    /// The peer speaks ZMTP 1.0 (no valid signature).
    #[error("peer speaks ZMTP 1.0, which is not supported")]
    Zmtp10,
    /// The peer announced major version 1 or 2 (ZMTP 2.0), or 0.
    #[error("peer speaks ZMTP {0}.0 (major version {1}), which is not supported")]
    OldVersion(u8, u8),
}

impl Greeting {
    /// Our greeting for `mechanism`, speaking ZMTP 3.1.
    pub fn new(mechanism: MechanismName, as_server: bool) -> Self {
        Greeting {
            major: 3,
            minor: 1,
            mechanism,
            as_server,
        }
    }

    /// Appends the 64-byte wire form to `out`.
    ///
    /// The padding is `00..00 01` (an empty identity, as libzmq sends for ZMTP 3).
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(GREETING_LEN);
        out.put_u8(0xFF);
        out.put_u64(1);
        out.put_u8(0x7F);
        out.put_u8(self.major);
        out.put_u8(self.minor);
        out.put_slice(&self.mechanism.to_bytes());
        out.put_u8(u8::from(self.as_server));
        out.put_bytes(0, 31);
    }

    /// Whether the peer asks for ZMTP 3.1 behaviour (commands for subscriptions, PING).
    pub fn is_zmtp31(&self) -> bool {
        self.major > 3 || self.minor >= 1
    }

    /// Tries to decode a greeting from the start of `buf`.
    ///
    /// Returns `Ok(None)` while more bytes are needed, and detects a ZMTP
    /// 1.0/2.0 peer as early as its bytes allow (after 1, 10 or 11 bytes), so
    /// a scanner or legacy peer is turned away without waiting for 64 bytes.
    /// Consumes the 64 bytes on success; leaves `buf` untouched otherwise.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Greeting>, GreetingError> {
        if let Some(&first) = buf.first() {
            if first != 0xFF {
                return Err(GreetingError::Zmtp10);
            }
        }
        if buf.len() >= SIGNATURE_LEN && buf[9] & 1 == 0 {
            return Err(GreetingError::Zmtp10);
        }
        if buf.len() > SIGNATURE_LEN {
            let major = buf[10];
            if major < 3 {
                let zmtp = if major == 0 { 1 } else { 2 };
                return Err(GreetingError::OldVersion(zmtp, major));
            }
        }
        if buf.len() < GREETING_LEN {
            return Ok(None);
        }
        let raw = buf.split_to(GREETING_LEN);
        let mut mech = [0u8; 20];
        mech.copy_from_slice(&raw[12..32]);
        Ok(Some(Greeting {
            major: raw[10],
            minor: raw[11],
            mechanism: MechanismName::from_bytes(mech),
            as_server: raw[32] == 1,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector from the reference: what libzmq sends for NULL.
    const LIBZMQ_NULL: [u8; 64] = {
        let mut g = [0u8; 64];
        g[0] = 0xFF;
        g[8] = 0x01;
        g[9] = 0x7F;
        g[10] = 0x03;
        g[11] = 0x01;
        g[12] = b'N';
        g[13] = b'U';
        g[14] = b'L';
        g[15] = b'L';
        g
    };

    #[test]
    fn encodes_libzmq_null_greeting_byte_for_byte() {
        let mut out = BytesMut::new();
        Greeting::new(MechanismName::Null, false).encode(&mut out);
        assert_eq!(&out[..], &LIBZMQ_NULL[..]);
    }

    #[test]
    fn decodes_one_byte_at_a_time() {
        let mut buf = BytesMut::new();
        for (i, b) in LIBZMQ_NULL.iter().enumerate() {
            buf.put_u8(*b);
            let r = Greeting::decode(&mut buf).unwrap();
            if i < 63 {
                assert!(r.is_none());
            } else {
                let g = r.unwrap();
                assert_eq!(g.mechanism, MechanismName::Null);
                assert!(g.is_zmtp31());
                assert!(buf.is_empty());
            }
        }
    }

    #[test]
    fn zmtp30_peer_is_detected() {
        let mut g = LIBZMQ_NULL;
        g[11] = 0;
        let g = Greeting::decode(&mut BytesMut::from(&g[..]))
            .unwrap()
            .unwrap();
        assert!(!g.is_zmtp31());
    }

    #[test]
    fn legacy_peers_are_refused_early() {
        // ZMTP 1.0: length-prefixed identity frame, no signature.
        assert_eq!(
            Greeting::decode(&mut BytesMut::from(&[0x01, 0x00][..])),
            Err(GreetingError::Zmtp10)
        );
        // 0xFF start but the low bit of byte 9 clear: still 1.0.
        let mut sig = [0u8; 10];
        sig[0] = 0xFF;
        assert_eq!(
            Greeting::decode(&mut BytesMut::from(&sig[..])),
            Err(GreetingError::Zmtp10)
        );
        // ZMTP 2.0 announces revision 1 right after the signature.
        let mut v2 = LIBZMQ_NULL[..10].to_vec();
        v2.push(0x01);
        assert_eq!(
            Greeting::decode(&mut BytesMut::from(&v2[..])),
            Err(GreetingError::OldVersion(2, 1))
        );
    }

    #[test]
    fn mechanism_names() {
        for m in [
            MechanismName::Null,
            MechanismName::Plain,
            MechanismName::Curve,
        ] {
            assert_eq!(MechanismName::from_bytes(m.to_bytes()), m);
        }
        let mut raw = [0u8; 20];
        raw[..6].copy_from_slice(b"GSSAPI");
        assert_eq!(MechanismName::from_bytes(raw).display(), "GSSAPI");
    }
}
