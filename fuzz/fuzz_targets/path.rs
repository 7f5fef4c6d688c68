//! Path resolution stays inside the namespace: the result is absolute, normalised,
//! within the limits, and free of `.`/`..` segments and control characters.
#![no_main]

use ftpgate::vfs::{MAX_DEPTH, MAX_PATH, VPath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (cwd, arg) = s.split_once('\t').unwrap_or(("/", s));
    let Ok(cwd) = VPath::root().resolve(cwd) else { return };
    if let Ok(p) = cwd.resolve(arg) {
        let p = p.as_str();
        assert!(p.starts_with('/'));
        assert!(p.len() <= MAX_PATH);
        assert!(p == "/" || !p.ends_with('/'));
        let segs: Vec<&str> = p.split('/').skip(1).filter(|s| !s.is_empty()).collect();
        assert!(segs.len() <= MAX_DEPTH);
        assert!(segs.iter().all(|s| *s != "." && *s != ".."));
        assert!(!p.contains("//"));
        assert!(!p.chars().any(char::is_control));
    }
});
