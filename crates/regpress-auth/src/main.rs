//! The `regpress-auth` binary: the auth handler on its own, for the machine next to the proxy,
//! without the publisher's S3 client, SBOM schemas or Sigstore verification.
//!
//! It is `regpress auth` under another name: the same subcommands, flags, help and exit codes
//! (2 for a bad flag, config or address, 1 for anything else), calling the same library.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use regpress_auth::Error;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error
  2  usage error (bad flags or config)";

/// The companion handler for private repositories: registry tokens from OIDC identity.
#[derive(Parser, Debug)]
#[command(name = "regpress-auth", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve /token (registry tokens for OIDC ID tokens), /check (a proxy's forward-auth:
    /// nginx auth_request, Caddy forward_auth, Traefik forwardAuth) and /.well-known/jwks.json.
    Serve(ServeArgs),
    /// Print a new P-256 signing key (PKCS#8 PEM) for auth.toml's `signing_key`.
    Keygen,
    /// Pull tokens for clients without OIDC: create one, or revoke one.
    #[command(subcommand)]
    PullToken(regpress_auth::pull_token::PullTokenCommand),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The handler's config: service, realm, signing key, issuers, trust rules (see
    /// examples/auth.toml).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Address to listen on, overriding the config's `listen`; port 0 picks a free port
    /// (printed on start).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Serve(args) => regpress_auth::serve(&args.config, args.listen),
        Command::PullToken(command) => regpress_auth::pull_token::run(command),
        Command::Keygen => {
            print!(
                "{}",
                regpress_auth::token::generate_key().map_err(Error::Internal)?
            );
            Ok(())
        }
    }
}

fn main() {
    let code = match run(Cli::parse()) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
