//! # ftpgate
//!
//! An ingestion gateway for industrial edge boxes. Devices upload over plain FTP, explicit
//! FTPS or SFTP; every upload is written durably to a spool before it is acknowledged, and
//! a forwarder delivers it to its Pipe's destination (S3 or a local directory). SFTP is the
//! `sftp` feature (on by default); without it the build is FTP and FTPS only, for small
//! routers.
//!
//! ## Layout
//!
//! * [`state`]: the state directory and the paths inside it.
//! * [`store`]: the redb database: Senders, Pipes, Grants, partial uploads, and each
//!   Pipe's namespace ([`store::namespace`]: catalog and outbox, one concept with its
//!   invariants); every table in [`store::schema`], reads through [`store::View`].
//! * [`spool`]: upload bodies on disk, the group commit, start-up recovery.
//! * [`forward`]: the forwarder and the destinations (S3, directories).
//! * [`gateway`]: the protocol-independent core: the session table, limits, bans, the
//!   key material, listing lines.
//! * [`ftp`]: the FTP/FTPS source: protocol layer, sessions, data channels.
//! * `sftp` (feature `sftp`): the SFTP source: SSH transport, SFTP protocol, sessions.
//! * [`ops`]: the namespace operations both sources call.
//! * [`vfs`]: path normalisation and confinement; [`metrics`]: Prometheus text;
//!   [`web`]: the HTTP listener (the status page and `/metrics`).
//! * [`auth`]: argon2id password hashing, the verified-credential cache, login resolution.
//! * [`admin`]: the admin operations and the control socket. One function,
//!   [`admin::execute`], carries out every operation, whether the daemon received it over
//!   `control.sock` or the CLI opened the database itself.
//! * [`events`]: logins, bans and watched conditions recorded as events in batches (the
//!   event ring and per-Sender activity themselves are in [`store::events`] and
//!   [`store::activity`]); [`localtime`]: the gateway's local day.
//! * [`fleet`]: declarative provisioning (`export` / `apply`).
//! * [`cert`]: the server certificate (rcgen, ECDSA P-256).
//! * [`checksum`]: the body checksum (CRC32C; MD5 for ops queued by older versions).
//! * [`daemon`]: `ftpgate serve`: owns the database and answers the control socket.
//! * [`cli`]: argument parsing and output; `main.rs` only calls [`cli::main`].
//! * [`secret`]: passwords hashes and keys that `Debug` never shows.
//! * [`clock`]: the wall clock, in one place (tests can move it).
//! * [`support`]: hex, random names and directory fsync, written once.
//! * [`repeated`]: identical errors logged once with a count.
//! * [`names`], [`net`], [`duration`], [`calendar`]: pure validation of names, ids, CIDR
//!   lists and durations; calendar dates.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod backoff;
pub mod calendar;
pub mod cert;
pub mod checksum;
pub mod cli;
pub mod clock;
pub mod daemon;
pub mod duration;
pub mod events;
pub mod fleet;
pub mod forward;
pub mod ftp;
pub mod gateway;
pub mod hooks;
pub mod localtime;
pub mod metrics;
pub mod names;
pub mod net;
pub mod ops;
pub mod repeated;
pub mod secret;
#[cfg(feature = "sftp")]
pub mod sftp;
pub mod spool;
pub mod state;
pub mod store;
pub mod support;
pub mod vfs;
pub mod web;
