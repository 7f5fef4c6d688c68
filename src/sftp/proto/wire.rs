//! SSH wire types (RFC 4251 §5) as SFTP uses them: big-endian integers and
//! length-prefixed strings. [`Reader`] never reads past its slice and never panics;
//! [`Writer`] builds one packet.

/// The packet ended before a field did, or a string is not UTF-8 where text is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("the packet ends inside a field")]
    Short,
    #[error("a name is not UTF-8")]
    NotUtf8,
}

/// Reads fields from the front of a packet body.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.rest.len() < n {
            return Err(WireError::Short);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, WireError> {
        let hi = u64::from(self.u32()?);
        let lo = u64::from(self.u32()?);
        Ok(hi << 32 | lo)
    }

    /// A length-prefixed byte string, borrowed from the packet.
    pub fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A length-prefixed string that must be UTF-8 (file names, extension names).
    pub fn text(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| WireError::NotUtf8)
    }
}

/// Builds one SFTP packet: the length prefix is filled in by [`Writer::finish`].
#[derive(Debug)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a packet of type `kind`.
    pub fn packet(kind: u8) -> Writer {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&[0, 0, 0, 0, kind]);
        Writer { buf }
    }

    pub fn u32(&mut self, v: u32) -> &mut Writer {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Writer {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn bytes(&mut self, v: &[u8]) -> &mut Writer {
        // Everything we send is far below 4 GiB: names, listings, short messages.
        let n = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(n);
        self.buf.extend_from_slice(&v[..n as usize]);
        self
    }

    pub fn text(&mut self, v: &str) -> &mut Writer {
        self.bytes(v.as_bytes())
    }

    /// The finished packet, length prefix included.
    pub fn finish(mut self) -> Vec<u8> {
        let n = u32::try_from(self.buf.len() - 4).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&n.to_be_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_short_input_is_an_error_not_a_panic() {
        let mut w = Writer::packet(7);
        w.u32(1).u64(u64::MAX - 1).text("a/b").bytes(&[0xff]);
        let p = w.finish();
        assert_eq!(&p[..4], &((p.len() - 4) as u32).to_be_bytes());
        assert_eq!(p[4], 7);
        let mut r = Reader::new(&p[5..]);
        assert_eq!(r.u32(), Ok(1));
        assert_eq!(r.u64(), Ok(u64::MAX - 1));
        assert_eq!(r.text(), Ok("a/b"));
        assert_eq!(r.text(), Err(WireError::NotUtf8));
        assert_eq!(r.remaining(), 0);
        assert_eq!(r.u8(), Err(WireError::Short));
        // A string claiming more bytes than the packet has.
        let mut r = Reader::new(&[0, 0, 0, 9, b'x']);
        assert_eq!(r.bytes(), Err(WireError::Short));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.bytes(), Err(WireError::Short));
    }
}
