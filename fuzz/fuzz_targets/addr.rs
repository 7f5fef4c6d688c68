//! PORT/EPRT parsing never panics, and an accepted active target is always the peer's
//! own address on an unprivileged port.
#![no_main]

use ftpgate::ftp::proto::addr::{check_active, parse_eprt, parse_port};
use ftpgate::net::canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let peer = "127.0.0.1".parse().unwrap();
    for parsed in [parse_port(s), parse_eprt(s)] {
        if let Ok(target) = parsed
            && check_active(target, peer).is_ok()
        {
            assert_eq!(canonical(target.ip()), peer);
            assert!(target.port() >= 1024);
        }
    }
});
