//! A small headless-Chromium driver for tests, with no dependencies: it starts `chromium` with
//! the DevTools protocol on a loopback port, speaks the protocol over a minimal WebSocket client
//! built on `std::net`, and offers what the report test needs: run JavaScript, click an element
//! with real mouse events at its centre, and take a PNG screenshot. It also collects every
//! network request the page makes and every uncaught JavaScript exception.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The browser binary: `$STEPWISE_CHROMIUM`, or `chromium` (Debian's package).
pub fn binary() -> String {
    std::env::var("STEPWISE_CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// Whether a browser test named `what` should run: false (with a note) when
/// `STEPWISE_SKIP_BROWSER=1`; otherwise the browser must be installed, or the test fails with
/// how to install it.
pub fn required(what: &str) -> bool {
    if std::env::var("STEPWISE_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("SKIPPED: {what} (STEPWISE_SKIP_BROWSER=1)");
        return false;
    }
    assert!(
        available(),
        "`{}` is not installed: install Debian's `chromium` package (scripts/test installs it), \
         or set STEPWISE_SKIP_BROWSER=1 to skip this test",
        binary()
    );
    true
}

/// Whether the browser can be started at all.
pub fn available() -> bool {
    Command::new(binary())
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The common flags: headless, no sandbox (containers), nothing that talks to the network.
pub fn flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        "--window-size=1400,1000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

pub struct Browser {
    child: Child,
    ws: WebSocket,
    next_id: u64,
    /// Every URL the page requested (from `Network.requestWillBeSent`).
    pub requests: Vec<String>,
    /// Every uncaught exception (from `Runtime.exceptionThrown`).
    pub exceptions: Vec<Value>,
    log: PathBuf,
}

type Result<T> = std::result::Result<T, String>;

impl Browser {
    /// Starts the browser with a fresh profile in `work` (its log goes to `work/chromium.log`).
    pub fn launch(work: &Path) -> Result<Browser> {
        let profile = work.join("chromium-profile");
        std::fs::create_dir_all(&profile).map_err(|e| e.to_string())?;
        let log = work.join("chromium.log");
        let err = File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(binary())
            .args(flags(&profile))
            .arg("--remote-debugging-port=0")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary()))?;
        let mut browser = Browser {
            child,
            ws: WebSocket::dead(),
            next_id: 1,
            requests: Vec::new(),
            exceptions: Vec::new(),
            log: log.clone(),
        };
        // Chromium writes the port it chose into DevToolsActivePort.
        let deadline = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(profile.join("DevToolsActivePort"))
                && let Some(Ok(port)) = text.lines().next().map(str::parse::<u16>)
            {
                break port;
            }
            if let Ok(Some(status)) = browser.child.try_wait() {
                return Err(format!("chromium exited ({status}) before listening; see {}", log.display()));
            }
            if Instant::now() > deadline {
                return Err(format!("chromium did not start listening in time; see {}", log.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let page = loop {
            let list = http_get(port, "/json/list")?;
            let targets: Value = serde_json::from_str(&list).map_err(|e| format!("{e}: {list}"))?;
            let page = targets.as_array().and_then(|a| {
                a.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                    .map(str::to_owned)
            });
            match page {
                Some(p) => break p,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                None => return Err(format!("no page target: {list}")),
            }
        };
        let path = page.splitn(4, '/').nth(3).map(|p| format!("/{p}")).ok_or(format!("odd url {page}"))?;
        browser.ws = WebSocket::connect(port, &path)?;
        browser.call("Runtime.enable", json!({}))?;
        browser.call("Network.enable", json!({}))?;
        browser.call("Page.enable", json!({}))?;
        Ok(browser)
    }

    /// The browser's stderr so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends one command and waits for its answer; events that arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        self.ws.send(&json!({"id": id, "method": method, "params": params}).to_string())?;
        loop {
            let text = self.ws.receive()?;
            let msg: Value = serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
            if msg["id"] == id {
                if !msg["error"].is_null() {
                    return Err(format!("{method}: {}", msg["error"]));
                }
                return Ok(msg["result"].clone());
            }
            match msg["method"].as_str() {
                Some("Network.requestWillBeSent") => {
                    self.requests.push(msg["params"]["request"]["url"].as_str().unwrap_or("").to_owned())
                }
                Some("Runtime.exceptionThrown") => self.exceptions.push(msg["params"]["exceptionDetails"].clone()),
                _ => {}
            }
        }
    }

    /// Loads `url` and waits until `ready` (a JavaScript expression) is true.
    pub fn open(&mut self, url: &str, ready: &str) -> Result<()> {
        self.call("Page.navigate", json!({"url": url}))?;
        self.wait_for(ready)
    }

    /// The value of a JavaScript expression.
    pub fn eval(&mut self, expression: &str) -> Result<Value> {
        let r = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}))?;
        if !r["exceptionDetails"].is_null() {
            return Err(format!("{expression}: {}", r["exceptionDetails"]));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Waits (up to 20 s) until `expression` is truthy; an expression that throws is not.
    pub fn wait_for(&mut self, expression: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // While a page loads, the expression may throw (no document yet): not ready.
            let v = self
                .eval(&format!("(() => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }})()"))?;
            if v == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {expression}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks the first element matching `selector` as a user would: the mouse moves to its
    /// centre, presses and releases the left button.
    pub fn click(&mut self, selector: &str) -> Result<()> {
        let sel = serde_json::to_string(selector).map_err(|e| e.to_string())?;
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView({{block: 'center', inline: 'center'}}); const r = e.getBoundingClientRect(); \
             return {{x: r.left + r.width / 2, y: r.top + r.height / 2}}; }})()"
        ))?;
        let (Some(x), Some(y)) = (at["x"].as_f64(), at["y"].as_f64()) else {
            return Err(format!("no element matches {selector}"));
        };
        self.call("Input.dispatchMouseEvent", json!({"type": "mouseMoved", "x": x, "y": y}))?;
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1}),
            )?;
        }
        Ok(())
    }

    /// A PNG of the viewport.
    pub fn screenshot(&mut self) -> Result<Vec<u8>> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        base64_decode(r["data"].as_str().unwrap_or(""))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.send(&json!({"id": 0, "method": "Browser.close", "params": {}}).to_string());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_get(port: u16, path: &str) -> Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").map_err(|e| e.to_string())?;
    let head = read_head(&mut s)?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("GET {path}: {head}"));
    }
    let length = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("content-length")))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .ok_or_else(|| format!("GET {path}: no Content-Length in {head}"))?;
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).map_err(|e| format!("GET {path}: {e}"))?;
    String::from_utf8(body).map_err(|e| e.to_string())
}

