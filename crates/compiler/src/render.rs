//! Rendering the process graph for `stepwise graph` and for the test-mode report.

use petgraph::visit::EdgeRef;

use crate::plan::Plan;

/// Mermaid flowchart text (renders on GitHub and in mermaid.live).
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for idx in plan.graph.node_indices() {
        let step = &plan.graph[idx];
        let label = format!("{}<br/><i>{}</i>", step.id, step.kind.type_name());
        let shape = match step.kind.type_name() {
            "decision" => format!("{{\"{label}\"}}"),
            "start" => format!("([\"{label}\"])"),
            "stop" => format!("((\"{label}\"))"),
            _ => format!("[\"{label}\"]"),
        };
        out.push_str(&format!("    {}{shape}\n", node_name(&step.id)));
    }
    for edge in plan.graph.edge_references() {
        let from = node_name(&plan.graph[edge.source()].id);
        let to = node_name(&plan.graph[edge.target()].id);
        let label = edge.weight().label();
        if label.is_empty() {
            out.push_str(&format!("    {from} --> {to}\n"));
        } else {
            out.push_str(&format!("    {from} -->|{label}| {to}\n"));
        }
    }
    out
}

/// Graphviz dot text.
pub fn dot(plan: &Plan) -> String {
    let mut out =
        format!("digraph \"{}\" {{\n    rankdir=TB;\n    node [shape=box, fontname=\"Helvetica\"];\n", plan.name);
    for idx in plan.graph.node_indices() {
        let step = &plan.graph[idx];
        let shape = match step.kind.type_name() {
            "decision" => "diamond",
            "start" => "oval",
            "stop" => "doublecircle",
            _ => "box",
        };
        out.push_str(&format!(
            "    \"{}\" [label=\"{}\\n{}\", shape={shape}];\n",
            step.id,
            step.id,
            step.kind.type_name()
        ));
    }
    for edge in plan.graph.edge_references() {
        let from = &plan.graph[edge.source()].id;
        let to = &plan.graph[edge.target()].id;
        let label = edge.weight().label();
        if label.is_empty() {
            out.push_str(&format!("    \"{from}\" -> \"{to}\";\n"));
        } else {
            out.push_str(&format!("    \"{from}\" -> \"{to}\" [label=\"{label}\"];\n"));
        }
    }
    out.push_str("}\n");
    out
}

/// The graph as JSON (nodes with id and type, edges with labels), for the test-mode report.
pub fn json(plan: &Plan) -> serde_json::Value {
    let nodes: Vec<serde_json::Value> = plan
        .graph
        .node_indices()
        .map(|i| serde_json::json!({"id": plan.graph[i].id, "type": plan.graph[i].kind.type_name()}))
        .collect();
    let edges: Vec<serde_json::Value> = plan
        .graph
        .edge_references()
        .map(|e| {
            serde_json::json!({
                "from": plan.graph[e.source()].id,
                "to": plan.graph[e.target()].id,
                "label": e.weight().label(),
            })
        })
        .collect();
    serde_json::json!({"name": plan.name, "nodes": nodes, "edges": edges})
}

fn node_name(id: &str) -> String {
    // Mermaid reserves `end` and a few other words as node ids.
    format!("s_{id}")
}
