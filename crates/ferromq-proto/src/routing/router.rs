//! ROUTER routing ids.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::PeerId;

/// Maps routing ids to peers and makes ids for peers that announce none.
///
/// Generated ids are 5 bytes, `0x00` then a big-endian counter that starts at
/// a random value (libzmq's scheme); announced ids may not start with `0x00`,
/// so the two never collide.
#[derive(Clone, Debug)]
pub struct RoutingIds {
    by_id: HashMap<Bytes, PeerId>,
    next_auto: u32,
}

/// Why a routing id could not be given to a peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoutingIdError {
    /// Another live peer already has this id (and handover is off).
    #[error("routing id already in use")]
    Duplicate,
    /// Announced ids must not start with a zero byte (reserved for generated ids).
    #[error("routing id starts with a zero byte")]
    Reserved,
}

impl RoutingIds {
    /// An empty table whose generated ids start at `seed`.
    pub fn new(seed: u32) -> Self {
        RoutingIds {
            by_id: HashMap::new(),
            next_auto: seed,
        }
    }

    /// Gives `peer` its routing id: `announced` if non-empty, else a generated one.
    ///
    /// With `handover`, an announced id already in use moves to the new peer
    /// and the old peer is returned so the caller can drop its mapping.
    pub fn assign(
        &mut self,
        peer: PeerId,
        announced: &Bytes,
        handover: bool,
    ) -> Result<(Bytes, Option<PeerId>), RoutingIdError> {
        if announced.is_empty() {
            loop {
                let mut id = BytesMut::with_capacity(5);
                id.put_u8(0);
                id.put_u32(self.next_auto);
                self.next_auto = self.next_auto.wrapping_add(1);
                let id = id.freeze();
                if !self.by_id.contains_key(&id) {
                    self.by_id.insert(id.clone(), peer);
                    return Ok((id, None));
                }
            }
        }
        if announced[0] == 0 {
            return Err(RoutingIdError::Reserved);
        }
        match self.by_id.get(announced) {
            Some(_) if !handover => Err(RoutingIdError::Duplicate),
            _ => {
                let old = self.by_id.insert(announced.clone(), peer);
                Ok((announced.clone(), old))
            }
        }
    }

    /// The peer with routing id `id`.
    pub fn get(&self, id: &[u8]) -> Option<PeerId> {
        self.by_id.get(id).copied()
    }

    /// Forgets `id` if it still names `peer`.
    pub fn remove(&mut self, id: &[u8], peer: PeerId) {
        if self.by_id.get(id) == Some(&peer) {
            self.by_id.remove(id);
        }
    }

    /// Number of ids in use.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when no ids are in use.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_and_announced_ids() {
        let mut t = RoutingIds::new(u32::MAX);
        let (a, _) = t.assign(1, &Bytes::new(), false).unwrap();
        assert_eq!(&a[..], &[0, 0xff, 0xff, 0xff, 0xff]);
        let (b, _) = t.assign(2, &Bytes::new(), false).unwrap();
        assert_eq!(&b[..], &[0, 0, 0, 0, 0]);
        let name = Bytes::from_static(b"worker");
        assert_eq!(t.assign(3, &name, false).unwrap(), (name.clone(), None));
        assert_eq!(t.assign(4, &name, false), Err(RoutingIdError::Duplicate));
        assert_eq!(t.assign(4, &name, true).unwrap(), (name.clone(), Some(3)));
        assert_eq!(t.get(b"worker"), Some(4));
        t.remove(b"worker", 3);
        assert_eq!(t.get(b"worker"), Some(4));
        t.remove(b"worker", 4);
        assert_eq!(t.get(b"worker"), None);
        assert_eq!(
            t.assign(5, &Bytes::from_static(b"\0x"), false),
            Err(RoutingIdError::Reserved)
        );
    }
}
