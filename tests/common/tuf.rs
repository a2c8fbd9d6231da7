//! A TUF repository as Sigstore's is laid out (consistent snapshots, ECDSA P-256 keys, the
//! root's keys offline and one online key for timestamp, snapshot and targets), built by the
//! tests with their own keys so it can rotate its root, and publish expired, tampered and
//! rolled-back metadata. It is a directory; tests serve it with `regpress serve`, as a bucket
//! would.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sigstore_crypto::KeyPair;

/// An expiry no test reaches.
pub const FUTURE: &str = "2999-01-01T00:00:00Z";
/// An expiry every test is past.
pub const PAST: &str = "2001-01-01T00:00:00Z";

/// The metadata roles below root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Timestamp,
    Snapshot,
    Targets,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Timestamp => "timestamp",
            Role::Snapshot => "snapshot",
            Role::Targets => "targets",
        }
    }
}

/// A repository in a directory, and the keys that sign it.
pub struct TufRepo {
    pub dir: PathBuf,
    root_key: KeyPair,
    online_key: KeyPair,
    pub root_version: u64,
    /// The version the next release gives timestamp, snapshot and targets.
    next: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    sigstore_crypto::sha256(bytes).to_hex()
}

/// The key as TUF metadata lists it, and its key id.
fn key(kp: &KeyPair) -> (String, Value) {
    let pem = kp.public_key_der().unwrap().to_pem();
    let value = json!({
        "keytype": "ecdsa",
        "scheme": "ecdsa-sha2-nistp256",
        "keyval": { "public": pem },
    });
    let parsed: sigstore_tuf::Key = serde_json::from_value(value.clone()).unwrap();
    (parsed.key_id().unwrap(), value)
}

/// `signed` in its envelope, signed by `keys` over its canonical JSON.
fn envelope(signed: &Value, keys: &[&KeyPair]) -> Vec<u8> {
    let canonical = sigstore_tuf::canonical_json::to_canonical_bytes(signed).unwrap();
    let signatures: Vec<Value> = keys
        .iter()
        .map(|kp| {
            let sig = kp.sign(&canonical).unwrap();
            json!({ "keyid": key(kp).0, "sig": hex::encode(sig.as_bytes()) })
        })
        .collect();
    serde_json::to_vec_pretty(&json!({ "signed": signed, "signatures": signatures })).unwrap()
}

/// A snapshot's or timestamp's pin of a metadata file.
fn pin(bytes: &[u8], version: u64) -> Value {
    json!({
        "version": version,
        "length": bytes.len(),
        "hashes": { "sha256": sha256_hex(bytes) },
    })
}

fn root_signed(version: u64, root_key: &KeyPair, online_key: &KeyPair) -> Value {
    let (root_id, root_obj) = key(root_key);
    let (online_id, online_obj) = key(online_key);
    let online = json!({ "keyids": [online_id.clone()], "threshold": 1 });
    json!({
        "_type": "root",
        "spec_version": "1.0",
        "version": version,
        "expires": FUTURE,
        "consistent_snapshot": true,
        "keys": { root_id.clone(): root_obj, online_id: online_obj },
        "roles": {
            "root": { "keyids": [root_id], "threshold": 1 },
            "timestamp": online, "snapshot": online, "targets": online,
        },
    })
}

impl TufRepo {
    /// Root v1 in `dir` (also its initial root, [`TufRepo::initial_root`]), and a first release
    /// holding `trusted_root` as `trusted_root.json`.
    pub fn new(dir: &Path, trusted_root: &[u8]) -> TufRepo {
        std::fs::create_dir_all(dir.join("targets")).unwrap();
        let mut repo = TufRepo {
            dir: dir.to_path_buf(),
            root_key: KeyPair::generate_ecdsa_p256().unwrap(),
            online_key: KeyPair::generate_ecdsa_p256().unwrap(),
            root_version: 1,
            next: 1,
        };
        let root = envelope(
            &root_signed(1, &repo.root_key, &repo.online_key),
            &[&repo.root_key],
        );
        std::fs::write(dir.join("1.root.json"), root).unwrap();
        repo.release(trusted_root, None);
        repo
    }

    /// The initial root a client is given (root v1).
    pub fn initial_root(&self) -> PathBuf {
        self.dir.join("1.root.json")
    }

