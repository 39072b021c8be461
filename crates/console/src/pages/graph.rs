//! A process's graph as inline SVG, laid out by layout-rs (a Rust implementation of Graphviz's
//! layered layout), each step filled by what it did in a run. The SVG carries no script and no
//! style element (the pages' policy allows neither); `console.css` styles its text.

use maud::{Markup, PreEscaped, html};
use scheduler::StepView;

/// What a step did in a run, and its fill colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// No run to colour by (the process page).
    Plain,
    /// Documents entered it and none failed.
    Ran,
    /// Some of its documents failed.
    Failed,
    /// Nothing entered it.
    NotReached,
}

impl Outcome {
    fn fill(self) -> &'static str {
        match self {
            Outcome::Plain => "#f6f8fa",
            Outcome::Ran => "#cdebd0",
            Outcome::Failed => "#f8c9c9",
            Outcome::NotReached => "#ffffff",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Outcome::Plain => "",
            Outcome::Ran => "ran",
            Outcome::Failed => "failed",
            Outcome::NotReached => "not reached",
        }
    }
}

/// The graph's DOT text: step ids are `[a-z0-9_]`, types and edge labels fixed words, so
/// nothing needs escaping but is quoted all the same.
fn dot(steps: &[StepView], outcome: &dyn Fn(&str) -> Outcome) -> String {
    let quote = |s: &str| s.replace(['"', '\\'], "_");
    let mut text = String::from("digraph { node [shape=box];\n");
    for step in steps {
        // The start step is called `start` and is of type `start`: one line says it.
        let label =
            if step.kind == step.id { quote(&step.id) } else { format!("{}\\n{}", quote(&step.kind), quote(&step.id)) };
        let fill = outcome(&step.id).fill();
        text.push_str(&format!("  \"{}\" [label=\"{label}\" fillcolor=\"{fill}\" style=filled];\n", quote(&step.id)));
    }
    for step in steps {
        for (to, label) in &step.next {
            let (from, to) = (quote(&step.id), quote(to));
            if label.is_empty() {
                text.push_str(&format!("  \"{from}\" -> \"{to}\";\n"));
            } else {
                text.push_str(&format!("  \"{from}\" -> \"{to}\" [label=\"{}\"];\n", quote(label)));
            }
        }
    }
    text.push('}');
    text
}

/// The SVG of `dot`, without its XML prologue and style element; `None` if layout fails.
fn render(dot: &str) -> Option<String> {
    let svg = std::panic::catch_unwind(|| {
        let mut parser = layout::gv::DotParser::new(dot);
        let graph = parser.process().ok()?;
        let mut builder = layout::gv::GraphBuilder::new();
        builder.visit_graph(&graph);
        let mut visual = builder.get();
        let mut writer = layout::backends::svg::SVGWriter::new();
        visual.do_it(false, false, false, &mut writer);
        Some(writer.finalize())
    })
    .ok()??;
    let svg = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => return None,
    };
    let svg = match (svg.find("<style>"), svg.find("</style>")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &svg[..a], &svg[b + "</style>".len()..]),
        _ => svg.to_owned(),
    };
    Some(svg.replacen("<svg ", "<svg role=\"img\" aria-labelledby=\"graph-caption\" ", 1))
}

/// The graph in a figure with its caption and, when coloured by a run, a legend.
pub(crate) fn figure(caption: &str, steps: &[StepView], outcome: &dyn Fn(&str) -> Outcome) -> Markup {
    let coloured = steps.iter().any(|s| outcome(&s.id) != Outcome::Plain);
    html! {
        figure.graph {
            @if let Some(svg) = render(&dot(steps, outcome)) { (PreEscaped(svg)) } @else { p.note { "The graph could not be drawn." } }
            figcaption id="graph-caption" {
                (caption)
                @if coloured {
                    " " span.legend {
                        @for o in [Outcome::Ran, Outcome::Failed, Outcome::NotReached] {
                            span { "■ " (o.label()) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, kind: &str, next: &[(&str, &str)]) -> StepView {
        StepView {
            id: id.to_owned(),
            kind: kind.to_owned(),
            next: next.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect(),
        }
    }

    #[test]
    fn draws_every_step_without_style_or_script() {
        let steps = [
            step("start", "start", &[("check", "")]),
            step("check", "decision", &[("yes", "true"), ("no", "false")]),
            step("yes", "stop", &[]),
            step("no", "stop", &[]),
        ];
        let outcome = |id: &str| if id == "no" { Outcome::NotReached } else { Outcome::Ran };
        let svg = render(&dot(&steps, &outcome)).expect("an SVG");
        assert!(svg.starts_with("<svg role=\"img\""), "{svg}");
        for id in ["start", "check", "yes", "no", "true", "false"] {
            assert!(svg.contains(&format!(">{id}</tspan>")), "{id} missing: {svg}");
        }
        assert!(!svg.contains("<style") && !svg.contains("<script"), "{svg}");
        assert!(svg.contains(&Outcome::Ran.fill()[1..]) && svg.contains(&Outcome::NotReached.fill()[1..]));
    }
}
