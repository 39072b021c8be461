//! `stepwise graph --format mermaid` renders in Mermaid: every shipped process's graph goes through
//! the real Mermaid library (from npm, installed into `target/mermaid-js` by `scripts/test`) in headless
//! Chromium, which must produce an SVG, not an error, with every step as a node.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{Dir, repo, stepwise};
// The report test's std-only DevTools client.
use crate::testmode::browser;

/// Where `scripts/test` installs Mermaid: `npm install --prefix target/mermaid-js mermaid@11`.
const MERMAID_JS: &str = "target/mermaid-js/node_modules/mermaid/dist/mermaid.min.js";

/// The page: Mermaid, and `renderGraph(text)`, which renders `text` and reports what came out.
/// Mermaid signals bad syntax two ways, both caught: `render` throws, or (depending on version
/// and settings) it returns or leaves an error diagram ("Syntax error in text").
const HARNESS: &str = r#"
<script>
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
let renders = 0;
window.renderGraph = async (text) => {
  const id = 'g' + (++renders);
  const out = document.getElementById('out');
  out.replaceChildren();
  // Error diagrams left by earlier renders (the broken control) are not this render's.
  for (const el of document.querySelectorAll('svg[aria-roledescription="error"]')) {
    (el.parentElement.id.startsWith('d') ? el.parentElement : el).remove();
  }
  let svg;
  try {
    ({ svg } = await mermaid.render(id, text));
  } catch (e) {
    return { error: 'mermaid.render threw: ' + String((e && e.message) || e) };
  }
  const isError = (t) => /Syntax error|Parse error/i.test(t);
  // An error diagram Mermaid may have left in the page rather than returned.
  for (const el of document.querySelectorAll('svg[aria-roledescription="error"], #d' + id + ', #' + id)) {
    if (isError(el.textContent)) return { error: 'an error diagram was left in the page: ' + el.textContent };
  }
  out.innerHTML = svg;
  const el = out.querySelector('svg');
  if (!el) return { error: 'no <svg> in the output', svg };
  const role = el.getAttribute('aria-roledescription');
  if (role === 'error' || isError(el.textContent)) {
    return { error: 'Mermaid rendered an error diagram: ' + el.textContent, svg };
  }
  // Each node's label, as lines (a <br> ends a line).
  const nodes = [...el.querySelectorAll('g.node')].map((g) => {
    const label = (g.querySelector('.nodeLabel') || g.querySelector('text') || g).cloneNode(true);
    for (const br of label.querySelectorAll('br')) br.replaceWith('\n');
    for (const t of label.querySelectorAll('tspan')) t.append('\n');
    return label.textContent.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  });
  const edges = el.querySelectorAll('path.flowchart-link').length;
  return { svg, role, nodes, edges };
};
window.harnessReady = true;
</script>
"#;

/// `file://` URL of an absolute path (percent-encoding all but unreserved characters and `/`).
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.to_str().expect("a UTF-8 path").bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Renders one Mermaid text in the page; `Ok` is the harness's result object.
fn render(b: &mut browser::Browser, text: &str) -> Result<Value, String> {
    let expression = format!("renderGraph({})", serde_json::to_string(text).unwrap());
    let r =
        b.call("Runtime.evaluate", json!({"expression": expression, "awaitPromise": true, "returnByValue": true}))?;
    if !r["exceptionDetails"].is_null() {
        return Err(format!("renderGraph threw: {}", r["exceptionDetails"]));
    }
    let result = r["result"]["value"].clone();
    match result["error"].as_str() {
        Some(e) => Err(e.to_owned()),
        None => Ok(result),
    }
}

/// Step ids of a process file, read from the YAML itself (not from the renderer under test).
fn step_ids(path: &Path) -> Vec<String> {
    let loaded = spec::load(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let steps = loaded.value["steps"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    std::iter::once("start".to_owned()).chain(steps).collect()
}

#[test]
fn every_shipped_process_graph_renders_in_mermaid() {
    if !browser::required("the Mermaid rendering test") {
        return;
    }
    let mermaid_js = repo().join(MERMAID_JS);
    assert!(
        mermaid_js.is_file(),
        "{} is missing: run `scripts/test` (it installs it), \
         or `npm install --prefix target/mermaid-js mermaid@11`, or set STEPWISE_SKIP_BROWSER=1 to skip this test",
        mermaid_js.display()
    );

    let mut processes: Vec<_> = std::fs::read_dir(repo().join("processes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    processes.sort();
    assert!(processes.len() >= 5, "{processes:?}");

    let dir = Dir::new();
    let page = dir.write(
        "mermaid.html",
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>graph</title>\n\
             <script src=\"{}\"></script>\n</head><body><div id=\"out\"></div>\n{HARNESS}</body></html>\n",
            file_url(&mermaid_js)
        ),
    );
    let mut b = browser::Browser::launch(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    b.open(&file_url(&page), "window.harnessReady === true && typeof mermaid === 'object'")
        .unwrap_or_else(|e| panic!("{e}\nexceptions: {:?}\n{}", b.exceptions, b.log()));

    // The harness does catch Mermaid's errors: a broken diagram is reported, not passed.
    let broken = render(&mut b, "flowchart TD\n    s_a[\"unclosed\n    s_a --> \n");
    assert!(broken.is_err(), "a broken diagram rendered: {broken:?}");

    let mut failures = Vec::new();
    for process in &processes {
        let name = process.file_name().unwrap().to_string_lossy().into_owned();
        let run = stepwise(dir.path(), &["graph", process.to_str().unwrap(), "--format", "mermaid"]);
        assert_eq!(run.code, 0, "{name}: {run:?}");
        let result = match render(&mut b, &run.stdout) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: {e}\n--- mermaid text\n{}", run.stdout));
                continue;
            }
        };
        let svg = result["svg"].as_str().unwrap_or("");
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{name}: not an SVG: {svg}");
        assert_eq!(result["role"], "flowchart-v2", "{name}");

        let labels: Vec<Vec<String>> = serde_json::from_value(result["nodes"].clone()).unwrap();
        let ids = step_ids(process);
        assert_eq!(labels.len(), ids.len(), "{name}: nodes {labels:?}, steps {ids:?}");
        for id in &ids {
            assert!(
                labels.iter().any(|l| l.first() == Some(id)),
                "{name}: step {id} is not a node label; labels: {labels:?}"
            );
        }
        let arrows = run.stdout.lines().filter(|l| l.contains(" --> ") || l.contains(" -->|")).count();
        assert_eq!(result["edges"], arrows, "{name}: edges in the SVG");
    }
    assert!(failures.is_empty(), "Mermaid could not render:\n{}", failures.join("\n\n"));

    assert!(b.exceptions.is_empty(), "JavaScript exceptions: {:?}", b.exceptions);
    assert!(
        b.requests.iter().all(|u| u.starts_with("file://") || u.starts_with("data:") || u == "about:blank"),
        "the page made network requests: {:?}",
        b.requests
    );
}
