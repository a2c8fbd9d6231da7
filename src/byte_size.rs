//! Sizes in bytes as people write them: `8388608`, `8MiB`, `8 MiB`, `64M`, `1.5 GiB`, `100MB`.
//!
//! The flags and `[target]` keys that take a size (`--part-size`, `multipart_threshold`) print
//! their defaults with a unit ("8 MiB"), so they must take one back. As in docker's and
//! Kubernetes' sizes: `K`, `M`, `G`, `T` and `KiB`…`TiB` are powers of 1024, `KB`…`TB` powers of
//! 1000, a plain number is bytes; units are case-insensitive.

use serde::Deserialize;

/// The number of bytes `text` names.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim_start();
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{text:?} is not a size: the unit {unit:?} is none of B, K, M, G, T, KiB, MiB, \
                 GiB, TiB (powers of 1024) or KB, MB, GB, TB (powers of 1000)"
            ));
        }
    };
    let not_a_number =
        || format!("{text:?} is not a size: expected a number of bytes, e.g. 8388608 or 8MiB");
    if let Ok(whole) = number.parse::<u64>() {
        return whole
            .checked_mul(scale)
            .ok_or_else(|| format!("{text:?} is too large a size"));
    }
    let fraction: f64 = number.parse().map_err(|_| not_a_number())?;
    let bytes = (fraction * scale as f64).round();
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large a size"));
    }
    Ok(bytes as u64)
}

/// A size from a config: an integer of bytes, or a string [`parse_bytes`] reads.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Bytes(u64),
        Text(String),
    }
    match Option::<Written>::deserialize(d)? {
        None => Ok(None),
        Some(Written::Bytes(bytes)) => Ok(Some(bytes)),
        Some(Written::Text(text)) => parse_bytes(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_with_and_without_units() {
        for (text, bytes) in [
            ("8388608", 8_388_608),
            ("8MiB", 8 << 20),
            ("8 MiB", 8 << 20),
            ("8mib", 8 << 20),
            ("64M", 64 << 20),
            ("5 m", 5 << 20),
            ("1.5GiB", 3 << 29),
            ("100MB", 100_000_000),
            ("2 KB", 2_000),
            ("1k", 1024),
            ("7 B", 7),
            (" 1T ", 1 << 40),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn what_is_not_a_size_is_refused_naming_it() {
        for text in ["", "MiB", "8 XB", "eight", "-8", "1.2.3M", "99999999999T"] {
            let error = parse_bytes(text).expect_err(text);
            assert!(error.contains(&format!("{text:?}")), "{text}: {error}");
        }
    }
}