    /// Rotate every key: root v+1 names new root and online keys, signed by the old root key
    /// and the new one (as TUF requires); then a release signed by the new online key.
    pub fn rotate(&mut self, trusted_root: &[u8]) {
        let root_key = KeyPair::generate_ecdsa_p256().unwrap();
        let online_key = KeyPair::generate_ecdsa_p256().unwrap();
        self.root_version += 1;
        let signed = root_signed(self.root_version, &root_key, &online_key);
        let root = envelope(&signed, &[&self.root_key, &root_key]);
        let name = format!("{}.root.json", self.root_version);
        std::fs::write(self.dir.join(name), root).unwrap();
        self.root_key = root_key;
        self.online_key = online_key;
        self.release(trusted_root, None);
    }

    /// A new version of targets (holding `trusted_root`), snapshot and timestamp; `expired`
    /// is signed already expired.
    pub fn release(&mut self, trusted_root: &[u8], expired: Option<Role>) {
        let v = self.next;
        self.next += 1;
        let expires = |role| if expired == Some(role) { PAST } else { FUTURE };
        let hash = sha256_hex(trusted_root);
        std::fs::write(
            self.dir.join(format!("targets/{hash}.trusted_root.json")),
            trusted_root,
        )
        .unwrap();
        let targets = envelope(
            &json!({
                "_type": "targets", "spec_version": "1.0", "version": v,
                "expires": expires(Role::Targets),
                "targets": { "trusted_root.json": {
                    "length": trusted_root.len(), "hashes": { "sha256": hash },
                } },
            }),
            &[&self.online_key],
        );
        let snapshot = envelope(
            &json!({
                "_type": "snapshot", "spec_version": "1.0", "version": v,
                "expires": expires(Role::Snapshot),
                "meta": { "targets.json": pin(&targets, v) },
            }),
            &[&self.online_key],
        );
        let timestamp = envelope(
            &json!({
                "_type": "timestamp", "spec_version": "1.0", "version": v,
                "expires": expires(Role::Timestamp),
                "meta": { "snapshot.json": pin(&snapshot, v) },
            }),
            &[&self.online_key],
        );
        std::fs::write(self.dir.join(format!("{v}.targets.json")), targets).unwrap();
        std::fs::write(self.dir.join(format!("{v}.snapshot.json")), snapshot).unwrap();
        std::fs::write(self.dir.join("timestamp.json"), timestamp).unwrap();
    }

    /// The file the latest release wrote for `role`.
    pub fn file(&self, role: Role) -> PathBuf {
        match role {
            Role::Timestamp => self.dir.join("timestamp.json"),
            role => self
                .dir
                .join(format!("{}.{}.json", self.next - 1, role.name())),
        }
    }

    /// Alter the latest `role` after signing, as an attacker between repository and client
    /// would: its expiry pushed later, its signature left as it was.
    pub fn tamper(&self, role: Role) {
        let path = self.file(role);
        let mut metadata: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        metadata["signed"]["expires"] = "2999-12-31T00:00:00Z".into();
        std::fs::write(&path, serde_json::to_vec_pretty(&metadata).unwrap()).unwrap();
    }
}

/// A static file server for a TUF repository on loopback: `GET /PATH` answers the file under
/// its directory, or 404; it counts the connections it accepts (so a test can show that a run
/// made none). Stopped on drop.
pub struct StaticServer {
    pub url: String,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StaticServer {
    pub fn start(dir: &Path) -> StaticServer {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = std::sync::Arc::new(AtomicUsize::new(0));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (dir, count, stopping) = (dir.to_path_buf(), connections.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
                if let Ok(stream) = stream {
                    answer(&dir, stream);
                }
            }
        });
        StaticServer {
            url: format!("http://{addr}/"),
            connections,
            stop,
            addr,
            thread: Some(thread),
        }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Answer one request (HTTP/1.1, one request a connection).
fn answer(dir: &Path, stream: std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .trim_start_matches('/');
    let file = (!path.contains(".."))
        .then(|| std::fs::read(dir.join(path)).ok())
        .flatten();
    let mut stream = &stream;
    let _ = match file {
        Some(body) => stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .and_then(|()| stream.write_all(&body)),
        None => stream
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
    };
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr); // wake the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
