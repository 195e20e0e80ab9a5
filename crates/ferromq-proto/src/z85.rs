//! Z85 (RFC 32): 4 bytes ⇄ 5 printable characters, used for CURVE keys.

/// The 85-character alphabet, in value order.
const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Why a Z85 conversion failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Z85Error {
    /// Encoding needs a multiple of 4 bytes, decoding a multiple of 5 characters.
    #[error("length {0} is not a multiple of the Z85 block size")]
    Length(usize),
    /// A character outside the alphabet, or a block whose value overflows 32 bits.
    #[error("invalid Z85 input at offset {0}")]
    Invalid(usize),
}

/// Encodes `data` (length a multiple of 4).
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if data.len() % 4 != 0 {
        return Err(Z85Error::Length(data.len()));
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for block in data.chunks_exact(4) {
        let mut v = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
        let mut chars = [0u8; 5];
        for c in chars.iter_mut().rev() {
            *c = ALPHABET[(v % 85) as usize];
            v /= 85;
        }
        out.extend(chars.iter().map(|&c| c as char));
    }
    Ok(out)
}

/// Decodes `text` (length a multiple of 5).
pub fn decode(text: &[u8]) -> Result<Vec<u8>, Z85Error> {
    if text.len() % 5 != 0 {
        return Err(Z85Error::Length(text.len()));
    }
    let mut out = Vec::with_capacity(text.len() / 5 * 4);
    for (i, block) in text.chunks_exact(5).enumerate() {
        let mut v: u64 = 0;
        for (j, &c) in block.iter().enumerate() {
            let d = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or(Z85Error::Invalid(i * 5 + j))?;
            v = v * 85 + d as u64;
        }
        let v = u32::try_from(v).map_err(|_| Z85Error::Invalid(i * 5))?;
        out.extend_from_slice(&v.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc32_vector() {
        let raw = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&raw).unwrap(), "HelloWorld");
        assert_eq!(decode(b"HelloWorld").unwrap(), raw);
    }

    #[test]
    fn errors() {
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::Length(3)));
        assert_eq!(decode(b"abcd"), Err(Z85Error::Length(4)));
        assert_eq!(decode(b"abc d"), Err(Z85Error::Invalid(3)));
        // "%%%%%" is 85^5-1 > u32::MAX.
        assert_eq!(decode(b"%%%%%"), Err(Z85Error::Invalid(0)));
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..16).prop_map(|mut v| { v.truncate(v.len() / 4 * 4); v })) {
            prop_assert_eq!(decode(encode(&data).unwrap().as_bytes()).unwrap(), data);
        }
    }
}