/// Reads an HTTP response head, up to and including the blank line.
fn read_head(s: &mut TcpStream) -> Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).map_err(|e| format!("reading a response head: {e}"))?;
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Just enough of RFC 6455 for the DevTools protocol: text frames, fragments, ping, close.
struct WebSocket {
    stream: Option<TcpStream>,
}

impl WebSocket {
    fn dead() -> WebSocket {
        WebSocket { stream: None }
    }

    fn connect(port: u16, path: &str) -> Result<WebSocket> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| e.to_string())?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: c3RlcHdpc2UtdGVzdC1rZXk=\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let head = read_head(&mut s)?;
        if !head.starts_with("HTTP/1.1 101") {
            return Err(format!("handshake refused: {head}"));
        }
        Ok(WebSocket { stream: Some(s) })
    }

    fn stream(&mut self) -> Result<&mut TcpStream> {
        self.stream.as_mut().ok_or_else(|| "not connected".to_owned())
    }

    fn send_frame(&mut self, opcode: u8, payload: &[u8]) -> Result<()> {
        let mut frame = vec![0x80 | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= 0xffff {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x5a, 0x17, 0xc3, 0x9e];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream()?.write_all(&frame).map_err(|e| e.to_string())
    }

    fn send(&mut self, text: &str) -> Result<()> {
        self.send_frame(0x1, text.as_bytes())
    }

    fn receive(&mut self) -> Result<String> {
        let mut message = Vec::new();
        loop {
            let s = self.stream()?;
            let mut head = [0u8; 2];
            s.read_exact(&mut head).map_err(|e| format!("reading a frame: {e}"))?;
            let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                s.read_exact(&mut b).map_err(|e| e.to_string())?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                s.read_exact(&mut b).map_err(|e| e.to_string())?;
                len = u64::from_be_bytes(b);
            }
            let mut mask = None;
            if head[1] & 0x80 != 0 {
                let mut m = [0u8; 4];
                s.read_exact(&mut m).map_err(|e| e.to_string())?;
                mask = Some(m);
            }
            let mut payload = vec![0u8; len as usize];
            s.read_exact(&mut payload).map_err(|e| e.to_string())?;
            if let Some(m) = mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= m[i % 4];
                }
            }
            match opcode {
                0x0..=0x2 => {
                    message.extend_from_slice(&payload);
                    if fin {
                        return String::from_utf8(message).map_err(|e| e.to_string());
                    }
                }
                0x8 => return Err("the browser closed the connection".to_owned()),
                0x9 => self.send_frame(0xa, &payload)?,
                _ => {}
            }
        }
    }
}

fn base64_decode(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return Err(format!("not base64: {c}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}
