//! Durations as people write them in flags and config (`7d`, `36h`, `1h 30m`).

/// A duration written like `7d`, `36h`, `90s` or `1h 30m` (days are 24 hours).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let span: jiff::Span = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a duration like 7d, 12h or 30s: {e}"))?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("{text:?}: {e}"))?;
    std::time::Duration::try_from(signed).map_err(|_| format!("{text:?} is negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("7d"), Ok(7 * 86400));
        assert_eq!(secs("36h"), Ok(36 * 3600));
        assert_eq!(secs("1h 30m"), Ok(5400));
        assert_eq!(secs("0s"), Ok(0));
        for bad in ["", "7", "soon", "-1d", "1 fortnight"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
