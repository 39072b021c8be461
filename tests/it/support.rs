//! Shared helpers: a temporary directory, a command runner for the `stepwise` binary, a
//! simulator process, and a bare HTTP/1.1 client for loopback servers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// A temporary directory that files are written into.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir { tmp: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// Writes `contents` to `rel`, creating parent directories.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
    }
}

/// The result of running the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A `stepwise` command, run in `cwd`.
pub fn stepwise(cwd: &Path, args: &[&str]) -> Run {
    stepwise_env(cwd, args, &[])
}

pub fn stepwise_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stepwise"));
    cmd.current_dir(cwd).args(args).env_remove("STEPWISE_LOG").env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out: Output = cmd.output().expect("running stepwise");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A request without a body to a loopback port: status and body, or `None` if nothing answers
/// (or the answer is not HTTP).
pub fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    http_with(port, method, path, &[("Host", "test")], "")
}

/// A request with `headers` (give `Host`) and `body` to a loopback port: status and body, or
/// `None` if nothing answers.
pub fn http_with(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Option<(u16, String)> {
    http_full(port, method, path, headers, body).map(|(status, _, body)| (status, body))
}

/// [`http_with`], with the answer's head (status line and headers) too.
pub fn http_full(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()));
    s.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Some((status, head.to_owned(), body.to_owned()))
}

/// `GET path` on a loopback port.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path)
}

/// A simulator (`stepwise knowbe4-sim ...` or `stepwise boomi-sim ...`) as a process of its own,
/// on a loopback port it chose; killed (by its own pid) when dropped.
pub struct SimProcess {
    child: Child,
    pub port: u16,
}

impl SimProcess {
    /// Runs `stepwise ARGS` (a simulator command with `--port 0`) and waits for the
    /// "listening on URL" line it prints on stdout.
    pub fn start(args: &[&str]) -> SimProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_stepwise"))
            .args(args)
            .env_remove("STEPWISE_LOG")
            .env_remove("RUST_LOG")
            .env_remove("BOOMI_SIM_TOKEN")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting stepwise {args:?}: {e}"));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        // Ends (without a port) if the simulator exits before it listens.
        let port = lines.by_ref().map_while(Result::ok).find_map(|line| {
            let url = line.split("listening on ").nth(1)?;
            url.trim().rsplit(':').next()?.parse().ok()
        });
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let port = port.unwrap_or_else(|| panic!("stepwise {args:?} printed no port"));
        SimProcess { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request without a body, whose answer must be JSON.
    pub fn json(&self, method: &str, path: &str) -> Value {
        let (_, body) = http(self.port, method, path).unwrap_or_else(|| panic!("{method} {path}: no answer"));
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path} is not JSON ({e}): {body}"))
    }

    /// `GET /__sim/stats`.
    pub fn stats(&self) -> Value {
        self.json("GET", "/__sim/stats")
    }

    /// Requests the simulator received in all.
    pub fn requests(&self) -> u64 {
        self.stats()["requests"].as_u64().expect("stats.requests")
    }

    /// Requests of one operation (`by_operation` in the stats).
    pub fn calls_of(&self, operation: &str) -> u64 {
        self.stats()["by_operation"][operation].as_u64().unwrap_or(0)
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A child's stderr, read line by line into a shared string as it comes (so a test can wait for
/// a line while the child runs), and the thread that reads it.
pub fn capture_stderr(child: &mut Child) -> (std::sync::Arc<std::sync::Mutex<String>>, std::thread::JoinHandle<()>) {
    let stderr = child.stderr.take().expect("stderr is piped");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
            log.push_str(&line);
            log.push('\n');
        }
    });
    (log, reader)
}

/// A free loopback port (bound, then released for the process under test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// A long-running `stepwise` (a `serve`) whose stderr is collected in the background; killed
/// when dropped.
pub struct LoggedProcess {
    child: Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl LoggedProcess {
    /// How long [`LoggedProcess::until`] and [`LoggedProcess::terminate`] wait.
    pub const PATIENCE: Duration = Duration::from_secs(90);

    /// Spawns `command` with stdin and stdout closed and stderr collected.
    pub fn spawn(mut command: Command) -> LoggedProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting stepwise");
        let stderr = child.stderr.take().expect("stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        LoggedProcess { child, log }
    }

    /// Its stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until `probe` gives a value; panics with the log after [`Self::PATIENCE`].
    pub fn until<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + Self::PATIENCE;
        loop {
            if let Some(value) = probe() {
                return value;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}; log:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(&mut self) -> i32 {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("running kill").success());
        let deadline = std::time::Instant::now() + Self::PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for stepwise") {
                return status.code().unwrap_or(-1);
            }
            assert!(std::time::Instant::now() < deadline, "stepwise did not stop:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LoggedProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
