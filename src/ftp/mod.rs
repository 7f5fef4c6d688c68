//! The FTP server: the pure protocol layer ([`proto`]), and the session driver on top.

pub mod proto;
