//! An event receiver on loopback for the tests: records every request it gets (head and body)
//! and answers 202, and reads the batches of CloudEvents in them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One HTTP/1.1 message from `stream`: its head (lowercased) and a body of Content-Length bytes.
pub fn read_message(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return (String::from_utf8_lossy(&data).to_lowercase(), Vec::new()),
            Ok(n) => n,
        };
        data.extend_from_slice(&buf[..n]);
        let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while data.len() < end + 4 + length {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
        return (head, data[end + 4..].to_vec());
    }
}

/// Requests a receiver got: head (lowercased) and body.
type Requests = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A receiver on loopback that records every request (headers, body) and answers 202.
pub struct Receiver {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    seen: Requests,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Requests = Arc::new(Mutex::new(Vec::new()));
        let shared = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (head, body) = read_message(&mut stream);
                let _ = stream.write_all(
                    b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                shared.lock().unwrap().push((head, body));
            }
        });
        Receiver { addr, seen }
    }

    /// Every event received so far, waiting up to 10 s for at least `n`.
    pub fn events(&self, n: usize) -> Vec<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let events: Vec<(String, Value)> = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .flat_map(|(head, body)| {
                    let batch: Vec<Value> =
                        serde_json::from_slice(body).expect("a batch of events");
                    batch
                        .into_iter()
                        .map(|e| (head.clone(), e))
                        .collect::<Vec<_>>()
                })
                .collect();
            if events.len() >= n || Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
