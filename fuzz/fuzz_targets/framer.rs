//! The line framer never yields an over-long line and never buffers without bound,
//! however the input is split.
#![no_main]

use ftpgate::ftp::proto::line::{Frame, LineFramer, MAX_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut f = LineFramer::new();
    // The first byte picks the chunk size, so splits land everywhere.
    let chunk = data.first().map_or(1, |b| usize::from(*b).max(1));
    for part in data.chunks(chunk) {
        f.push(part);
        while let Some(frame) = f.next_frame() {
            if let Frame::Line(l) = frame {
                assert!(l.len() <= MAX_LINE + 1);
                assert!(!l.contains(&b'\n'));
            }
        }
        assert!(f.buffered() <= MAX_LINE + 2 + chunk);
    }
});
