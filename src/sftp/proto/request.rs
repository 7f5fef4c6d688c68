//! Client packets of SFTP version 3 (draft-ietf-secsh-filexfer-02, the version OpenSSH,
//! curl, lftp, rclone and paramiko speak), decoded from one framed packet.
//!
//! Decoding never fails silently: a packet of a known type that is cut short or carries a
//! non-UTF-8 name is [`Decoded::Bad`] with its request id, so the session answers
//! `SSH_FX_BAD_MESSAGE` to that id and carries on; an unknown type is
//! [`Decoded::Unsupported`] (`SSH_FX_OP_UNSUPPORTED`).

use super::wire::{Reader, WireError};

pub const INIT: u8 = 1;
pub const OPEN: u8 = 3;
pub const CLOSE: u8 = 4;
pub const READ: u8 = 5;
pub const WRITE: u8 = 6;
pub const LSTAT: u8 = 7;
pub const FSTAT: u8 = 8;
pub const SETSTAT: u8 = 9;
pub const FSETSTAT: u8 = 10;
pub const OPENDIR: u8 = 11;
pub const READDIR: u8 = 12;
pub const REMOVE: u8 = 13;
pub const MKDIR: u8 = 14;
pub const RMDIR: u8 = 15;
pub const REALPATH: u8 = 16;
pub const STAT: u8 = 17;
pub const RENAME: u8 = 18;
pub const READLINK: u8 = 19;
pub const SYMLINK: u8 = 20;
pub const EXTENDED: u8 = 200;

/// `SSH_FXF_*` open flags.
pub mod open_flags {
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
    pub const EXCL: u32 = 0x20;
}

/// `SSH_FILEXFER_ATTR_*` flags.
mod attr_flags {
    pub const SIZE: u32 = 0x01;
    pub const UIDGID: u32 = 0x02;
    pub const PERMISSIONS: u32 = 0x04;
    pub const ACMODTIME: u32 = 0x08;
    pub const EXTENDED: u32 = 0x8000_0000;
}

/// File attributes as a client sends them; only what the gateway acts on is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub permissions: Option<u32>,
    /// Access and modification time, seconds since the epoch.
    pub times: Option<(u32, u32)>,
}

impl Attrs {
    fn read(r: &mut Reader) -> Result<Attrs, WireError> {
        let flags = r.u32()?;
        let mut a = Attrs::default();
        if flags & attr_flags::SIZE != 0 {
            a.size = Some(r.u64()?);
        }
        if flags & attr_flags::UIDGID != 0 {
            r.u32()?;
            r.u32()?;
        }
        if flags & attr_flags::PERMISSIONS != 0 {
            a.permissions = Some(r.u32()?);
        }
        if flags & attr_flags::ACMODTIME != 0 {
            a.times = Some((r.u32()?, r.u32()?));
        }
        if flags & attr_flags::EXTENDED != 0 {
            for _ in 0..r.u32()? {
                r.bytes()?;
                r.bytes()?;
            }
        }
        Ok(a)
    }
}

/// One decoded client request. Names are borrowed from the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    Open {
        path: &'a str,
        flags: u32,
        attrs: Attrs,
    },
    Close {
        handle: &'a [u8],
    },
    Read {
        handle: &'a [u8],
        offset: u64,
        len: u32,
    },
    Write {
        handle: &'a [u8],
        offset: u64,
        data: &'a [u8],
    },
    Lstat {
        path: &'a str,
    },
    Fstat {
        handle: &'a [u8],
    },
    Setstat {
        path: &'a str,
        attrs: Attrs,
    },
    Fsetstat {
        handle: &'a [u8],
        attrs: Attrs,
    },
    Opendir {
        path: &'a str,
    },
    Readdir {
        handle: &'a [u8],
    },
    Remove {
        path: &'a str,
    },
    Mkdir {
        path: &'a str,
        attrs: Attrs,
    },
    Rmdir {
        path: &'a str,
    },
    Realpath {
        path: &'a str,
    },
    Stat {
        path: &'a str,
    },
    /// `SSH_FXP_RENAME`, and `posix-rename@openssh.com` with `posix` set (the target may
    /// exist and is replaced).
    Rename {
        from: &'a str,
        to: &'a str,
        posix: bool,
    },
    Readlink {
        path: &'a str,
    },
    Symlink,
    /// `limits@openssh.com`: the client asks how large its packets may be.
    Limits,
    /// Any other `SSH_FXP_EXTENDED` request, by name.
    Extended {
        name: &'a str,
    },
}

/// What one packet decodes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// `SSH_FXP_INIT` with the client's version.
    Init {
        version: u32,
    },
    Request {
        id: u32,
        request: Request<'a>,
    },
    /// A packet type this server does not know; answered with `SSH_FX_OP_UNSUPPORTED`.
    Unsupported {
        id: u32,
        kind: u8,
    },
    /// A known type whose fields do not parse; answered with `SSH_FX_BAD_MESSAGE`.
    Bad {
        id: u32,
        why: WireError,
    },
    /// Too short to carry a request id: the session ends.
    Garbage,
}

/// Decodes one packet body (type byte first, length prefix already removed).
pub fn decode(packet: &[u8]) -> Decoded<'_> {
    let mut r = Reader::new(packet);
    let Ok(kind) = r.u8() else {
        return Decoded::Garbage;
    };
    let Ok(id) = r.u32() else {
        return Decoded::Garbage;
    };
    if kind == INIT {
        // The "id" of INIT is the version; extension pairs may follow and are ignored.
        return Decoded::Init { version: id };
    }
    match body(kind, &mut r) {
        Ok(Some(request)) => Decoded::Request { id, request },
        Ok(None) => Decoded::Unsupported { id, kind },
        Err(why) => Decoded::Bad { id, why },
    }
}

