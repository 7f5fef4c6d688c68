//! Any line parses or fails cleanly, and no reply built from it carries a raw CR or LF.
#![no_main]

use ftpgate::ftp::proto::{Command, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = match Command::parse(data) {
        Ok(cmd) => format!("{cmd:?}"),
        Err(e) => {
            assert!((500..600).contains(&e.code()));
            e.to_string()
        }
    };
    let wire = Reply::new(550, String::from_utf8_lossy(data).into_owned() + &text).encode();
    assert_eq!(wire.iter().filter(|b| **b == b'\n').count(), 1);
    assert_eq!(wire.iter().filter(|b| **b == b'\r').count(), 1);
});
