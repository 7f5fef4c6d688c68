//! Splits the SFTP byte stream (the SSH channel's data) into packets: a 4-byte length,
//! then that many bytes. A length above [`MAX_PACKET`] or of zero is an error: the peer
//! is broken or hostile and the session ends, memory stays bounded.

use super::response::MAX_PACKET;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a packet of {0} bytes is longer than the {MAX_PACKET} allowed")]
    TooLong(u32),
    #[error("an empty packet")]
    Empty,
}

/// Buffers channel data and hands out whole packets.
#[derive(Debug, Default)]
pub struct PacketFramer {
    buf: Vec<u8>,
    /// Where the next unread packet starts in `buf`.
    start: usize,
}

impl PacketFramer {
    pub fn new() -> PacketFramer {
        PacketFramer::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole packet (type byte first, without its length), `Ok(None)` when more
    /// bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<&[u8]>, FrameError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            self.compact();
            return Ok(None);
        }
        let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if n == 0 {
            return Err(FrameError::Empty);
        }
        if n > MAX_PACKET {
            return Err(FrameError::TooLong(n));
        }
        let end = 4 + n as usize;
        if rest.len() < end {
            self.compact();
            return Ok(None);
        }
        let from = self.start + 4;
        self.start += end;
        Ok(Some(&self.buf[from..from + n as usize]))
    }

    /// Moves an incomplete packet to the front so the buffer never grows past one packet
    /// plus one read.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_split_across_pushes_come_out_whole() {
        let mut f = PacketFramer::new();
        let stream = [0, 0, 0, 2, 9, 8, 0, 0, 0, 1, 7];
        for b in stream {
            f.push(&[b]);
        }
        assert_eq!(f.next_packet(), Ok(Some(&[9u8, 8][..])));
        assert_eq!(f.next_packet(), Ok(Some(&[7u8][..])));
        assert_eq!(f.next_packet(), Ok(None));
        f.push(&[0, 0]);
        assert_eq!(f.next_packet(), Ok(None));
        assert_eq!(f.buffered(), 2);
    }

    #[test]
    fn a_huge_or_empty_length_is_refused_before_buffering_it() {
        let mut f = PacketFramer::new();
        f.push(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(f.next_packet(), Err(FrameError::TooLong(u32::MAX)));
        let mut f = PacketFramer::new();
        f.push(&[0, 0, 0, 0]);
        assert_eq!(f.next_packet(), Err(FrameError::Empty));
    }
}
