//! The FTP server: the pure protocol layer ([`proto`]), and the session driver on top.

pub mod bans;
pub mod core;
pub mod datachan;
pub mod errors;
pub mod handlers;
pub mod limits;
pub mod listing;
pub mod proto;
pub mod server;
pub mod session;
pub mod tls;
