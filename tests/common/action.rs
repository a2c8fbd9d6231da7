//! A simulated GitHub runner for the composite action in `action.yml`: each step's `run` is
//! executed with `bash --noprofile --norc -eo pipefail` (what `shell: bash` runs) in a clean
//! environment, with `${{ … }}` expressions of `env` and `outputs` evaluated, and the runner's
//! per-step files handled as GitHub does: `GITHUB_OUTPUT` (name=value and heredoc forms) into
//! step outputs, `GITHUB_PATH` prepended to later steps' PATH, `GITHUB_ENV` into later steps'
//! environment, `GITHUB_STEP_SUMMARY` appended to the job summary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// `action.yml`, as far as a composite action goes. Unknown keys are refused so that a step
/// using something this runner does not simulate (`uses`, `working-directory`) fails the test
/// instead of being skipped; `if` is evaluated for the status functions only ([`Condition`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub name: String,
    pub description: String,
    pub author: Option<String>,
    pub branding: Option<serde_norway::Value>,
    pub inputs: BTreeMap<String, Input>,
    pub outputs: BTreeMap<String, ActionOutput>,
    pub runs: Runs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub description: String,
    #[serde(default)]
    pub required: bool,
    pub default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionOutput {
    pub description: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runs {
    pub using: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub id: Option<String>,
    pub shell: String,
    pub run: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(rename = "if")]
    pub condition: Option<String>,
}

/// When a step runs, from its `if` (GitHub's status functions; anything else is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// No `if`, or `success()`: only while every earlier step succeeded.
    Success,
    /// `!cancelled()` or `always()`: after a failure too (a test run is never cancelled).
    Always,
    /// `failure()`: only after a failure.
    Failure,
}

impl Step {
    pub fn runs_when(&self) -> Condition {
        let Some(text) = &self.condition else {
            return Condition::Success;
        };
        let expr = text.trim();
        let expr = expr
            .strip_prefix("${{")
            .and_then(|e| e.strip_suffix("}}"))
            .unwrap_or(expr)
            .trim();
        match expr {
            "success()" => Condition::Success,
            "!cancelled()" | "always()" => Condition::Always,
            "failure()" => Condition::Failure,
            other => panic!(
                "step {}: the simulated runner does not evaluate `if: {other}`",
                self.name
            ),
        }
    }
}

/// The repository root, which is the action's directory.
pub fn action_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Parse `action.yml`.
pub fn load() -> Action {
    let text = std::fs::read_to_string(action_dir().join("action.yml")).expect("read action.yml");
    serde_norway::from_str(&text).expect("action.yml parses as a composite action")
}

/// What a run of the action came to.
pub struct Outcome {
    /// Exit code of the step that failed, or 0.
    pub code: i32,
    /// The name of the step that failed.
    pub failed_step: Option<String>,
    /// The action's outputs, evaluated from `outputs.*.value`.
    pub outputs: BTreeMap<String, String>,
    /// The job summary.
    pub summary: String,
    /// Every step's stdout and stderr.
    pub log: String,
}

/// A runner for one job: its temp directory and workspace.
pub struct Runner {
    pub temp: tempfile::TempDir,
    /// Directories before the system PATH (as a previous setup step would add).
    pub path: Vec<PathBuf>,
    /// The system PATH after those: `/usr/local/bin:/usr/bin:/bin`, or a directory of only
    /// some tools ([`only_tools`]) to run without what the others hold (cargo).
    pub system_path: Vec<PathBuf>,
    /// Environment the workflow sets on the action's step (secrets).
    pub env: Vec<(String, String)>,
}

impl Runner {
    pub fn new() -> Runner {
        let temp = tempfile::tempdir().expect("runner temp");
        for dir in ["runner-temp", "workspace"] {
            std::fs::create_dir_all(temp.path().join(dir)).unwrap();
        }
        Runner {
            temp,
            path: Vec::new(),
            system_path: ["/usr/local/bin", "/usr/bin", "/bin"]
                .map(PathBuf::from)
                .to_vec(),
            env: Vec::new(),
        }
    }

    /// `RUNNER_TEMP`.
    pub fn runner_temp(&self) -> PathBuf {
        self.temp.path().join("runner-temp")
    }

    /// `GITHUB_WORKSPACE`, the steps' working directory.
    pub fn workspace(&self) -> PathBuf {
        self.temp.path().join("workspace")
    }

