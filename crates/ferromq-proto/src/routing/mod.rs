//! Routing rules of the socket types, as plain data structures with no I/O.
//!
//! Peers are named by a [`PeerId`] that the runtime hands out; the structures
//! here only decide *which* peer a message goes to or comes from.

pub mod fq;
pub mod lb;
pub mod reqrep;
pub mod router;
pub mod trie;

pub use fq::FairQueue;
pub use lb::LoadBalancer;
pub use reqrep::{split_envelope, ReqState};
pub use router::RoutingIds;
pub use trie::SubscriptionTrie;

/// Identifies one peer (pipe) of a socket.
pub type PeerId = u64;
