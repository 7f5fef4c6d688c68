//! The pure FTP protocol layer: no sockets, no clocks, no files. Everything here is
//! table-tested and fuzzed (`fuzz/`).

pub mod addr;
pub mod command;
pub mod line;
pub mod reply;

pub use command::{Command, ParseError, TransferType};
pub use line::{Frame, LineFramer};
pub use reply::Reply;
