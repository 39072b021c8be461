//! The console of `stepwise serve --listen` in real headless Chromium, driven through WebDriver
//! (the `fantoccini` crate and Debian's `chromedriver`, both started by the test on loopback):
//! sign in with a token through the form, run a process now and watch its page until the run
//! ends, filter runs (the filters stay in the URL), open a run and a step's kept documents, pause
//! a schedule; then, signed in as an admin, the tokens page and the audit trail. On every page axe-core (npm, installed by `scripts/test`) must find no serious or
//! critical accessibility violation. The test writes screenshots of the main pages to
//! `target/console-screenshots/`, and with `STEPWISE_UPDATE_SCREENSHOTS=1` to `docs/console/`.
//! States are awaited with a deadline; nothing is timed.

use std::fs::File;
use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use futures::FutureExt;
use serde_json::{Value, json};

use crate::console::{Console, EVERY_SECOND, KEPT, create_token_with, fast, run_to_end};
use crate::support::{Dir, repo};
use crate::testmode::browser;

/// Where `scripts/test` installs axe-core: `npm install --prefix target/axe-core axe-core@4`.
const AXE_JS: &str = "target/axe-core/node_modules/axe-core/axe.min.js";
/// Where every run of the test leaves its screenshots.
const SCREENSHOTS: &str = "target/console-screenshots";
/// Where `STEPWISE_UPDATE_SCREENSHOTS=1` also writes them, for docs/console.md.
const DOC_SCREENSHOTS: &str = "docs/console";
/// The browser window: wide enough for the tables, small enough for light PNGs.
const WINDOW: (u32, u32) = (1280, 900);
const PATIENCE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(200);

/// The WebDriver server: `$STEPWISE_CHROMEDRIVER`, or `chromedriver` (Debian's
/// `chromium-driver`).
fn driver_binary() -> String {
    std::env::var("STEPWISE_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_owned())
}

/// A `chromedriver` on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    fn start(work: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
        let log = work.join("chromedriver.log");
        let out = File::create(&log).expect("chromedriver.log");
        let err = out.try_clone().expect("chromedriver.log");
        let child = Command::new(driver_binary())
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".to_owned()])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{}` ({e}): install Debian's `chromium-driver` (scripts/test installs it), \
                     or set STEPWISE_SKIP_BROWSER=1 to skip this test",
                    driver_binary()
                )
            });
        let mut driver = Driver { child, port, log };
        let deadline = Instant::now() + PATIENCE;
        // chromedriver keeps connections open (so a bare HTTP/1.1 read never ends): it is ready
        // once it says so and takes a connection.
        let ready = |driver: &Driver| {
            driver.log().contains("started successfully") && TcpStream::connect(("127.0.0.1", port)).is_ok()
        };
        while !ready(&driver) {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited ({status}):\n{}", driver.log());
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer in time:\n{}", driver.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Headless Chromium with the flags of the other browser tests, in a `WINDOW`-sized window.
fn capabilities(profile: &Path) -> Capabilities {
    let args: Vec<String> = browser::flags(profile)
        .into_iter()
        .filter(|flag| !flag.starts_with("--window-size="))
        .chain([format!("--window-size={},{}", WINDOW.0, WINDOW.1)])
        .collect();
    let binary = browser::binary();
    // chromedriver wants a path; `chromium` (the default) is looked up on the PATH.
    let binary = if binary.contains('/') { binary } else { which(&binary).unwrap_or(binary) };
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": binary, "args": args },
    });
    match caps {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

fn which(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file()).map(|p| p.display().to_string())
}

/// What axe reports of a page: each violation's rule, impact, help and the nodes it names.
const AXE_RUN: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] }).then(
  (r) => done({ violations: r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(' ')),
  })) }),
  (e) => done({ error: String((e && e.message) || e) }),
);
"#;

/// A browser session on the console: pages by path, waits with a deadline, the axe check and
/// screenshots. Accessibility findings are gathered and asserted at the end, all at once.
struct Session {
    client: Client,
    base: String,
    axe: String,
    shots: Vec<PathBuf>,
    serious: Vec<String>,
    pages_checked: Vec<String>,
}

