//! Sans-IO ZMTP 3.x for [ferromq](https://docs.rs/ferromq).
//!
//! This crate holds everything about ZeroMQ that does not touch a socket or
//! a clock: the wire formats, the handshake state machines and the routing
//! rules of each socket type. A runtime feeds a [`Connection`] the bytes it
//! reads and writes out the bytes it is given; time comes in as a parameter.
//!
//! ```
//! use std::time::Instant;
//! use bytes::BytesMut;
//! use ferromq_proto::{Config, Connection, Event, Message, SocketType};
//!
//! let now = Instant::now();
//! let mut a = Connection::new(Config::new(SocketType::Push), now);
//! let mut b = Connection::new(Config::new(SocketType::Pull), now);
//! // Shuttle bytes between the two until both are handshaken.
//! fn pump(from: &mut Connection, to: &mut Connection, now: Instant) {
//!     let mut wire = BytesMut::new();
//!     let mut slices = [std::io::IoSlice::new(&[]); 8];
//!     let n = from.transmit_slices(&mut slices);
//!     for s in &slices[..n] { wire.extend_from_slice(s); }
//!     from.advance_transmit(wire.len());
//!     to.handle_input(&mut wire, now).unwrap();
//! }
//! for _ in 0..3 { pump(&mut a, &mut b, now); pump(&mut b, &mut a, now); }
//! assert!(a.is_active() && b.is_active());
//! a.send_message(&Message::from("hello"));
//! pump(&mut a, &mut b, now);
//! assert!(matches!(b.poll_event(), Some(Event::Handshaken(_))));
//! assert_eq!(b.poll_event(), Some(Event::Message(Message::from("hello"))));
//! ```
//!
//! ```text
//!   bytes in ──► Greeting ──► Handshake (NULL: READY ⇄ READY) ──► Active
//!                                                                  │
//!                     events: Handshaken, Message, Subscribe, Cancel
//!   bytes out ◄── greeting, READY, frames, PING/PONG (batched, large frames by reference)
//! ```
#![forbid(unsafe_code)]

pub mod connection;
mod frame;
pub mod mechanism;
pub mod message;
pub mod routing;
pub mod socket_type;
pub mod wire;
pub mod z85;

pub use connection::{Config, Connection, ConnectionError, Event, PeerInfo, Taken};
pub use message::{Frame, Message};
pub use socket_type::SocketType;
