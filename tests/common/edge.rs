//! The edge Worker in workerd for the tests: `edge/dev.sh` on a published site, and the
//! daemons some clients need (dockerd with vfs storage and no networking of its own, a
//! standalone containerd), each in its own directory with its own socket, stopped on drop;
//! and the docker CLI pointed at such a dockerd.
//!
//! Every process here is started in a process group of its own and stopped by that group's
//! id (SIGTERM, then SIGKILL), so workerd, which Miniflare starts as a child of node, never
//! outlives a test.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::auth::free_port;
use super::s;

/// The repository's `edge/` directory.
pub fn edge_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("edge")
}

/// `cmd` started as the leader of a new process group.
fn spawn_group(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.process_group(0).spawn()
}

/// Stop the process group led by `child`: SIGTERM, up to 10 s, then SIGKILL.
fn stop_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
}

/// A running `edge/dev.sh`.
pub struct Edge {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    log: PathBuf,
}

impl Edge {
    /// Start `edge/dev.sh SITE PORT ARGS…` on a free port; `args` may say `{port}` for it.
    pub fn start(site: &Path, args: &[&str], log_dir: &Path) -> Edge {
        Edge::start_on(free_port(), site, args, &[], log_dir)
    }

    /// The same on `port`, with extra environment variables.
    pub fn start_on(
        port: u16,
        site: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log_dir: &Path,
    ) -> Edge {
        let log = log_dir.join(format!("edge-{port}.log"));
        let stderr = std::fs::File::create(&log).expect("create edge log");
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let mut child = spawn_group(
            Command::new(edge_dir().join("dev.sh"))
                .arg(site)
                .arg(port.to_string())
                .args(&args)
                .envs(env.iter().copied())
                .stdout(Stdio::piped())
                .stderr(stderr),
        )
        .unwrap_or_else(|e| panic!("cannot run edge/dev.sh ({e}); ./tests/run.sh runs npm ci"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let addr = format!("127.0.0.1:{port}");
        let mut edge = Edge { child, addr, log };
        assert!(
            line.contains(&format!("http://{}/", edge.addr)),
            "edge/dev.sh did not start: {line:?}\n{}",
            edge.log()
        );
        edge.child.stdout = None;
        edge
    }

    /// What the Worker and dev.sh wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it holds anything, waiting up to 10 s: workerd writes a Worker's console
    /// output after the response has gone.
    pub fn logged(&self) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let log = self.log();
            if !log.is_empty() || std::time::Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `docker://127.0.0.1:PORT/<reference>`.
    pub fn image(&self, reference: &str) -> String {
        format!("docker://{}/{reference}", self.addr)
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// A daemon (dockerd, containerd) listening on a socket of its own.
pub struct Daemon {
    child: Child,
    /// Its API socket.
    pub socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// dockerd as the README's test machine runs it: vfs storage, no iptables, no bridge,
    /// its own data root, exec root and socket under `dir`.
    pub fn dockerd(dir: &Path) -> Daemon {
        std::fs::create_dir_all(dir).expect("create dockerd directory");
        let config = dir.join("daemon.json");
        std::fs::write(
            &config,
            r#"{"storage-driver": "vfs", "iptables": false, "ip6tables": false, "bridge": "none"}"#,
        )
        .expect("write daemon.json");
        let socket = dir.join("docker.sock");
        let mut cmd = Command::new("dockerd");
        cmd.args(["--config-file", &s(&config)])
            .args(["--data-root", &s(&dir.join("data"))])
            .args(["--exec-root", &s(&dir.join("exec"))])
            .args(["--pidfile", &s(&dir.join("docker.pid"))])
            .args(["-H", &format!("unix://{}", socket.display())]);
        Daemon::start("dockerd", cmd, socket, dir, "apt-get install docker.io")
    }

    /// containerd with its root, state and socket under `dir` (no CRI plugin).
    pub fn containerd(dir: &Path) -> Daemon {
        std::fs::create_dir_all(dir).expect("create containerd directory");
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\"]\n  disable = true\n",
                dir.join("root").display(),
                dir.join("state").display(),
                socket.display()
            ),
        )
        .expect("write containerd config");
        let mut cmd = Command::new("containerd");
        cmd.args(["--config", &s(&config)]);
        Daemon::start("containerd", cmd, socket, dir, "apt-get install containerd")
    }

    fn start(name: &str, mut cmd: Command, socket: PathBuf, dir: &Path, hint: &str) -> Daemon {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("create daemon log");
        let child = spawn_group(cmd.stdout(Stdio::null()).stderr(out).stdin(Stdio::null()))
            .unwrap_or_else(|e| {
                panic!("cannot run {name} ({e}); ./tests/run.sh installs it ({hint})")
            });
        let mut daemon = Daemon { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !daemon.socket.exists() {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("{name} exited ({status}):\n{}", daemon.log());
            }
            assert!(
                Instant::now() < deadline,
                "{name} not up:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

/// The docker CLI with a config directory and daemon socket of the test's own.
pub struct Docker {
    host: String,
    /// The client's config directory (`DOCKER_CONFIG`).
    pub config: PathBuf,
}

impl Docker {
    pub fn new(daemon: &Daemon, dir: &Path) -> Docker {
        let config = dir.join("docker-config");
        std::fs::create_dir_all(&config).unwrap();
        Docker {
            host: format!("unix://{}", daemon.socket.display()),
            config,
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", &self.host)
            .env("DOCKER_CONFIG", &self.config)
            .args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> super::Run {
        self.command(args).output().expect("run docker").into()
    }

    /// `docker login HOST -u USER --password-stdin`, the password written to its stdin.
    pub fn login(&self, host: &str, user: &str, password: &str) -> super::Run {
        use std::io::Write;
        let mut login = self
            .command(&["login", host, "-u", user, "--password-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker login");
        let mut stdin = login.stdin.take().expect("stdin");
        stdin
            .write_all(password.as_bytes())
            .expect("write password");
        drop(stdin);
        login.wait_with_output().expect("docker login").into()
    }
}
