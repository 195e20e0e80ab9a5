//! bind / connect / unbind / disconnect.

use std::sync::Arc;

use crate::cancel::Cancel;

use super::core::{EndpointEntry, SocketCore};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::transport::{inproc, ipc, tcp};

/// A listening socket made by the application, for
/// [`SocketCore::bind_listener`].
pub(crate) enum Adopted {
    /// A tcp listener (bound and listening).
    Tcp(std::net::TcpListener),
    /// A Unix-domain listener (bound and listening).
    Ipc(std::os::unix::net::UnixListener),
}

impl SocketCore {
    pub fn bind(self: &Arc<Self>, endpoint: &str) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Terminated);
        }
        let ep = Endpoint::parse_bind(endpoint)?;
        let cancel = Cancel::new();
        let bound = match &ep {
            Endpoint::Tcp { host, port, .. } => tcp::bind(self, host, *port, cancel.clone()),
            Endpoint::Inproc { name } => inproc::bind(self, name, cancel.clone()),
            Endpoint::Ipc { path } => ipc::bind(self, path, cancel.clone()),
        };
        self.record_bind(endpoint, bound, cancel).map(drop)
    }

    /// Serves a listening socket the application made (bound, listening):
    /// libzmq's `ZMQ_USE_FD`. Returns its endpoint, which `unbind` takes.
    pub(crate) fn bind_listener(self: &Arc<Self>, listener: Adopted) -> Result<String> {
        if self.is_closed() {
            return Err(Error::Terminated);
        }
        let cancel = Cancel::new();
        let bound = match listener {
            Adopted::Tcp(l) => tcp::serve(self, l, cancel.clone()),
            Adopted::Ipc(l) => ipc::serve_adopted(self, l, cancel.clone()),
        };
        self.record_bind("", bound, cancel)
    }

    /// Records a bind's endpoint (or reports its failure).
    fn record_bind(
        &self,
        given: &str,
        bound: std::io::Result<String>,
        cancel: Cancel,
    ) -> Result<String> {
        let resolved = match bound {
            Ok(r) => r,
            Err(e) => {
                let errno = e.raw_os_error().unwrap_or(0) as u32;
                self.event(crate::monitor::BIND_FAILED, errno, given);
                return Err(e.into());
            }
        };
        let mut st = self.state.lock();
        st.last_endpoint = resolved.clone();
        st.endpoints.push(EndpointEntry {
            resolved: resolved.clone(),
            given: if given.is_empty() {
                resolved.clone()
            } else {
                given.to_string()
            },
            bind: true,
            cancel,
            peer: None,
        });
        Ok(resolved)
    }

    pub fn connect(self: &Arc<Self>, endpoint: &str) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Terminated);
        }
        let ep = Endpoint::parse_connect(endpoint)?;
        let cancel = Cancel::new();
        let peer = match &ep {
            Endpoint::Tcp { host, port, source } => tcp::connect(
                self,
                host.clone(),
                *port,
                source.clone(),
                cancel.clone(),
                endpoint.into(),
            ),
            Endpoint::Inproc { name } => inproc::connect(self, name, cancel.clone()),
            Endpoint::Ipc { path } => ipc::connect(self, path, cancel.clone(), endpoint.into()),
        };
        let mut st = self.state.lock();
        st.last_endpoint = endpoint.to_string();
        st.endpoints.push(EndpointEntry {
            resolved: ep.to_string(),
            given: endpoint.to_string(),
            bind: false,
            cancel,
            peer: Some(peer),
        });
        Ok(())
    }

    /// Stops a bound endpoint and closes the connections accepted through it.
    pub fn unbind(&self, endpoint: &str) -> Result<()> {
        self.remove_endpoint(endpoint, true)
    }

    /// Stops connecting to an endpoint; messages queued for it are dropped.
    pub fn disconnect(&self, endpoint: &str) -> Result<()> {
        self.remove_endpoint(endpoint, false)
    }

    fn remove_endpoint(&self, endpoint: &str, bind: bool) -> Result<()> {
        let entry = {
            let mut st = self.state.lock();
            let pos = st
                .endpoints
                .iter()
                .position(|e| {
                    e.bind == bind && (e.resolved == endpoint || (!bind && e.given == endpoint))
                })
                .ok_or_else(|| Error::EndpointNotFound(endpoint.to_string()))?;
            st.endpoints.remove(pos)
        };
        entry.cancel.cancel();
        if let Some(peer) = entry.peer {
            // As libzmq's zmq_disconnect: the pipe goes, with what it held
            // in both directions.
            self.drop_inbox(peer);
            self.remove_peer(peer);
        }
        Ok(())
    }
}
