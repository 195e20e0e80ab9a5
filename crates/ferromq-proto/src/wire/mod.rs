//! Wire formats of ZMTP 3.x: greeting, frames, commands and metadata.
//!
//! Every decoder here works on bytes as they arrive: it returns `Ok(None)`
//! when it needs more, never panics on any input, and checks every size read
//! off the wire before allocating for it.

pub mod command;
pub mod frame;
pub mod greeting;
pub mod metadata;

pub use command::{Command, CommandError};
pub use frame::{Frame, FrameDecoder, FrameError};
pub use greeting::{Greeting, GreetingError, MechanismName, GREETING_LEN};
pub use metadata::{Metadata, MetadataError, SharedMetadata};
