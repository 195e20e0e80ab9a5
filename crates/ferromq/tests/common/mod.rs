//! Helpers shared by the tcp/ipc test binaries.

use std::time::Duration;

use ferromq::{Context, Socket, SocketType};

/// How long a test waits for anything that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// A socket that gives up on sends and receives after [`WAIT`] and drops
/// what is queued at close.
pub fn sock(ctx: &Context, kind: SocketType) -> Socket {
    let s = ctx.socket(kind).unwrap();
    s.set_rcvtimeo(Some(WAIT));
    s.set_sndtimeo(Some(WAIT));
    s.set_linger(Some(Duration::ZERO));
    s
}
