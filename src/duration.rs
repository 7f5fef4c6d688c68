//! Durations as a technician types them (`0s`, `90s`, `15m`, `12h`, `7d`) and as they are
//! shown back: whole numbers of one unit, so `export` prints what `apply` reads.

use crate::names::{Invalid, invalid};

const UNITS: [(char, u64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Seconds in `text`, one number and one unit (`s`, `m`, `h`, `d`).
pub fn parse(text: &str) -> Result<u64, Invalid> {
    let bad = || {
        invalid(format!(
            "invalid duration {text:?}: give a number and a unit, such as 90s, 15m, 12h or 7d"
        ))
    };
    let Some(unit) = text.chars().last() else {
        return bad();
    };
    let Some(&(_, secs)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return bad();
    };
    let number = &text[..text.len() - 1];
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return bad();
    }
    match number.parse::<u64>().ok().and_then(|n| n.checked_mul(secs)) {
        // Ten years is longer than any gateway waits for anything.
        Some(s) if s <= 10 * 365 * 86_400 => Ok(s),
        _ => invalid(format!("duration {text:?} is too long: at most 3650d")),
    }
}

/// `secs` in the largest unit that divides it (`86400` → `1d`, `90` → `90s`).
pub fn format(secs: u64) -> String {
    let (unit, size) = UNITS
        .iter()
        .find(|(_, size)| secs.is_multiple_of(*size) && secs > 0)
        .copied()
        .unwrap_or(('s', 1));
    format!("{}{unit}", secs / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_and_print_back() {
        for (text, secs) in [
            ("0s", 0),
            ("90s", 90),
            ("15m", 900),
            ("12h", 43_200),
            ("7d", 604_800),
        ] {
            assert_eq!(parse(text), Ok(secs), "{text}");
        }
        assert_eq!(format(0), "0s");
        assert_eq!(format(90), "90s");
        assert_eq!(format(7200), "2h");
        assert_eq!(format(86_400), "1d");
        assert_eq!(parse(&format(5_400)), Ok(5_400));
    }

    #[test]
    fn nonsense_says_what_a_duration_looks_like() {
        for bad in [
            "",
            "12",
            "h",
            "1.5h",
            "-1d",
            "1w",
            "1 d",
            "99999999999999999999d",
        ] {
            let e = parse(bad).unwrap_err().0;
            assert!(e.contains("duration"), "{bad}: {e}");
        }
        assert!(parse("4000d").unwrap_err().0.contains("at most 3650d"));
    }
}
