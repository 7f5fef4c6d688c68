//! Server packets of SFTP version 3: each function returns one finished packet, length
//! prefix included.

use super::wire::Writer;

pub const VERSION: u8 = 2;
pub const STATUS: u8 = 101;
pub const HANDLE: u8 = 102;
pub const NAME: u8 = 104;
pub const ATTRS: u8 = 105;
pub const EXTENDED_REPLY: u8 = 201;

/// `SSH_FX_*` status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    Eof = 1,
    NoSuchFile = 2,
    PermissionDenied = 3,
    Failure = 4,
    BadMessage = 5,
    OpUnsupported = 8,
}

/// The largest packet either side may send; the gateway refuses (and disconnects) on a
/// longer one. OpenSSH uses the same figure.
pub const MAX_PACKET: u32 = 256 * 1024;
/// The largest `WRITE` payload advertised in `limits@openssh.com`, leaving room for the
/// header of a packet of [`MAX_PACKET`].
pub const MAX_WRITE: u32 = MAX_PACKET - 1024;
/// Open handles a session may hold at once.
pub const MAX_HANDLES: u32 = 64;

/// Attributes the gateway reports for a catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileAttrs {
    pub size: u64,
    /// `st_mode`: file type and permission bits.
    pub mode: u32,
    pub mtime: u64,
}

impl FileAttrs {
    fn write(&self, w: &mut Writer) {
        // SIZE | PERMISSIONS | ACMODTIME
        w.u32(0x01 | 0x04 | 0x08);
        w.u64(self.size).u32(self.mode);
        let t = u32::try_from(self.mtime).unwrap_or(u32::MAX);
        w.u32(t).u32(t);
    }
}

/// `SSH_FXP_VERSION 3`, advertising the extensions the gateway answers.
pub fn version() -> Vec<u8> {
    let mut w = Writer::packet(VERSION);
    w.u32(3);
    for name in ["posix-rename@openssh.com", "limits@openssh.com"] {
        w.text(name).text("1");
    }
    w.finish()
}

/// `SSH_FXP_STATUS` with an English sentence.
pub fn status(id: u32, code: Status, message: &str) -> Vec<u8> {
    let mut w = Writer::packet(STATUS);
    w.u32(id).u32(code as u32).text(message).text("en");
    w.finish()
}

pub fn handle(id: u32, handle: &[u8]) -> Vec<u8> {
    let mut w = Writer::packet(HANDLE);
    w.u32(id).bytes(handle);
    w.finish()
}

pub fn attrs(id: u32, a: &FileAttrs) -> Vec<u8> {
    let mut w = Writer::packet(ATTRS);
    w.u32(id);
    a.write(&mut w);
    w.finish()
}

/// One entry of an `SSH_FXP_NAME` reply: the name, the `ls -l` style line clients show,
/// and the attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    pub name: String,
    pub long: String,
    pub attrs: FileAttrs,
}

pub fn names(id: u32, entries: &[NameEntry]) -> Vec<u8> {
    let mut w = Writer::packet(NAME);
    w.u32(id)
        .u32(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    for e in entries {
        w.text(&e.name).text(&e.long);
        e.attrs.write(&mut w);
    }
    w.finish()
}

/// The answer to `REALPATH`: one name, attributes empty (as OpenSSH sends).
pub fn realpath(id: u32, path: &str) -> Vec<u8> {
    let mut w = Writer::packet(NAME);
    w.u32(id).u32(1).text(path).text(path).u32(0);
    w.finish()
}

/// The answer to `limits@openssh.com`.
pub fn limits(id: u32) -> Vec<u8> {
    let mut w = Writer::packet(EXTENDED_REPLY);
    w.u32(id);
    w.u64(MAX_PACKET.into());
    w.u64(0); // max-read-length: nothing can be read
    w.u64(MAX_WRITE.into());
    w.u64(MAX_HANDLES.into());
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sftp::proto::wire::Reader;

    #[test]
    fn a_status_carries_code_message_and_language() {
        let p = status(3, Status::PermissionDenied, "no reading");
        let mut r = Reader::new(&p);
        assert_eq!(r.u32().unwrap() as usize, p.len() - 4);
        assert_eq!(r.u8(), Ok(STATUS));
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.text(), Ok("no reading"));
        assert_eq!(r.text(), Ok("en"));
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn a_name_reply_lists_each_entry_with_its_attributes() {
        let e = NameEntry {
            name: "a.jpg".into(),
            long: "-rw-r--r-- 1 ftpgate ftpgate 5 Jan 1 1970 a.jpg".into(),
            attrs: FileAttrs {
                size: 5,
                mode: 0o100_644,
                mtime: 7,
            },
        };
        let p = names(1, &[e.clone(), e]);
        let mut r = Reader::new(&p[5..]);
        assert_eq!((r.u32(), r.u32()), (Ok(1), Ok(2)));
        for _ in 0..2 {
            assert_eq!(r.text(), Ok("a.jpg"));
            r.text().unwrap();
            assert_eq!(r.u32(), Ok(0x0d));
            assert_eq!(r.u64(), Ok(5));
            assert_eq!(r.u32(), Ok(0o100_644));
            assert_eq!((r.u32(), r.u32()), (Ok(7), Ok(7)));
        }
        assert_eq!(r.remaining(), 0);
    }
}
