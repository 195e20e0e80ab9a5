//! ZMTP 3.x frames: `flags(1) size(1 | 8) body(size)`.
//!
//! Flag bits: 0 MORE, 1 LONG (8-byte size), 2 COMMAND; bits 3–7 are reserved,
//! sent as zero and ignored on receipt (as libzmq does).

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Flag bit: more frames of this message follow.
pub const FLAG_MORE: u8 = 0x01;
/// Flag bit: the size field is 8 bytes.
pub const FLAG_LONG: u8 = 0x02;
/// Flag bit: this frame is a command.
pub const FLAG_COMMAND: u8 = 0x04;

/// One decoded frame. The body is a slice of the receive buffer (no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// More frames of the same message follow.
    pub more: bool,
    /// The frame is a command, not message data.
    pub command: bool,
    /// The payload.
    pub body: Bytes,
}

/// One decoded frame with its body as a message frame (see
/// [`FrameDecoder::decode_part`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// More frames of the same message follow.
    pub more: bool,
    /// The frame is a command, not message data.
    pub command: bool,
    /// The payload.
    pub body: crate::message::Frame,
}

/// A frame the decoder refused. The connection must be closed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The announced size is larger than `max_msg_size`.
    #[error("frame of {size} bytes exceeds the maximum message size of {max}")]
    TooLarge {
        /// Size announced by the peer.
        size: u64,
        /// Configured limit.
        max: u64,
    },
    /// The announced size cannot be addressed on this machine (over `isize::MAX`).
    #[error("frame of {0} bytes cannot be held in memory")]
    Unaddressable(u64),
    /// A command frame had the MORE flag set.
    #[error("command frame with the MORE flag")]
    MoreOnCommand,
}

/// Incremental frame decoder.
///
/// Follows tokio-util's `Decoder` contract: [`FrameDecoder::decode`] returns
/// `Ok(None)` when `buf` does not yet hold a whole frame, and the result of
/// feeding bytes one at a time is the same as feeding them all at once.
#[derive(Clone, Debug, Default)]
pub struct FrameDecoder {
    max_size: Option<u64>,
}

impl FrameDecoder {
    /// A decoder that refuses frames larger than `max_size` bytes (`None`: no limit
    /// beyond what memory can address).
    pub fn new(max_size: Option<u64>) -> Self {
        FrameDecoder { max_size }
    }

    /// Decodes the next frame from the front of `buf`.
    ///
    /// Sizes are checked before anything is allocated; the decoder itself never
    /// allocates, and [`FrameDecoder::bytes_needed`] tells the caller how much
    /// more to read, so a peer announcing 2^62 bytes costs nothing until it
    /// really sends them.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some((header_len, size, flags)) = self.whole(buf)? else {
            return Ok(None);
        };
        buf.advance(header_len);
        Ok(Some(Frame {
            more: flags & FLAG_MORE != 0,
            command: flags & FLAG_COMMAND != 0,
            body: buf.split_to(size).freeze(),
        }))
    }

    /// As [`decode`](Self::decode), with the body as a message frame: a
    /// data frame of up to
    /// [`INLINE_FRAME_BYTES`](crate::message::INLINE_FRAME_BYTES) is copied
    /// inline, keeping no hold on `buf`'s memory (and costing no reference
    /// count on it); larger ones and commands are sliced out of `buf` as
    /// `decode` does.
    pub fn decode_part(&self, buf: &mut BytesMut) -> Result<Option<Part>, FrameError> {
        let Some((header_len, size, flags)) = self.whole(buf)? else {
            return Ok(None);
        };
        let command = flags & FLAG_COMMAND != 0;
        let body = if !command && size <= crate::message::INLINE_FRAME_BYTES {
            let f = crate::message::Frame::copy_from_slice(&buf[header_len..header_len + size]);
            buf.advance(header_len + size);
            f
        } else {
            buf.advance(header_len);
            crate::message::Frame::shared(buf.split_to(size).freeze())
        };
        Ok(Some(Part {
            more: flags & FLAG_MORE != 0,
            command,
            body,
        }))
    }

    /// The header length, body size and flags of the frame at the front of
    /// `buf`, once `buf` holds all of it.
    fn whole(&self, buf: &[u8]) -> Result<Option<(usize, usize, u8)>, FrameError> {
        let Some((header_len, size, flags)) = self.header(buf)? else {
            return Ok(None);
        };
        // `size` fits isize here (checked in `header`), so this cannot overflow.
        let size = size as usize;
        Ok((buf.len() >= header_len + size).then_some((header_len, size, flags)))
    }

    /// How many bytes `buf` lacks for the next whole frame (0 if it has one or
    /// the header is not complete yet; errors are reported by `decode`).
    pub fn bytes_needed(&self, buf: &[u8]) -> usize {
        match self.header(buf) {
            Ok(Some((h, size, _))) => (h + size as usize).saturating_sub(buf.len()),
            _ => 0,
        }
    }

    fn header(&self, buf: &[u8]) -> Result<Option<(usize, u64, u8)>, FrameError> {
        let Some(&flags) = buf.first() else {
            return Ok(None);
        };
        let (header_len, size) = if flags & FLAG_LONG != 0 {
            if buf.len() < 9 {
                return Ok(None);
            }
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&buf[1..9]);
            (9, u64::from_be_bytes(raw))
        } else {
            if buf.len() < 2 {
                return Ok(None);
            }
            (2, u64::from(buf[1]))
        };
        if flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0 {
            return Err(FrameError::MoreOnCommand);
        }
        if let Some(max) = self.max_size {
            if size > max {
                return Err(FrameError::TooLarge { size, max });
            }
        }
        if size > (isize::MAX as u64) - 9 {
            return Err(FrameError::Unaddressable(size));
        }
        Ok(Some((header_len, size, flags)))
    }
}

