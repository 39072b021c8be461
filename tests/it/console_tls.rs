//! The console over HTTPS (`stepwise serve --listen ADDR --tls-cert FILE --tls-key FILE`,
//! issue 16) through the real binary, with a self-signed certificate made by the test (rcgen):
//! `/health` and the API answer a client that trusts that certificate, the sign-in address says
//! https and signs in over HTTP/2, plain HTTP on the port gets no answer, SIGTERM still stops serve with exit 0, and bad
//! flags or files are refused with the file named and the key's contents never shown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::support::{Dir, LoggedProcess, free_port, stepwise};

const PROCESS: &str = "name: manual\nstart:\n  type: no_data\n  next: done\nsteps:\n  done:\n    type: stop\n";

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM).
fn self_signed() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("a self-signed certificate");
    (made.cert.pem(), made.signing_key.serialize_pem())
}

/// `stepwise serve procs --listen 127.0.0.1:PORT --tls-cert cert.pem --tls-key key.pem`;
/// killed when dropped.
struct TlsConsole {
    process: LoggedProcess,
    port: u16,
}

impl TlsConsole {
    fn start(dir: &Dir) -> TlsConsole {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let args = ["--log", "info", "serve", "procs", "--state", "state.db", "--listen", &addr];
        let mut command = Command::new(env!("CARGO_BIN_EXE_stepwise"));
        command
            .current_dir(dir.path())
            .args(args)
            .args(["--tls-cert", "cert.pem", "--tls-key", "key.pem"])
            .env_remove("STEPWISE_LOG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        TlsConsole { process: LoggedProcess::spawn(command), port }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    fn until<T>(&self, what: &str, probe: impl FnMut() -> Option<T>) -> T {
        self.process.until(what, probe)
    }

    fn terminate(&mut self) -> i32 {
        self.process.terminate()
    }
}

/// A client that trusts only `cert_pem`.
fn client(cert_pem: &str) -> reqwest::blocking::Client {
    let cert = reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("the test certificate");
    reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("a client")
}

/// What a plain HTTP request to the port gets back (up to EOF or an error).
fn plain_http(port: u16) -> Vec<u8> {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return Vec::new() };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return Vec::new();
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn console_serves_https_with_the_given_certificate() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", PROCESS);
    let (cert, key) = self_signed();
    dir.write("cert.pem", &cert);
    dir.write("key.pem", &key);
    let mut console = TlsConsole::start(&dir);
    let port = console.port;
    let log = console.until("the sign-in address", || {
        let log = console.log();
        log.contains("/login?code=").then_some(log)
    });
    let prefix = format!("https://127.0.0.1:{port}/login?code=");
    let code = log.split(&prefix).nth(1).and_then(|rest| rest.split_whitespace().next());
    let code = code.unwrap_or_else(|| panic!("no {prefix} in the log:\n{log}")).to_owned();
    assert!(code.starts_with("stwc_"), "{log}");

    let https = client(&cert);
    let health = console.until("/health over HTTPS", || {
        https.get(format!("https://127.0.0.1:{port}/health")).send().ok().filter(|r| r.status() == 200)
    });
    let health: serde_json::Value = health.json().expect("/health answers JSON");
    assert!(health.is_object(), "{health}");
    // Without a token the API refuses.
    let refused = https.get(format!("https://127.0.0.1:{port}/api/v1/runs")).send().expect("GET /api/v1/runs");
    assert_eq!(refused.status(), 401);
    let no_redirects = reqwest::blocking::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A browser speaks HTTP/2 over TLS, where the authority is no `Host` header, and sends its
    // page's `Origin` with each form: the console's own origin is let through, another refused
    // (and the refused request does not use up the one-time code).
    let sign_in = |origin: &str| {
        no_redirects
            .post(format!("https://127.0.0.1:{port}/login"))
            .header("Origin", origin)
            .form(&[("code", code.as_str())])
            .send()
            .expect("POST /login over HTTPS")
    };
    let elsewhere = sign_in("https://evil.example");
    assert_eq!((elsewhere.version(), elsewhere.status().as_u16()), (reqwest::Version::HTTP_2, 403));
    let signed_in = sign_in(&format!("https://127.0.0.1:{port}"));
    assert_eq!((signed_in.version(), signed_in.status().as_u16()), (reqwest::Version::HTTP_2, 303));
    // Over HTTPS the session cookie is Secure: a browser never sends it over plain HTTP.
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("; Secure"), "{cookie}");
    // The API by the certificate's other name, with the session.
    let session = cookie.split(';').next().unwrap();
    let tokens = https
        .get(format!("https://localhost:{port}/api/v1/tokens"))
        .header("Cookie", session)
        .send()
        .expect("GET /api/v1/tokens over HTTPS");
    assert_eq!(tokens.status(), 200);
    let tokens: serde_json::Value = tokens.json().expect("JSON");
    assert_eq!(tokens[0]["name"], "admin", "{tokens}");

    // A client that does not trust the certificate gets no answer.
    let stranger = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("a client");
    assert!(stranger.get(format!("https://127.0.0.1:{port}/health")).send().is_err());
    // Plain HTTP to the port: no HTTP answer, nothing of the node's status.
    let answer = plain_http(port);
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));
    assert!(!String::from_utf8_lossy(&answer).contains("node"), "{}", String::from_utf8_lossy(&answer));

    assert_eq!(console.terminate(), 0, "{}", console.log());
    let log = console.log();
    let key_body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(key_body.iter().all(|line| !log.contains(line)), "the key is in the log:\n{log}");
}

