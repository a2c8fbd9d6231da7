//! `docker-credential-regpress` for the tests: its path, the PATH and environment a client
//! runs it with (only the ID token sources a test gives), and `install`.

use std::path::Path;
use std::process::Command;

use super::s;

/// The helper as cargo built it.
pub const HELPER: &str = env!("CARGO_BIN_EXE_docker-credential-regpress");

/// PATH with the helper's directory first, as `cargo install` would put it on PATH.
pub fn path_with_helper() -> String {
    let dir = Path::new(HELPER).parent().expect("helper directory");
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `command` with the helper on PATH, no ID token source but `env`, and the helper's config
/// file at `config` (absent unless a test writes it).
pub fn with_helper_env(command: &mut Command, env: &[(String, String)], config: &Path) {
    command
        .env("PATH", path_with_helper())
        .env("REGPRESS_CREDENTIAL_HELPER_CONFIG", config)
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
        .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        .env_remove("REGPRESS_ID_TOKEN_FILE")
        .env_remove("REGPRESS_ID_TOKEN")
        .envs(env.iter().map(|(k, v)| (k, v)));
}

/// Run the helper with `args` (stdin empty).
pub fn helper(args: &[&str]) -> super::Run {
    Command::new(HELPER)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run docker-credential-regpress")
        .into()
}

/// `docker-credential-regpress install HOST` into these two files.
pub fn install(host: &str, docker_config: &Path, authfile: &Path) {
    helper(&[
        "install",
        host,
        "--docker-config",
        &s(docker_config),
        "--authfile",
        &s(authfile),
    ])
    .ok();
}