impl Session {
    async fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.client.goto(&url).await.unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The path and query of the page shown.
    async fn here(&self) -> String {
        let url = self.client.current_url().await.expect("the current URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn find(&self, css: &str) -> Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` on {}: {e}\n{}", self.here().await, self.body().await),
        }
    }

    /// Clicks `css`, a link or a form's button, and waits until the page it loads is there: the
    /// old page's root is gone and the new document is complete. (WebDriver's click does not
    /// always wait for the navigation it starts: Chromium 156's does not.)
    async fn follow(&self, css: &str) {
        let old = self.find("html").await;
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let gone = matches!(old.tag_name().await, Err(e) if e.is_stale_element_reference());
            if gone {
                let state = self.client.execute("return document.readyState", vec![]).await;
                if matches!(state, Ok(Value::String(s)) if s == "complete") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "clicking `{css}` on {} loaded no page", self.here().await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Types `text` into the field `css` after clearing it.
    async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap_or_else(|e| panic!("clearing `{css}`: {e}"));
        field.send_keys(text).await.unwrap_or_else(|e| panic!("typing into `{css}`: {e}"));
    }

    /// The visible text of the page's body.
    async fn body(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until `probe` finds what it wants on the page; `reload` reloads between tries (for
    /// pages that do not reload themselves).
    async fn until(&self, what: &str, reload: bool, probe: impl AsyncProbe) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = probe.probe(&self.client).await {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on {}:\n{}",
                self.here().await,
                self.body().await
            );
            tokio::time::sleep(POLL).await;
            if reload {
                let _ = self.client.refresh().await;
            }
        }
    }

    /// Runs axe-core on the page; keeps its serious and critical violations, notes the others.
    async fn check_accessibility(&mut self, page: &str) {
        let loaded = self.client.execute("return typeof axe !== 'undefined'", vec![]).await.expect("probing axe");
        if loaded != Value::Bool(true) {
            self.client.execute(&self.axe, vec![]).await.unwrap_or_else(|e| panic!("injecting axe-core: {e}"));
        }
        let report = self.client.execute_async(AXE_RUN, vec![]).await.unwrap_or_else(|e| panic!("axe.run: {e}"));
        assert!(report["error"].is_null(), "axe.run failed on {page}: {report}");
        let violations = report["violations"].as_array().cloned().unwrap_or_default();
        for v in violations {
            let line = format!(
                "{page} ({}): {} [{}] {}: {}",
                self.here().await,
                v["id"].as_str().unwrap_or("?"),
                v["impact"].as_str().unwrap_or("?"),
                v["help"].as_str().unwrap_or("?"),
                v["nodes"]
                    .as_array()
                    .map(|n| n.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            );
            if matches!(v["impact"].as_str(), Some("serious" | "critical")) {
                self.serious.push(line);
            } else {
                eprintln!("axe (not serious): {line}");
            }
        }
        self.pages_checked.push(page.to_owned());
    }

    /// axe sees a known serious violation (a button without a name, put into the page for the
    /// check and taken out again): the check can fail.
    async fn axe_sees_a_broken_button(&mut self) {
        self.client
            .execute("const b = document.createElement('button'); b.id = 'axe-probe'; document.body.append(b);", vec![])
            .await
            .expect("adding a nameless button");
        let before = self.serious.len();
        self.check_accessibility("probe").await;
        self.client.execute("document.getElementById('axe-probe').remove();", vec![]).await.expect("removing it");
        let found: Vec<String> = self.serious.drain(before..).collect();
        self.pages_checked.pop();
        assert!(
            found.iter().any(|f| f.contains("button-name") && f.contains("#axe-probe")),
            "axe did not report a button without a name: {found:?}"
        );
    }

    /// Sizes the window so that the page's viewport is `WINDOW` (the window's frame differs
    /// between browser versions).
    async fn fit_viewport(&self) {
        let inner = self.client.execute("return [window.innerWidth, window.innerHeight];", vec![]).await.unwrap();
        let (outer_w, outer_h) = self.client.get_window_size().await.unwrap();
        let (w, h) = (inner[0].as_u64().unwrap_or(0), inner[1].as_u64().unwrap_or(0));
        let width = u32::try_from(outer_w.saturating_sub(w)).unwrap_or(0) + WINDOW.0;
        let height = u32::try_from(outer_h.saturating_sub(h)).unwrap_or(0) + WINDOW.1;
        self.client.set_window_size(width, height).await.unwrap_or_else(|e| panic!("sizing the window: {e}"));
    }

    /// A PNG of the window, written as `NAME.png` into each screenshot directory.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap_or_else(|e| panic!("screenshot of {name}: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "the screenshot of {name} is no PNG");
        for dir in &self.shots {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            let path = dir.join(format!("{name}.png"));
            std::fs::write(&path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
}

/// Something to look for on the page: `Some(what it found)` once it is there.
trait AsyncProbe {
    async fn probe(&self, client: &Client) -> Option<String>;
}

/// The text of the first element matching a selector, once it contains a needle.
struct TextOf<'a>(&'a str, &'a str);

impl AsyncProbe for TextOf<'_> {
    async fn probe(&self, client: &Client) -> Option<String> {
        let element = client.find(Locator::Css(self.0)).await.ok()?;
        let text = element.text().await.ok()?;
        text.contains(self.1).then_some(text)
    }
}

/// The first element matching a selector is there (its text).
struct Present<'a>(&'a str);

impl AsyncProbe for Present<'_> {
    async fn probe(&self, client: &Client) -> Option<String> {
        client.find(Locator::Css(self.0)).await.ok()?.text().await.ok()
    }
}

