//! Validating a generated 10,000-step process, against the baseline of only parsing its YAML.
//!
//! Run with `cargo bench -p compiler --bench validate`.

use std::fmt::Write;
use std::time::{Duration, Instant};

fn generate(n: usize) -> String {
    let mut s = String::from(
        "name: big\nconnections:\n  out: {type: disk, directory: out}\nstart: {type: no_data, next: s0}\nsteps:\n",
    );
    for i in 0..n {
        let next = if i + 1 == n { "end".to_owned() } else { format!("s{}", i + 1) };
        match i % 4 {
            0 => writeln!(s, "  s{i}: {{type: map, jq: '{{a: .x, b: (.y // {i}), c: [.z[]? | select(. > {i})] | length}}', next: {next}}}").unwrap(),
            1 => writeln!(
                s,
                "  s{i}:\n    type: message\n    template: \"'{{\\\"n\\\": '{{1}}'}}'\"\n    parameters: [{{json: /a, default: \"0\"}}]\n    next: {next}"
            )
            .unwrap(),
            2 => writeln!(s, "  s{i}: {{type: set_properties, document: {{p: [{{static: v}}]}}, next: {next}}}").unwrap(),
            _ => writeln!(s, "  s{i}: {{type: notify, template: \"at {{1}}\", parameters: [{{execution: run_id}}], next: {next}}}")
                .unwrap(),
        }
    }
    s.push_str("  end: {type: connector, connection: out, action: send}\n");
    s
}

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let n = 10_000;
    let text = generate(n);
    let catalog = compiler::StaticCatalog::new().with(
        "disk",
        &[compiler::Operation { object: "", action: "get" }, compiler::Operation { object: "", action: "send" }],
    );
    let compiled = compiler::compile(text.as_bytes(), &catalog);
    assert!(!compiled.has_errors(), "{:?}", &compiled.diagnostics[..compiled.diagnostics.len().min(3)]);
    let baseline = best_of(5, || {
        let v: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        std::hint::black_box(v);
    });
    let full = best_of(5, || {
        let c = compiler::compile(text.as_bytes(), &catalog);
        std::hint::black_box(c.plan.is_some());
    });
    println!("steps: {n}, file: {} bytes", text.len());
    println!("baseline (serde_yaml parse only): {:.1} ms", baseline.as_secs_f64() * 1e3);
    println!("full validation (load, schema, compile, graph checks): {:.1} ms", full.as_secs_f64() * 1e3);
    println!("ratio full / baseline: {:.2}", full.as_secs_f64() / baseline.as_secs_f64());
}