/// Appends a frame header for a body of `len` bytes. The short form is used
/// up to 255 bytes, as libzmq does.
pub fn encode_header(out: &mut BytesMut, more: bool, command: bool, len: usize) {
    let (h, n) = header(more, command, len);
    out.put_slice(&h[..n]);
}

/// A frame header for a body of `len` bytes, as [`encode_header`] appends
/// it: the bytes, and how many of them are used (2 or 9).
///
/// ```
/// use ferromq_proto::wire::frame::header;
/// let (h, n) = header(false, false, 300);
/// assert_eq!(&h[..n], &[0x02, 0, 0, 0, 0, 0, 0, 0x01, 0x2c]);
/// let (h, n) = header(true, false, 5);
/// assert_eq!(&h[..n], &[0x01, 5]);
/// ```
pub fn header(more: bool, command: bool, len: usize) -> ([u8; 9], usize) {
    let mut flags = 0;
    if more {
        flags |= FLAG_MORE;
    }
    if command {
        flags |= FLAG_COMMAND;
    }
    let mut h = [0u8; 9];
    if len > 255 {
        h[0] = flags | FLAG_LONG;
        h[1..].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 9)
    } else {
        h[0] = flags;
        h[1] = len as u8;
        (h, 2)
    }
}

/// Appends a whole frame (header and body) to `out`.
pub fn encode_frame(out: &mut BytesMut, more: bool, command: bool, body: &[u8]) {
    out.reserve(9 + body.len());
    encode_header(out, more, command, body.len());
    out.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(more: bool, command: bool, body: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_frame(&mut b, more, command, body);
        b.to_vec()
    }

    /// `decode_part` reads what `decode` reads; small data bodies come out
    /// inline, larger ones and commands as slices of the buffer.
    #[test]
    fn parts_match_frames_and_only_small_data_is_inline() {
        let mut wire = BytesMut::new();
        encode_frame(&mut wire, true, false, b"tiny");
        encode_frame(&mut wire, false, false, &[7u8; 100]);
        encode_frame(&mut wire, false, true, b"\x04PING\x00\x00");
        let d = FrameDecoder::new(None);
        let mut a = wire.clone();
        let mut b = wire;
        let mut kinds = Vec::new();
        while let Some(f) = d.decode(&mut a).unwrap() {
            let p = d
                .decode_part(&mut b)
                .unwrap()
                .expect("as many parts as frames");
            assert_eq!(
                (p.more, p.command, &p.body[..]),
                (f.more, f.command, &f.body[..])
            );
            kinds.push(p.body.is_inline());
        }
        assert_eq!(kinds, [true, false, false]);
        assert!(b.is_empty());
        // Not whole yet: nothing taken.
        let mut part = BytesMut::from(&b"\x00\x05hel"[..]);
        assert_eq!(d.decode_part(&mut part).unwrap(), None);
        assert_eq!(part.len(), 5);
    }

    #[test]
    fn reference_vectors() {
        assert_eq!(enc(false, false, b"hello"), b"\x00\x05hello");
        let mut two = enc(true, false, b"");
        two.extend(enc(false, false, b"hi"));
        assert_eq!(two, b"\x01\x00\x00\x02hi");
        let long = enc(false, false, &[7u8; 300]);
        assert_eq!(&long[..9], &[0x02, 0, 0, 0, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(long.len(), 309);
        assert_eq!(
            enc(false, true, b"\x04PING\x00\x00"),
            b"\x04\x07\x04PING\x00\x00"
        );
        // 255 is still short; 256 is long.
        assert_eq!(enc(false, false, &[0; 255])[0], 0x00);
        assert_eq!(enc(false, false, &[0; 256])[0], 0x02);
    }

    #[test]
    fn accepts_long_form_for_small_sizes_and_ignores_reserved_bits() {
        let d = FrameDecoder::default();
        let mut b = BytesMut::from(&b"\xf3\x00\x00\x00\x00\x00\x00\x00\x02ab"[..]);
        let f = d.decode(&mut b).unwrap().unwrap();
        assert!(f.more);
        assert!(!f.command);
        assert_eq!(&f.body[..], b"ab");
    }

    #[test]
    fn huge_sizes_are_refused_before_allocation() {
        let d = FrameDecoder::new(Some(1024));
        let mut b = BytesMut::from(&b"\x02\x00\x00\x00\x00\x00\x00\x04\x01"[..]);
        assert_eq!(
            d.decode(&mut b),
            Err(FrameError::TooLarge {
                size: 1025,
                max: 1024
            })
        );
        let unlimited = FrameDecoder::default();
        let mut b = BytesMut::from(&b"\x02\xff\xff\xff\xff\xff\xff\xff\xff"[..]);
        assert!(matches!(
            unlimited.decode(&mut b),
            Err(FrameError::Unaddressable(_))
        ));
        // 2^62 is addressable: the decoder waits, holding nothing.
        let mut b = BytesMut::from(&b"\x02\x40\x00\x00\x00\x00\x00\x00\x00"[..]);
        assert_eq!(unlimited.decode(&mut b), Ok(None));
        assert_eq!(unlimited.bytes_needed(&b), 1 << 62);
    }

    #[test]
    fn more_on_command_is_an_error() {
        let d = FrameDecoder::default();
        assert_eq!(
            d.decode(&mut BytesMut::from(&b"\x05\x00"[..])),
            Err(FrameError::MoreOnCommand)
        );
    }

    proptest! {
        #[test]
        fn round_trip_any_chunking(
            frames in proptest::collection::vec((any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..600)), 1..8),
            chunk in 1usize..64,
        ) {
            let mut wire = Vec::new();
            for (more, command, body) in &frames {
                wire.extend(enc(*more && !*command, *command, body));
            }
            let d = FrameDecoder::default();
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for piece in wire.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(f) = d.decode(&mut buf).unwrap() {
                    out.push(f);
                }
            }
            prop_assert!(buf.is_empty());
            prop_assert_eq!(out.len(), frames.len());
            for (f, (more, command, body)) in out.iter().zip(&frames) {
                prop_assert_eq!(f.more, *more && !*command);
                prop_assert_eq!(f.command, *command);
                prop_assert_eq!(&f.body[..], &body[..]);
            }
        }

        #[test]
        fn never_panics_on_garbage(data in proptest::collection::vec(any::<u8>(), 0..64), max in proptest::option::of(0u64..1000)) {
            let d = FrameDecoder::new(max);
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = d.decode(&mut buf) {}
        }
    }
}
