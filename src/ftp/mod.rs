//! The FTP server: the pure protocol layer ([`proto`]), and the session driver on top.

pub mod accept;
pub mod config;
pub mod core;
pub mod datachan;
pub mod errors;
pub mod handlers;
pub mod listing;
pub mod proto;
pub mod session;

pub use config::Config;
