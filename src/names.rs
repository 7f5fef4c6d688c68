//! Pure validation of the names a technician types: Sender names, Pipe ids and names
//! (destinations are checked in [`crate::store::destination`]). Every error is a sentence that says what is wrong and what is allowed.

/// Replaces control characters (CR, LF, NUL, ...) with `?`: for what a client typed,
/// before it goes into a reply or a log line.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Characters used for generated ids and passwords: no `0/o`, `1/l/i`, easy to read aloud.
pub const UNAMBIGUOUS: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A validation failure, already phrased for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T, Invalid> {
    Err(Invalid(msg.into()))
}

/// Sender names: 1–64 of `[A-Za-z0-9._-]`, starting with a letter or digit. No `@`,
/// because `name@pipe_id` selects a Pipe at login.
pub fn check_sender_name(name: &str) -> Result<(), Invalid> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > 64 {
        return invalid(format!(
            "invalid sender name {name:?}: use 1 to 64 characters"
        ));
    }
    if !name.chars().all(ok_char) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return invalid(format!(
            "invalid sender name {:?}: use letters, digits, '.', '_' and '-', starting with a letter or digit",
            name.escape_debug().to_string()
        ));
    }
    Ok(())
}

/// Pipe ids: 4–16 characters of `[a-z0-9]`.
pub fn check_pipe_id(id: &str) -> Result<(), Invalid> {
    let ok = (4..=16).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        invalid(format!(
            "invalid pipe id {:?}: use 4 to 16 lowercase letters and digits",
            id.escape_debug().to_string()
        ))
    }
}

/// Human Pipe names: 1–100 characters, no control characters.
pub fn check_pipe_name(name: &str) -> Result<(), Invalid> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return invalid(format!(
            "invalid pipe name {:?}: use 1 to 100 printable characters",
            name.escape_debug().to_string()
        ));
    }
    Ok(())
}

/// A random string of `len` characters from [`UNAMBIGUOUS`], each equally likely
/// (bytes that would bias the choice are drawn again).
pub fn random_token(len: usize) -> String {
    let n = UNAMBIGUOUS.len();
    let limit = (256 / n * n) as u8;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        // getrandom only fails when the OS has no entropy source at all; nothing can run then.
        getrandom::getrandom(&mut buf).expect("the operating system's random source failed");
        for b in buf.iter().filter(|b| **b < limit).take(len - out.len()) {
            out.push(UNAMBIGUOUS[*b as usize % n] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_names() {
        for ok in ["cam1", "plc-7", "line_3.scanner", "A"] {
            assert!(check_sender_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", "cam@abcd", "a b", "é", &"x".repeat(65), "a/b"] {
            assert!(check_sender_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pipe_ids() {
        assert!(check_pipe_id("abcd").is_ok());
        assert!(check_pipe_id("a1b2c3d4e5f6g7h8").is_ok());
        for bad in ["abc", "ABCD", "ab-cd", "a1b2c3d4e5f6g7h8x", ""] {
            assert!(check_pipe_id(bad).is_err(), "{bad}");
        }
        let id = random_token(8);
        assert!(check_pipe_id(&id).is_ok());
    }
}
