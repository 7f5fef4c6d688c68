//! The SFTP framer and decoder never panic, never buffer more than one packet plus what
//! was pushed, and every packet that decodes to a request can be answered (it carries the
//! id the reply goes to).
#![no_main]

use ftpgate::sftp::proto::response::MAX_PACKET;
use ftpgate::sftp::proto::{Decoded, PacketFramer, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Each packet on its own, as the decoder sees it after framing.
    let _ = decode(data);
    let mut f = PacketFramer::new();
    let chunk = data.first().map_or(1, |b| usize::from(*b).max(1));
    for part in data.chunks(chunk) {
        f.push(part);
        loop {
            match f.next_packet() {
                Ok(Some(p)) => {
                    assert!(p.len() as u32 <= MAX_PACKET);
                    if let Decoded::Request { .. } | Decoded::Bad { .. } = decode(p) {
                        assert!(p.len() >= 5);
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(f.buffered() <= MAX_PACKET as usize + 4 + chunk);
    }
});
