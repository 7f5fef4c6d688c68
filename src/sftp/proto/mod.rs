//! The pure SFTP protocol layer (version 3): no sockets, no files. The framer, the
//! request decoder and the reply encoder are table-tested here and fuzzed (`fuzz/`).

pub mod framer;
pub mod request;
pub mod response;
pub mod wire;

pub use framer::{FrameError, PacketFramer};
pub use request::{Attrs, Decoded, Request, decode};
pub use response::{FileAttrs, NameEntry, Status};
