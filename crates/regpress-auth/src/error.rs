//! How the handler fails to start or to keep serving, and the exit code each failure maps to.
//!
//! Only starting and serving fail as a whole; a refused token or request is an HTTP answer, not
//! an [`Error`]. The split that matters to whoever runs the handler (a service manager, a CI
//! step) is the one the exit code carries: the operator's mistake (a config that cannot be read
//! or is wrong, an address that cannot be bound; exit 2) against the machine failing (exit 1).
//! These are the codes `regpress` uses for the same failures.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Exit code for an unexpected internal failure.
pub const EXIT_INTERNAL: i32 = 1;
/// Exit code for a usage error: bad flags or configuration (clap also uses 2).
pub const EXIT_USAGE: i32 = 2;

/// Why the handler could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file cannot be read.
    #[error("cannot read config {}: {error}", path.display())]
    ReadConfig {
        /// The file as given.
        path: PathBuf,
        /// What reading it said.
        error: std::io::Error,
    },
    /// The config file is read but wrong: its shape, a value, the signing key, a trust rule.
    #[error("config {}: {reason}", path.display())]
    Config {
        /// The file as given.
        path: PathBuf,
        /// What is wrong, in words.
        reason: String,
    },
    /// The listen address cannot be bound (taken, not ours, not allowed).
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What binding it said.
        error: std::io::Error,
    },
    /// Anything else: the runtime or the server failed.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// Is this the operator's mistake (flags, config, address) rather than the machine's?
    pub fn is_usage(&self) -> bool {
        !matches!(self, Error::Internal(_))
    }

    /// The process exit code for this failure: [`EXIT_USAGE`] or [`EXIT_INTERNAL`].
    pub fn exit_code(&self) -> i32 {
        if self.is_usage() {
            EXIT_USAGE
        } else {
            EXIT_INTERNAL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_or_address_and_codes_split_usage_from_internal() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let read = Error::ReadConfig {
            path: "auth.toml".into(),
            error: missing,
        };
        assert!(
            read.to_string()
                .starts_with("cannot read config auth.toml: ")
        );
        let config = Error::Config {
            path: "/etc/auth.toml".into(),
            reason: "service must not be empty".into(),
        };
        assert_eq!(
            config.to_string(),
            "config /etc/auth.toml: service must not be empty"
        );
        let listen = Error::Listen {
            addr: "127.0.0.1:5001".parse().expect("address"),
            error: std::io::Error::from(std::io::ErrorKind::AddrInUse),
        };
        assert!(
            listen
                .to_string()
                .starts_with("cannot listen on 127.0.0.1:5001: ")
        );
        for usage in [&read, &config, &listen] {
            assert_eq!(usage.exit_code(), EXIT_USAGE, "{usage}");
        }
        assert_eq!(Error::Internal("x".into()).exit_code(), EXIT_INTERNAL);
    }
}