fn paused(console: &Console, token: &str, process: &str) -> Value {
    let processes = console.json("/api/v1/processes", token);
    processes.as_array().unwrap().iter().find(|p| p["name"] == process).map(|p| p["paused"].clone()).unwrap_or_default()
}

#[test]
fn the_console_works_in_chromium_and_axe_finds_no_serious_violation() {
    if !browser::required("the console's browser test") {
        return;
    }
    let axe_js = repo().join(AXE_JS);
    let axe = std::fs::read_to_string(&axe_js).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): run `scripts/test --setup-only` (it installs axe-core from npm), \
             or set STEPWISE_SKIP_BROWSER=1 to skip this test",
            axe_js.display()
        )
    });
    let dir = Dir::new();
    dir.write("procs/kept.yaml", KEPT);
    dir.write("procs/clock.yaml", fast("clock", EVERY_SECOND));
    let token = create_token_with(&dir, "ops", "operator", &["--view-data"]);
    let admin = create_token_with(&dir, "boss", "admin", &[]);
    let console = Console::start(&dir);
    // A first run of `kept`, so that the browser's run has one to compare with.
    let first = run_to_end(&console, &token, "kept", r#"{"properties": {"who": "ada"}}"#);
    assert_eq!(first["status"], "COMPLETE", "{first}");
    console.until("a fire of 'clock'", || {
        let runs = console.json("/api/v1/runs?process=clock&limit=1", &token);
        (!runs.as_array().unwrap().is_empty()).then_some(())
    });
    let mut shots = vec![repo().join(SCREENSHOTS)];
    if std::env::var("STEPWISE_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        shots.push(repo().join(DOC_SCREENSHOTS));
    }
    let driver = Driver::start(dir.path());
    let profile = dir.join("chromium-profile");
    std::fs::create_dir_all(&profile).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities(&profile))
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| panic!("starting Chromium through chromedriver: {e}\n{}", driver.log()));
        let base = format!("http://127.0.0.1:{}", console.port);
        let mut session =
            Session { client: client.clone(), base, axe, shots, serious: Vec::new(), pages_checked: Vec::new() };
        // Close the browser whatever happens, then report.
        let outcome = AssertUnwindSafe(scenario(&mut session, &console, &token, &admin)).catch_unwind().await;
        let _ = client.close().await;
        if let Err(panic) = outcome {
            // The log first, the failure last: CI shows the end of what a test printed.
            eprintln!("serve's log:\n{}", console.log());
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(a panic without a message)");
            panic!("the console scenario failed: {message}");
        }
        assert!(
            session.serious.is_empty(),
            "axe-core found serious or critical accessibility violations:\n{}",
            session.serious.join("\n")
        );
        assert_eq!(
            session.pages_checked,
            [
                "sign-in",
                "processes",
                "process",
                "runs",
                "run",
                "documents",
                "process with schedules",
                "tokens",
                "audit"
            ]
        );
    });
}

