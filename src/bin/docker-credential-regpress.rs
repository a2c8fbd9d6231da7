//! `docker-credential-regpress`: the credential helper docker, podman and skopeo run for a
//! registry host listed under `credHelpers` (see [`regpress::credential`]).
//!
//! A binary of its own, not a `regpress` subcommand behind an argv[0] symlink: docker looks
//! for `docker-credential-<name>` on PATH, and `cargo install regpress` (or a release archive)
//! puts this file there with nothing to link by hand. It carries only the helper's code.

use std::io::Read;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use regpress::credential;

/// A Docker credential helper that answers with a fresh OIDC ID token for the registry: from
/// GitHub Actions (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN), else the file
/// in REGPRESS_ID_TOKEN_FILE, else REGPRESS_ID_TOKEN. The audience is the `service` of the
/// registry's /v2/ challenge unless the config file
/// (REGPRESS_CREDENTIAL_HELPER_CONFIG, default ~/.config/regpress/credential-helper.toml) sets
/// `[host."HOST"] audience`. Stores no secrets.
#[derive(Parser, Debug)]
#[command(name = "docker-credential-regpress", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Read a server URL on stdin, print {ServerURL, Username, Secret} with a fresh ID token.
    Get,
    /// Refused: this helper stores no credentials.
    Store,
    /// Nothing to erase (nothing is stored).
    Erase,
    /// List stored credentials: none.
    List,
    /// Write `credHelpers` entries for HOSTs into docker's config.json and containers'
    /// auth.json (podman, skopeo, buildah); nothing else in them changes.
    Install {
        /// Registry hosts (`cr.example.com`, `host:port`).
        #[arg(required = true, value_name = "HOST")]
        hosts: Vec<String>,
        /// Docker's config file [default: $DOCKER_CONFIG/config.json or ~/.docker/config.json].
        #[arg(long, value_name = "FILE")]
        docker_config: Option<PathBuf>,
        /// containers' auth file [default: $REGISTRY_AUTH_FILE or
        /// ~/.config/containers/auth.json].
        #[arg(long, value_name = "FILE")]
        authfile: Option<PathBuf>,
    },
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Get => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .map_err(|e| format!("cannot read the server URL on stdin: {e}"))?;
            println!("{}", credential::get(&input, &env)?);
            Ok(())
        }
        Command::Store => {
            // Drain what docker sends, so it never sees a broken pipe, then refuse.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            Err(credential::STORE_REFUSED.to_string())
        }
        Command::Erase => {
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            Ok(())
        }
        Command::List => {
            println!("{{}}");
            Ok(())
        }
        Command::Install {
            hosts,
            docker_config,
            authfile,
        } => {
            let missing = || "no HOME: give --docker-config and --authfile".to_string();
            for path in [
                docker_config.or_else(|| credential::docker_config(&env)),
                authfile.or_else(|| credential::containers_auth(&env)),
            ] {
                let path = path.ok_or_else(missing)?;
                credential::install(&path, &hosts)?;
                eprintln!(
                    "{}: credHelpers {} -> regpress",
                    path.display(),
                    hosts.join(", ")
                );
            }
            Ok(())
        }
    }
}

fn main() {
    if let Err(message) = run(Cli::parse().command) {
        // The protocol: the error on stdout, exit 1 (docker shows it).
        println!("{message}");
        std::process::exit(1);
    }
}