    /// Run the steps of `action.yml` with these inputs (`with:`) as the runner does: after a
    /// step fails, only the steps whose `if` asks to run after a failure; the outcome is the
    /// first failure's.
    pub fn run(&self, inputs: &[(&str, &str)]) -> Outcome {
        let action = load();
        assert_eq!(action.runs.using, "composite");
        for (name, _) in inputs {
            assert!(
                action.inputs.contains_key(*name),
                "input {name} is not declared in action.yml"
            );
        }
        let input = |name: &str| -> String {
            let declared = action
                .inputs
                .get(name)
                .unwrap_or_else(|| panic!("action.yml uses undeclared input {name}"));
            inputs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
                .or(declared.default.clone())
                .unwrap_or_default()
        };
        let mut steps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut extra_path: Vec<PathBuf> = Vec::new();
        let mut extra_env: Vec<(String, String)> = Vec::new();
        let mut outcome = Outcome {
            code: 0,
            failed_step: None,
            outputs: BTreeMap::new(),
            summary: String::new(),
            log: String::new(),
        };
        for (n, step) in action.runs.steps.iter().enumerate() {
            let failed = outcome.failed_step.is_some();
            let runs = match step.runs_when() {
                Condition::Success => !failed,
                Condition::Always => true,
                Condition::Failure => failed,
            };
            if !runs {
                continue;
            }
            assert_eq!(step.shell, "bash", "step {}: shell", step.name);
            assert!(
                !step.run.contains("${{"),
                "step {}: expressions in `run` are a script-injection risk; pass them via env",
                step.name
            );
            let files = self.runner_temp().join(format!("_step{n}"));
            std::fs::create_dir_all(&files).unwrap();
            let file = |name: &str| {
                let p = files.join(name);
                std::fs::write(&p, "").unwrap();
                p
            };
            let (output, path_file, env_file, summary) =
                (file("output"), file("path"), file("env"), file("summary"));
            let script = files.join("script.sh");
            std::fs::write(&script, &step.run).unwrap();
            let path: Vec<String> = extra_path
                .iter()
                .rev()
                .chain(self.path.iter())
                .chain(self.system_path.iter())
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let mut command = Command::new("bash");
            command
                .args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&script)
                .current_dir(self.workspace())
                .env_clear()
                .env("PATH", path.join(":"))
                .env("HOME", std::env::var("HOME").unwrap_or("/root".into()))
                .env("CI", "true")
                .env("GITHUB_ACTIONS", "true")
                .env("RUNNER_OS", "Linux")
                .env("RUNNER_TEMP", self.runner_temp())
                .env("GITHUB_WORKSPACE", self.workspace())
                .env("GITHUB_ACTION_PATH", action_dir())
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_PATH", &path_file)
                .env("GITHUB_ENV", &env_file)
                .env("GITHUB_STEP_SUMMARY", &summary)
                .envs(self.env.iter().cloned())
                .envs(extra_env.iter().cloned());
            for (name, value) in &step.env {
                command.env(name, evaluate(value, &input, &steps));
            }
            let out = command.output().expect("run bash");
            outcome.log.push_str(&format!(
                "--- step {}\n{}{}",
                step.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
            outcome
                .summary
                .push_str(&std::fs::read_to_string(&summary).unwrap());
            if let Some(id) = &step.id {
                steps.insert(
                    id.clone(),
                    parse_outputs(&std::fs::read_to_string(&output).unwrap()),
                );
            }
            extra_path.extend(
                std::fs::read_to_string(&path_file)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(PathBuf::from),
            );
            extra_env.extend(parse_outputs(&std::fs::read_to_string(&env_file).unwrap()));
            if !out.status.success() && outcome.failed_step.is_none() {
                outcome.code = out.status.code().unwrap_or(-1);
                outcome.failed_step = Some(step.name.clone());
            }
        }
        for (name, output) in &action.outputs {
            outcome
                .outputs
                .insert(name.clone(), evaluate(&output.value, &input, &steps));
        }
        outcome
    }
}

/// Evaluate the `${{ … }}` expressions this action may use: `inputs.NAME`,
/// `steps.ID.outputs.NAME` (empty when unset, as on GitHub) and `github.action_path`.
fn evaluate(
    text: &str,
    input: &dyn Fn(&str) -> String,
    steps: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let re = regex::Regex::new(r"\$\{\{\s*([^}]+?)\s*\}\}").unwrap();
    re.replace_all(text, |c: &regex::Captures| {
        let expr = &c[1];
        if let Some(name) = expr.strip_prefix("inputs.") {
            return input(name);
        }
        if let Some(rest) = expr.strip_prefix("steps.") {
            let (id, name) = rest
                .split_once(".outputs.")
                .unwrap_or_else(|| panic!("unsupported expression {expr}"));
            return steps
                .get(id)
                .and_then(|o| o.get(name))
                .cloned()
                .unwrap_or_default();
        }
        if expr == "github.action_path" {
            return action_dir().to_string_lossy().into_owned();
        }
        panic!("the simulated runner does not know the expression {expr}")
    })
    .into_owned()
}

/// Parse a `GITHUB_OUTPUT` / `GITHUB_ENV` file: `name=value` lines and `name<<DELIMITER` blocks.
pub fn parse_outputs(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            out.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            out.insert(name.to_string(), value.to_string());
        }
    }
    out
}

/// A directory holding symlinks to only these tools (found on this process's PATH), for a
/// runner's [`Runner::system_path`].
pub fn only_tools(dir: &Path, tools: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools {
        let found = std::env::split_paths(&path)
            .map(|d| d.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{tool} is not on PATH"));
        std::os::unix::fs::symlink(found, dir.join(tool)).unwrap();
    }
}

/// The release target triple the install step picks on this host (`uname -s`/`uname -m` in
/// action/install.sh).
pub fn release_triple() -> String {
    let arch = std::env::consts::ARCH;
    match std::env::consts::OS {
        "linux" => format!("{arch}-unknown-linux-gnu"),
        "macos" => format!("{arch}-apple-darwin"),
        os => panic!("action/install.sh has no release for {os}"),
    }
}

/// A release of the built binary as the install step downloads it: `regpress-<target>.tar.gz`
/// (the binary at its top level) and its `.sha256`, under `<dir>/v<version>/`.
pub fn make_release(dir: &Path, version: &str) -> PathBuf {
    let release = dir.join(format!("v{version}"));
    std::fs::create_dir_all(&release).unwrap();
    let name = format!("regpress-{}.tar.gz", release_triple());
    let tarball = release.join(&name);
    let file = std::fs::File::create(&tarball).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_path_with_name(env!("CARGO_BIN_EXE_regpress"), "regpress")
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    let digest = sha256_hex(&std::fs::read(&tarball).unwrap());
    std::fs::write(
        release.join(format!("{name}.sha256")),
        format!("{digest}  {name}\n"),
    )
    .unwrap();
    tarball
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A static file server on loopback for `dir`, stopped when the process exits.
pub fn serve_files(dir: &Path) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app =
                axum::Router::new().fallback_service(tower_http::services::ServeDir::new(dir));
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}
