//! The socket core shared by the blocking and async APIs.

pub(crate) mod core;
mod endpoints;
pub(crate) mod outq;
pub(crate) mod pubsub;
pub(crate) mod readiness;
pub(crate) use endpoints::Adopted;
