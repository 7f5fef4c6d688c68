//! Command handlers, grouped by area. Each is a method on [`super::session::Session`]
//! returning the reply; transfer handlers also drive the data connection.

pub mod changes;
pub mod data;
pub mod info;
pub mod list;
pub mod login;
pub mod nav;
pub mod tls;
pub mod upload;