/// `stepwise serve procs --listen 127.0.0.1:1 EXTRA...` in `dir`, expected to stop at once.
fn refused(dir: &Dir, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["serve", "procs", "--state", "state.db", "--listen", "127.0.0.1:1"];
    args.extend_from_slice(extra);
    let out = stepwise(dir.path(), &args);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{out:?}");
    out
}

#[test]
fn tls_flags_and_files_refuse_bad_input() {
    let dir = Dir::new();
    dir.write("procs/manual.yaml", PROCESS);
    let (cert, key) = self_signed();
    dir.write("cert.pem", &cert);
    dir.write("key.pem", &key);

    // Both flags or neither: a usage error naming the missing one.
    let only_cert = refused(&dir, &["--tls-cert", "cert.pem"]);
    assert!(only_cert.code == 2 && only_cert.stderr.contains("--tls-key"), "{only_cert:?}");
    let only_key = refused(&dir, &["--tls-key", "key.pem"]);
    assert!(only_key.code == 2 && only_key.stderr.contains("--tls-cert"), "{only_key:?}");

    // A key file that is not there.
    let missing = refused(&dir, &["--tls-cert", "cert.pem", "--tls-key", "nothere.pem"]);
    assert!(missing.stderr.contains("--tls-key 'nothere.pem'"), "{missing:?}");
    // A certificate file of garbage.
    dir.write("garbage.pem", "this is not a certificate\n");
    let garbage = refused(&dir, &["--tls-cert", "garbage.pem", "--tls-key", "key.pem"]);
    assert!(garbage.stderr.contains("--tls-cert 'garbage.pem'"), "{garbage:?}");
    // A key file of garbage that looks like a key: named, its contents never shown.
    let secret = "c2VjcmV0IGtleSBtYXRlcmlhbA@@SECRETKEYLINE";
    dir.write("bad-key.pem", format!("-----BEGIN PRIVATE KEY-----\n{secret}\n-----END PRIVATE KEY-----\n"));
    let bad_key = refused(&dir, &["--tls-cert", "cert.pem", "--tls-key", "bad-key.pem"]);
    assert!(bad_key.stderr.contains("--tls-key 'bad-key.pem'"), "{bad_key:?}");
    assert!(!bad_key.stderr.contains("SECRETKEYLINE") && !bad_key.stderr.contains("c2VjcmV0"), "{bad_key:?}");
    // A certificate as the key.
    let cert_as_key = refused(&dir, &["--tls-cert", "cert.pem", "--tls-key", "cert.pem"]);
    assert!(cert_as_key.stderr.contains("--tls-key 'cert.pem'"), "{cert_as_key:?}");
    // A key that is not the certificate's.
    let (_, other_key) = self_signed();
    dir.write("other-key.pem", &other_key);
    let mismatch = refused(&dir, &["--tls-cert", "cert.pem", "--tls-key", "other-key.pem"]);
    assert!(mismatch.stderr.contains("other-key.pem") && mismatch.stderr.contains("cert.pem"), "{mismatch:?}");
    let other_body: Vec<&str> = other_key.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(other_body.iter().all(|line| !mismatch.stderr.contains(line)), "{mismatch:?}");
}
