//! The SFTP source: SSH on one port with the `sftp` subsystem only, into
//! the same Senders, Pipes and durable spool as FTP. Sessions, limits, bans and the host
//! key are the gateway's ([`crate::gateway`]).
//!
//! * [`proto`]: the pure SFTP version 3 layer (framer, decoder, replies), fuzzed.
//! * [`coverage`]: which bytes of an upload the client wrote (pure).
//! * [`session`]: one subsystem's requests, through [`crate::ops::PipeOps`].
//! * [`errors`]: domain errors to SFTP status replies, in one place.
//! * [`server`]: the SSH transport (russh, on its own tokio thread): listeners,
//!   algorithms, each connection's deadlines; `conn`: one connection's logins,
//!   channels and refusals.

mod conn;
pub mod coverage;
pub mod errors;
pub mod proto;
pub mod server;
pub mod session;