async fn scenario(s: &mut Session, console: &Console, token: &str, admin: &str) {
    sign_in(s, token).await;
    s.check_accessibility("processes").await;
    s.screenshot("processes").await;
    let run_id = run_now(s).await;
    filter_runs(s, &run_id).await;
    let kept = open_run(s, &run_id).await;
    open_documents(s, &kept).await;
    pause_schedule(s, console, token).await;
    admin_pages(s, admin).await;
}

/// Signs in through /login; the page's Content-Security-Policy holds in the browser.
async fn sign_in(s: &mut Session, token: &str) {
    s.goto("/").await;
    assert_eq!(s.here().await, "/login", "without a session the browser is sent to sign in");
    s.fit_viewport().await;
    s.axe_sees_a_broken_button().await;
    s.check_accessibility("sign-in").await;
    s.fill("input#token", token).await;
    s.follow("form[action='/login'] button[type=submit]").await;
    assert_eq!(s.here().await, "/", "{}", s.body().await);
    let nav = s.find("nav").await.text().await.unwrap();
    assert!(nav.contains("Signed in as ops (operator, sees data)"), "{nav}");
    // An inline script put into the page does not run: the CSP is in force. (WebDriver's own
    // scripts, such as axe below, are the browser's automation, not the page's.)
    let ran = s
        .client
        .execute(
            "const el = document.createElement('script'); el.textContent = 'window.inlineRan = true;'; \
             document.body.append(el); return window.inlineRan === true;",
            vec![],
        )
        .await
        .expect("probing the CSP");
    assert_eq!(ran, Value::Bool(false), "an inline script ran despite the Content-Security-Policy");
}

/// Runs `kept` now from its page with a property value, and watches the run's page (which
/// reloads itself while the run goes) until the run is complete. The run's id.
async fn run_now(s: &mut Session) -> String {
    s.follow("a[href='/processes/kept']").await;
    assert_eq!(s.here().await, "/processes/kept");
    s.check_accessibility("process").await;
    s.screenshot("process").await;
    s.fill("form[action='/processes/kept/run'] input[name='property.who']", "grace").await;
    s.follow("form[action='/processes/kept/run'] button[type=submit]").await;
    let here = s.here().await;
    let run_id = here.strip_prefix("/runs/").unwrap_or_else(|| panic!("run now led to {here}")).to_owned();
    let status = s.until("the run to complete", false, TextOf("dd a.status", "COMPLETE")).await;
    assert_eq!(status, "COMPLETE");
    assert_eq!(s.here().await, format!("/runs/{run_id}"));
    run_id
}

