//! Security mechanisms. Each handshake is a chain of typed states that
//! consume themselves on every step, so a state cannot be reused or skipped.

pub mod null;
