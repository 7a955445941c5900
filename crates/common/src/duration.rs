//! Durations on command lines: `500ms`, `3s`, `2m`, `1h`.

use std::time::Duration;

/// Parses `500ms`, `3s`, `2m` or `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let bad = || format!("{s:?} is not a duration such as 500ms, 3s, 2m or 1h");
    let n: u64 = n.parse().map_err(|_| bad())?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("750ms"), Ok(Duration::from_millis(750)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5d").unwrap_err().contains("not a duration"));
        assert!(parse_duration("s").is_err());
    }
}
