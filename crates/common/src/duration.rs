//! Durations in specs and on command lines: `500ms`, `3s`, `2m`, `1h`, or a
//! sequence of them such as `1h30m`. The CRDs' patterns accept exactly this
//! grammar (`^([0-9]+(ms|h|m|s))+$`), so admission and the service agree.

use std::time::Duration;

/// The pattern the CRDs use for durations: exactly what [`parse_duration`] accepts.
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|h|m|s))+$";

/// The longest duration accepted (ten years): longer ones are typing mistakes, and would
/// overflow the time arithmetic they feed.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Parses `500ms`, `3s`, `2m`, `1h` or a sequence of them (`1h30m`); at most ten years.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 500ms, 3s, 2m, 1h or 1h30m");
    let too_long = || format!("{s:?} is longer than the 10 years a duration may be");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        // Only digits: the parse fails on overflow alone.
        let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let (unit_ms, len) = match rest.as_bytes() {
            [b'm', b's', ..] => (1, 2),
            [b'h', ..] => (3_600_000, 1),
            [b'm', ..] => (60_000, 1),
            [b's', ..] => (1_000, 1),
            _ => return Err(bad()),
        };
        rest = &rest[len..];
        let part = n.checked_mul(unit_ms).map(Duration::from_millis).ok_or_else(too_long)?;
        total = total.checked_add(part).filter(|t| *t <= MAX_DURATION).ok_or_else(too_long)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sequences() {
        assert_eq!(parse_duration("750ms"), Ok(Duration::from_millis(750)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1m30s500ms"), Ok(Duration::from_millis(90_500)));
        for bad in ["5d", "s", "", "1.5h", "1h30", "-1s", "1 h"] {
            assert!(parse_duration(bad).unwrap_err().contains("not a duration"), "{bad}");
        }
    }

    #[test]
    fn huge_values_are_refused_not_wrapped() {
        for huge in ["18446744073709551615h", "99999999999999999999999s", "87601h", "5000000000000h"] {
            assert!(parse_duration(huge).unwrap_err().contains("longer than the 10 years"), "{huge}");
        }
        assert_eq!(parse_duration("87600h"), Ok(MAX_DURATION));
    }

    #[test]
    fn the_crd_pattern_accepts_exactly_what_parses() {
        let re = regex::Regex::new(DURATION_PATTERN).unwrap();
        for s in ["10s", "1h30m", "500ms", "1m30s", "5d", "1.5h", "", "1h30", "ms", "10S"] {
            assert_eq!(re.is_match(s), parse_duration(s).is_ok(), "{s}");
        }
    }
}
