//! Pull tokens, for clients without OIDC: `regpress auth pull-token create|revoke`, and the
//! revocation list `/token` and `/check` honour.
//!
//! A pull token is a JWT signed by the handler's key ([`crate::token::Signer::mint_pull_token`])
//! naming repository patterns, with a `jti` and an `exp` no further than `[pull_tokens]
//! max_ttl`. It is presented to `/token` as the Basic password, its name as the username, and
//! buys the usual short-lived registry token. Revoking appends its `jti` to the `revoked` file;
//! the handler reads that file again at most `revocation_check` seconds after it last did, so a
//! revoked token (and every registry token minted for it) stops working within that delay.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::config::{AuthConfig, PullTokensConfig};
use crate::error::Error;
use crate::log;
use crate::token::Signer;

/// `regpress auth pull-token …`.
#[derive(Subcommand, Debug)]
pub enum PullTokenCommand {
    /// Print a new pull token (a JWT signed by the handler's key) for clients without OIDC:
    /// `docker login -u NAME` with it as the password.
    Create(CreateArgs),
    /// Revoke a pull token (by its jti, or the token itself): the handler refuses it, and the
    /// registry tokens minted for it, within `[pull_tokens] revocation_check` seconds.
    Revoke(RevokeArgs),
}

/// `pull-token create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// The handler's config (its signing key and `[pull_tokens]`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Repository patterns the token may pull (`acme/app`, `acme/*`, `acme/**`); repeatable.
    #[arg(long = "repo", value_name = "PATTERN", required = true)]
    repos: Vec<String>,
    /// How long the token lives (`30d`, `12h`), at most `[pull_tokens] max_ttl`.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::parse_duration)]
    ttl: Duration,
    /// Its name: the username it is used with, and what logs and the audit show.
    #[arg(long, value_name = "NAME")]
    name: String,
}

/// `pull-token revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The handler's config (its `[pull_tokens] revoked` file).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The token's jti (printed by `create`), or the token itself.
    #[arg(value_name = "JTI_OR_TOKEN")]
    token: String,
}

fn usage(path: &Path, reason: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The config's `[pull_tokens]`, or the error saying it is missing.
fn enabled(config: &AuthConfig, path: &Path) -> Result<PullTokensConfig, Error> {
    config.pull_tokens.clone().ok_or_else(|| {
        usage(
            path,
            "pull tokens are not enabled: add a [pull_tokens] table with `revoked = FILE`",
        )
    })
}

/// Run a `pull-token` subcommand: the token (create) or nothing (revoke) on stdout, what was
/// done on stderr.
pub fn run(command: PullTokenCommand) -> Result<(), Error> {
    match command {
        PullTokenCommand::Create(args) => {
            let config = AuthConfig::load(&args.config)?;
            let settings = enabled(&config, &args.config)?;
            if args.ttl > settings.max_ttl || args.ttl.is_zero() {
                return Err(usage(
                    &args.config,
                    format!(
                        "--ttl {} s: must be more than 0 and at most [pull_tokens] max_ttl ({} s)",
                        args.ttl.as_secs(),
                        settings.max_ttl.as_secs()
                    ),
                ));
            }
            if args.name.is_empty() || args.name.contains(|c: char| c == ':' || c.is_control()) {
                return Err(usage(
                    &args.config,
                    format!(
                        "--name {:?}: not empty, no ':' (it is a username)",
                        args.name
                    ),
                ));
            }
            crate::policy::Patterns::new(&args.repos)
                .map_err(|e| usage(&args.config, format!("--repo: {e}")))?;
            let signer = Signer::new(
                config.signing_key_pem.expose(),
                &config.realm,
                &config.service,
                config.token_lifetime,
            )
            .map_err(|e| usage(&args.config, e))?;
            let (token, claims) = signer
                .mint_pull_token(&args.name, &args.repos, args.ttl)
                .map_err(Error::Internal)?;
            println!("{token}");
            eprintln!(
                "pull token {:?} (jti {}) for {}, expires {}",
                claims.name,
                claims.jti,
                claims.repositories.join(" "),
                timestamp(claims.exp)
            );
            Ok(())
        }
        PullTokenCommand::Revoke(args) => {
            let config = AuthConfig::load(&args.config)?;
            let settings = enabled(&config, &args.config)?;
            let jti = jti_of(&args.token).map_err(|e| usage(&args.config, e))?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&settings.revoked)
                .map_err(|e| {
                    Error::Internal(format!("cannot open {}: {e}", settings.revoked.display()))
                })?;
            let now = timestamp(jsonwebtoken::get_current_timestamp());
            writeln!(file, "{jti}  # revoked {now}")
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    Error::Internal(format!("cannot write {}: {e}", settings.revoked.display()))
                })?;
            eprintln!(
                "revoked {jti} in {}: refused within {} s",
                settings.revoked.display(),
                settings.revocation_check.as_secs()
            );
            Ok(())
        }
    }
}

/// The `jti` named: a 32-digit hex id as is, or the `jti` claim of a token (unverified: it only
/// names what to refuse).
fn jti_of(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(text.to_ascii_lowercase());
    }
    #[derive(serde::Deserialize)]
    struct Jti {
        jti: String,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Jti>(text)
        .map(|c| c.jti)
        .map_err(|_| format!("{text:.12}…: neither a jti (32 hex digits) nor a pull token"))
}

fn timestamp(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The revocation list as last read, read again when older than the configured delay.
pub struct Revoked {
    path: PathBuf,
    every: Duration,
    state: Mutex<(HashSet<String>, Option<Instant>)>,
}

impl Revoked {
    /// Read `path` now; a file that exists but cannot be read stops the start.
    pub fn load(path: &Path, every: Duration) -> Result<Revoked, String> {
        let set = read(path)?;
        Ok(Revoked {
            path: path.to_path_buf(),
            every,
            state: Mutex::new((set, Some(Instant::now()))),
        })
    }

    /// Is `jti` revoked? Reads the file again if the last read is older than the delay; a
    /// file that cannot be read then keeps the list as it was (and is logged).
    pub fn contains(&self, jti: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.1.is_none_or(|at| at.elapsed() >= self.every) {
            match read(&self.path) {
                Ok(set) => state.0 = set,
                Err(e) => log::line(format_args!("keeping the revocation list as it was: {e}")),
            }
            state.1 = Some(Instant::now());
        }
        state.0.contains(jti)
    }
}

fn read(path: &Path) -> Result<HashSet<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .filter(|l| !l.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_read_again_after_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revoked");
        let list = Revoked::load(&path, Duration::from_millis(200)).unwrap();
        assert!(!list.contains("aa"));
        std::fs::write(&path, "# revoked\nAA  # ci, 2026\n\n").unwrap();
        assert!(!list.contains("aa"), "read before the delay");
        std::thread::sleep(Duration::from_millis(250));
        assert!(list.contains("aa"));
        assert_eq!(jti_of(&"A".repeat(32)).unwrap(), "a".repeat(32));
        assert!(jti_of("nope").is_err());
    }
}
