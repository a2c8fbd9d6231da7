//! Content digests (`sha256:<hex>`) and streamed hashing.
//!
//! Everything in a registry is addressed by digest, so this is the one type every other module
//! shares. Hashing reads in fixed-size chunks: a blob is never held in memory whole.

use std::fmt;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

/// Size of the read buffer used when hashing a stream.
const HASH_CHUNK: usize = 1 << 20;

/// A validated SHA-256 content digest, written `sha256:<64 lowercase hex>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    /// Parse a digest string; only `sha256` is accepted (what every registry client speaks).
    ///
    /// The image spec's grammar is `algorithm ":" encoded`, with `algorithm` made of
    /// `[a-z0-9]+` components joined by `+ . _ -` and `encoded` of `[a-zA-Z0-9=_-]+`; for
    /// `sha256` the encoded part is exactly 64 lowercase hex characters. A well-formed digest of
    /// another algorithm is refused as unsupported, anything else as invalid.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(format!(
                "invalid digest {s:?}: no ':' between algorithm and hex"
            ));
        };
        if algorithm == "sha256" {
            if encoded.len() == 64
                && encoded
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Ok(Digest(s.to_string()));
            }
            return Err(format!(
                "invalid digest {s:?}: a sha256 digest is 64 lowercase hex characters"
            ));
        }
        let component =
            |c: &str| !c.is_empty() && c.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9'));
        let encoded_ok = !encoded.is_empty()
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
        if algorithm.split(['+', '.', '_', '-']).all(component) && encoded_ok {
            return Err(format!(
                "unsupported digest algorithm {algorithm} in {s:?} (only sha256 is supported)"
            ));
        }
        Err(format!(
            "invalid digest {s:?}: not algorithm:encoded as the image spec defines them"
        ))
    }

    /// The digest of some bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Digest::from_hasher(Sha256::digest(bytes).as_slice())
    }

    fn from_hasher(out: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(out)))
    }

    /// The hex part, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The full `sha256:<hex>` string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hash a stream in chunks, calling `progress` with the size of each chunk read.
/// Returns the digest and the number of bytes read.
pub fn hash_reader(reader: impl Read, progress: impl FnMut(u64)) -> io::Result<(Digest, u64)> {
    copy_and_hash(reader, &mut io::sink(), progress)
}

/// Copy a stream to `writer` in chunks, hashing it on the way.
/// Returns the digest and the number of bytes copied.
pub fn copy_and_hash(
    mut reader: impl Read,
    writer: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> io::Result<(Digest, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        writer.write_all(&buf[..n])?;
        total += n as u64;
        progress(n as u64);
    }
    Ok((Digest::from_hasher(hasher.finalize().as_slice()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256_and_rejects_others() {
        let hex = "a".repeat(64);
        let d = Digest::parse(&format!("sha256:{hex}")).unwrap();
        assert_eq!(d.hex(), hex);
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(128))).is_err());
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Digest::parse(&format!("sha256:../{}", "a".repeat(61))).is_err());
        assert!(Digest::parse(&format!("sha256:{hex}\n")).is_err());
        assert!(Digest::parse(&hex).unwrap_err().contains("no ':'"));
        let sha512 = Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap_err();
        assert!(
            sha512.contains("unsupported digest algorithm sha512"),
            "{sha512}"
        );
        let nonsense = Digest::parse(&format!("Sha256:{hex}")).unwrap_err();
        assert!(nonsense.contains("invalid digest"), "{nonsense}");
        assert!(Digest::parse(&format!("sha256:{hex}:{hex}")).is_err());
    }

    #[test]
    fn streamed_hash_equals_in_memory_hash() {
        let data: Vec<u8> = (0..3 * HASH_CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let mut seen = 0;
        let (d, n) = hash_reader(&data[..], |k| seen += k).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(seen, n);
        assert_eq!(d, Digest::of_bytes(&data));
        assert_eq!(
            Digest::of_bytes(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