fn body<'a>(kind: u8, r: &mut Reader<'a>) -> Result<Option<Request<'a>>, WireError> {
    let req = match kind {
        OPEN => Request::Open {
            path: r.text()?,
            flags: r.u32()?,
            attrs: Attrs::read(r)?,
        },
        CLOSE => Request::Close { handle: r.bytes()? },
        READ => Request::Read {
            handle: r.bytes()?,
            offset: r.u64()?,
            len: r.u32()?,
        },
        WRITE => Request::Write {
            handle: r.bytes()?,
            offset: r.u64()?,
            data: r.bytes()?,
        },
        LSTAT => Request::Lstat { path: r.text()? },
        FSTAT => Request::Fstat { handle: r.bytes()? },
        SETSTAT => Request::Setstat {
            path: r.text()?,
            attrs: Attrs::read(r)?,
        },
        FSETSTAT => Request::Fsetstat {
            handle: r.bytes()?,
            attrs: Attrs::read(r)?,
        },
        OPENDIR => Request::Opendir { path: r.text()? },
        READDIR => Request::Readdir { handle: r.bytes()? },
        REMOVE => Request::Remove { path: r.text()? },
        MKDIR => Request::Mkdir {
            path: r.text()?,
            // Some clients send MKDIR without attributes.
            attrs: if r.remaining() == 0 {
                Attrs::default()
            } else {
                Attrs::read(r)?
            },
        },
        RMDIR => Request::Rmdir { path: r.text()? },
        REALPATH => Request::Realpath { path: r.text()? },
        STAT => Request::Stat { path: r.text()? },
        RENAME => Request::Rename {
            from: r.text()?,
            to: r.text()?,
            posix: false,
        },
        READLINK => Request::Readlink { path: r.text()? },
        SYMLINK => Request::Symlink,
        EXTENDED => extended(r)?,
        _ => return Ok(None),
    };
    Ok(Some(req))
}

fn extended<'a>(r: &mut Reader<'a>) -> Result<Request<'a>, WireError> {
    let name = r.text()?;
    Ok(match name {
        "posix-rename@openssh.com" => Request::Rename {
            from: r.text()?,
            to: r.text()?,
            posix: true,
        },
        "limits@openssh.com" => Request::Limits,
        _ => Request::Extended { name },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sftp::proto::wire::Writer;

    fn body_of(w: Writer) -> Vec<u8> {
        w.finish()[4..].to_vec()
    }

    #[test]
    fn an_open_for_writing_decodes_with_its_flags_and_mtime() {
        let mut w = Writer::packet(OPEN);
        w.u32(9).text("/cam/a.jpg");
        w.u32(open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC);
        w.u32(attr_flags::SIZE | attr_flags::UIDGID | attr_flags::ACMODTIME);
        w.u64(10).u32(0).u32(0).u32(5).u32(6);
        let p = body_of(w);
        let want = Request::Open {
            path: "/cam/a.jpg",
            flags: 0x1a,
            attrs: Attrs {
                size: Some(10),
                permissions: None,
                times: Some((5, 6)),
            },
        };
        assert_eq!(
            decode(&p),
            Decoded::Request {
                id: 9,
                request: want
            }
        );
    }

    #[test]
    fn a_write_borrows_its_data_and_posix_rename_is_a_rename() {
        let mut w = Writer::packet(WRITE);
        w.u32(1).bytes(b"h1").u64(1 << 40).bytes(b"data");
        let p = body_of(w);
        let Decoded::Request { request, .. } = decode(&p) else {
            panic!("not a request")
        };
        assert_eq!(
            request,
            Request::Write {
                handle: b"h1",
                offset: 1 << 40,
                data: b"data"
            }
        );
        let mut w = Writer::packet(EXTENDED);
        w.u32(2)
            .text("posix-rename@openssh.com")
            .text("/a")
            .text("/b");
        let p = body_of(w);
        assert!(matches!(
            decode(&p),
            Decoded::Request {
                id: 2,
                request: Request::Rename {
                    from: "/a",
                    to: "/b",
                    posix: true
                }
            }
        ));
    }

    #[test]
    fn short_unknown_and_non_utf8_packets_are_told_apart() {
        // Cut short inside the path: the id is known, so the client gets BAD_MESSAGE.
        let mut w = Writer::packet(STAT);
        w.u32(4).u32(100);
        let p = body_of(w);
        assert_eq!(
            decode(&p),
            Decoded::Bad {
                id: 4,
                why: WireError::Short
            }
        );
        let mut w = Writer::packet(MKDIR);
        w.u32(5).bytes(&[0xc3, 0x28]);
        let p = body_of(w);
        assert_eq!(
            decode(&p),
            Decoded::Bad {
                id: 5,
                why: WireError::NotUtf8
            }
        );
        let mut w = Writer::packet(99);
        w.u32(6);
        assert_eq!(
            decode(&body_of(w)),
            Decoded::Unsupported { id: 6, kind: 99 }
        );
        assert_eq!(decode(&[]), Decoded::Garbage);
        assert_eq!(decode(&[OPEN, 0, 0]), Decoded::Garbage);
        let mut w = Writer::packet(INIT);
        w.u32(3);
        assert_eq!(decode(&body_of(w)), Decoded::Init { version: 3 });
    }

    #[test]
    fn mkdir_without_attributes_is_accepted() {
        let mut w = Writer::packet(MKDIR);
        w.u32(7).text("d");
        assert!(matches!(
            decode(&body_of(w)),
            Decoded::Request {
                id: 7,
                request: Request::Mkdir { path: "d", .. }
            }
        ));
    }
}
