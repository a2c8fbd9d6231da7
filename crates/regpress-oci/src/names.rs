//! Repository names and tags, checked against the distribution spec's grammar.
//!
//! Names become object keys and URL paths, so anything outside the grammar is refused up front as
//! a usage error instead of producing keys no client would ever ask for.

use std::sync::LazyLock;

use regex::Regex;

/// Longest repository name we accept (the distribution spec's practical limit).
const MAX_REPOSITORY_LEN: usize = 255;

static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$",
    )
    .expect("static regex")
});

static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("static regex"));

/// Check a repository name such as `chainguard/base`.
pub fn check_repository(name: &str) -> Result<(), String> {
    if name.len() > MAX_REPOSITORY_LEN {
        return Err(format!(
            "repository name {name:?} is longer than {MAX_REPOSITORY_LEN} characters"
        ));
    }
    if !REPOSITORY.is_match(name) {
        return Err(format!(
            "invalid repository name {name:?}: use lowercase letters, digits and separators (. _ __ -), components joined by /"
        ));
    }
    Ok(())
}

/// Check a tag such as `latest` or `1.2.3`.
pub fn check_tag(tag: &str) -> Result<(), String> {
    if !TAG.is_match(tag) {
        return Err(format!(
            "invalid tag {tag:?}: up to 128 of [A-Za-z0-9_.-], not starting with . or -"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar() {
        for ok in [
            "base",
            "chainguard/base",
            "a/b/c",
            "a.b",
            "a__b",
            "a--b",
            "x9/y-z",
        ] {
            assert!(check_repository(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "Base", "/a", "a/", "a//b", "a/../b", "-a", "a_", "a___b", "a b", "a:b",
        ] {
            assert!(check_repository(bad).is_err(), "{bad}");
        }
        assert!(check_repository(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tag_grammar() {
        for ok in ["latest", "1.2.3", "v1_2", "_x", "A-b.c"] {
            assert!(check_tag(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "sha256:abc"] {
            assert!(check_tag(bad).is_err(), "{bad}");
        }
        assert!(check_tag(&"a".repeat(128)).is_ok());
        assert!(check_tag(&"a".repeat(129)).is_err());
    }
}