/// Filters the runs with the runs page's form: the filters land in the URL, and only `kept`'s
/// manual runs are listed, the browser's among them.
async fn filter_runs(s: &mut Session, run_id: &str) {
    s.follow("nav a[href='/runs']").await;
    let form = "form[action='/runs']";
    s.fill(&format!("{form} input[name=process]"), "kept").await;
    s.find(&format!("{form} select[name=status]")).await.select_by_value("COMPLETE").await.unwrap();
    s.find(&format!("{form} select[name=trigger]")).await.select_by_value("manual").await.unwrap();
    s.follow(&format!("{form} button[type=submit]")).await;
    let here = s.here().await;
    assert!(here.starts_with("/runs?process=kept&status=COMPLETE&trigger=manual"), "{here}");
    let rows = s.client.find_all(Locator::Css("tbody tr")).await.unwrap();
    let mut listed = Vec::new();
    for row in rows {
        listed.push(row.text().await.unwrap());
    }
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|r| r.contains("kept") && r.contains("manual") && r.contains("COMPLETE")), "{listed:?}");
    // The form shows the filters it was given.
    let status = s.find(&format!("{form} select[name=status]")).await.prop("value").await.unwrap();
    assert_eq!(status.as_deref(), Some("COMPLETE"));
    s.check_accessibility("runs").await;
    s.screenshot("runs").await;
    // A bookmark of the search shows the same runs.
    s.goto(&here).await;
    assert_eq!(s.client.find_all(Locator::Css("tbody tr")).await.unwrap().len(), 2);
    s.find(&format!("tbody td a[href='/runs/{run_id}']")).await;
}

/// Opens the run from the list; its steps, and the link to the documents `done` kept.
async fn open_run(s: &mut Session, run_id: &str) -> String {
    s.follow(&format!("tbody td:first-child a[href='/runs/{run_id}']")).await;
    assert_eq!(s.here().await, format!("/runs/{run_id}"));
    let kept = format!("a[href='/runs/{run_id}/steps/done']");
    let link = s.until("the documents `done` kept", true, Present(&kept)).await;
    assert_eq!(link, "7 kept");
    let facts = s.find("dl.facts").await.text().await.unwrap();
    assert!(facts.contains("COMPLETE") && facts.contains("manual"), "{facts}");
    s.check_accessibility("run").await;
    s.screenshot("run").await;
    kept
}

/// Follows the "7 kept" link: the documents that entered `done`, with the property value.
async fn open_documents(s: &mut Session, link: &str) {
    s.follow(link).await;
    let here = s.here().await;
    assert!(here.ends_with("/steps/done"), "{here}");
    let sections = s.client.find_all(Locator::Css("main section")).await.unwrap();
    assert_eq!(sections.len(), 7);
    let first = s.find("main section pre").await.text().await.unwrap();
    let document: Value = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(document, json!({"n": 1, "who": "grace"}));
    s.check_accessibility("documents").await;
    s.screenshot("documents").await;
}

/// Pauses `clock`'s schedule with its page's button: the page and the API say paused.
async fn pause_schedule(s: &mut Session, console: &Console, token: &str) {
    s.follow("nav a[href='/']").await;
    s.follow("a[href='/processes/clock']").await;
    assert_eq!(paused(console, token, "clock"), Value::Bool(false));
    s.follow("form[action='/processes/clock/pause'] button[type=submit]").await;
    assert_eq!(s.here().await, "/processes/clock");
    let facts = s.find("dl.facts").await.text().await.unwrap();
    assert!(facts.contains("Schedules\npaused") || facts.contains("Schedules paused"), "{facts}");
    s.find("form[action='/processes/clock/resume'] button[type=submit]").await;
    assert_eq!(paused(console, token, "clock"), Value::Bool(true));
    s.check_accessibility("process with schedules").await;
}

/// Signs out, signs in as an admin: the tokens page (a revoke button per token) and the audit
/// trail, where the operator's pause shows.
async fn admin_pages(s: &mut Session, admin: &str) {
    s.follow("nav form[action='/logout'] button[type=submit]").await;
    assert_eq!(s.here().await, "/login");
    s.fill("input#token", admin).await;
    s.follow("form[action='/login'] button[type=submit]").await;
    s.follow("nav a[href='/tokens']").await;
    s.find("form[action='/tokens/ops/revoke'] button[type=submit]").await;
    s.check_accessibility("tokens").await;
    s.screenshot("tokens").await;
    s.follow("nav a[href='/audit']").await;
    let trail = s.find("main table").await.text().await.unwrap();
    assert!(trail.contains("pause") && trail.contains("clock") && trail.contains("ops"), "{trail}");
    s.check_accessibility("audit").await;
    s.screenshot("audit").await;
}
