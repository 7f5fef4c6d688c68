//! The control-connection line framer (pure: bytes in, lines out).
//!
//! * A line ends at LF; a CR before it is dropped (CRLF per RFC 959, a lone LF tolerated).
//! * Telnet IAC sequences are handled as RFC 854 asks of a server that negotiates nothing:
//!   `IAC IAC` is a literal 0xFF, `IAC WILL/WONT/DO/DONT opt` and other `IAC x` pairs
//!   (IP, DM, ...) are removed.
//! * A line longer than [`MAX_LINE`] is dropped up to its end and reported once as
//!   [`Frame::TooLong`], so the session answers `500` and resynchronises at the next line.
//!   Memory stays bounded whatever the peer sends.

/// Longest accepted command line, without its line ending.
pub const MAX_LINE: usize = 2048;

const IAC: u8 = 255;
const WILL: u8 = 251;
const DONT: u8 = 254;

/// What [`LineFramer::next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Line(Vec<u8>),
    TooLong,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Telnet {
    #[default]
    Data,
    /// Saw IAC.
    Iac,
    /// Saw IAC WILL/WONT/DO/DONT: the next byte is the option.
    Option,
}

/// Turns a byte stream into command lines.
#[derive(Debug, Default)]
pub struct LineFramer {
    /// Unprocessed input.
    input: Vec<u8>,
    /// The current line, Telnet already removed.
    line: Vec<u8>,
    telnet: Telnet,
    /// Dropping the rest of an over-long line.
    skipping: bool,
}

impl LineFramer {
    pub fn new() -> LineFramer {
        LineFramer::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a line.
    pub fn buffered(&self) -> usize {
        self.input.len() + self.line.len()
    }

    /// Whether part of a line has arrived (a byte that is not yet part of a returned
    /// line): the session gives a started line only so long to be finished.
    pub fn mid_line(&self) -> bool {
        !self.input.is_empty()
            || !self.line.is_empty()
            || self.skipping
            || self.telnet != Telnet::Data
    }

    /// Forgets everything not yet returned (after `AUTH TLS`: plaintext that followed it
    /// must never be executed).
    pub fn discard(&mut self) {
        *self = LineFramer::default();
    }

    /// The next complete line, if any.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let mut consumed = 0;
        let mut result = None;
        while consumed < self.input.len() {
            let b = self.input[consumed];
            consumed += 1;
            match self.telnet {
                Telnet::Iac => {
                    self.telnet = match b {
                        IAC => {
                            self.keep(IAC);
                            Telnet::Data
                        }
                        WILL..=DONT => Telnet::Option,
                        _ => Telnet::Data,
                    };
                    continue;
                }
                Telnet::Option => {
                    self.telnet = Telnet::Data;
                    continue;
                }
                Telnet::Data if b == IAC => {
                    self.telnet = Telnet::Iac;
                    continue;
                }
                Telnet::Data => {}
            }
            if b == b'\n' {
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                result = Some(if self.skipping {
                    self.skipping = false;
                    self.line.clear();
                    Frame::TooLong
                } else {
                    Frame::Line(std::mem::take(&mut self.line))
                });
                break;
            }
            self.keep(b);
        }
        self.input.drain(..consumed);
        result
    }

    fn keep(&mut self, b: u8) {
        if self.skipping {
            return;
        }
        // One extra byte for a CR that may precede the LF.
        if self.line.len() > MAX_LINE {
            self.skipping = true;
            self.line.clear();
            return;
        }
        self.line.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Frame> {
        let mut f = LineFramer::new();
        f.push(input);
        std::iter::from_fn(|| f.next_frame()).collect()
    }

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn framing() {
        let cases: &[(&[u8], Vec<Frame>)] = &[
            (
                b"USER a\r\nPASS b\r\n",
                vec![line("USER a"), line("PASS b")],
            ),
            (b"NOOP\n", vec![line("NOOP")]),
            (b"NOOP", vec![]),
            (b"\r\n", vec![line("")]),
            (b"A\rB\r\n", vec![line("A\rB")]),
            // Telnet: IAC IP IAC DM before ABOR (what clients send for urgent ABOR).
            (b"\xff\xf4\xff\xf2ABOR\r\n", vec![line("ABOR")]),
            (b"\xff\xfb\x01NOOP\r\n", vec![line("NOOP")]),
            (
                b"STOR a\xff\xffb\r\n",
                vec![Frame::Line(b"STOR a\xffb".to_vec())],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(&lines(input), want, "{input:?}");
        }
    }

    #[test]
    fn split_across_pushes() {
        let mut f = LineFramer::new();
        f.push(b"US");
        assert_eq!(f.next_frame(), None);
        f.push(b"ER x\r");
        assert_eq!(f.next_frame(), None);
        f.push(b"\n\xff");
        assert_eq!(f.next_frame(), Some(line("USER x")));
        f.push(b"\xffA\n");
        assert_eq!(f.next_frame(), Some(Frame::Line(b"\xffA".to_vec())));
    }

    #[test]
    fn over_long_lines_are_reported_once_and_resynchronised() {
        let mut input = vec![b'A'; 1_000_000];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(lines(&input), vec![Frame::TooLong, line("NOOP")]);
        let exact = vec![b'B'; MAX_LINE];
        let mut with_end = exact.clone();
        with_end.extend_from_slice(b"\r\n");
        assert_eq!(lines(&with_end), vec![Frame::Line(exact)]);
        let mut over = vec![b'B'; MAX_LINE + 2];
        over.push(b'\n');
        assert_eq!(lines(&over), vec![Frame::TooLong]);
    }

    #[test]
    fn memory_stays_bounded_while_a_line_never_ends() {
        let mut f = LineFramer::new();
        for _ in 0..1000 {
            f.push(&[b'x'; 4096]);
            assert_eq!(f.next_frame(), None);
            assert!(f.buffered() <= MAX_LINE + 1);
        }
    }

    #[test]
    fn mid_line_tells_a_started_line_from_a_finished_one() {
        let mut f = LineFramer::new();
        assert!(!f.mid_line());
        f.push(b"NO");
        assert_eq!(f.next_frame(), None);
        assert!(f.mid_line());
        f.push(b"OP\r\nQU");
        assert_eq!(f.next_frame(), Some(line("NOOP")));
        assert!(f.mid_line(), "the next line has started");
        f.push(b"IT\r\n");
        assert_eq!(f.next_frame(), Some(line("QUIT")));
        assert!(!f.mid_line());
        f.push(b"\xff");
        assert_eq!(f.next_frame(), None);
        assert!(f.mid_line(), "a Telnet command is not finished either");
    }

    #[test]
    fn discard_forgets_pipelined_plaintext() {
        let mut f = LineFramer::new();
        f.push(b"AUTH TLS\r\nUSER evil\r\n");
        assert_eq!(f.next_frame(), Some(line("AUTH TLS")));
        f.discard();
        assert_eq!(f.next_frame(), None);
    }
}
