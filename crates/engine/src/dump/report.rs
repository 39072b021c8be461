//! `report.html`: one self-contained page (no network) with the process graph drawn as inline
//! SVG from `compiler::render::json` (the data of `stepwise graph`), each step coloured by
//! outcome, and the run's documents embedded as JSON for the page's script to list and show.
//!
//! The graph uses a simple layered layout: a step's layer is its longest distance from the
//! start, edges that skip layers pass through invisible points in the layers between, and a few
//! barycentre sweeps order each layer to keep crossings down.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::Value;

const TEMPLATE: &str = include_str!("report.html");

const NODE_HEIGHT: f64 = 48.0;
const LAYER_GAP: f64 = 64.0;
const SLOT_GAP: f64 = 36.0;
const MARGIN: f64 = 24.0;
/// Width of a character of a step id (13px bold) and of the information line (11px).
const CHAR_WIDTH: f64 = 8.0;
const INFO_CHAR_WIDTH: f64 = 6.4;

/// Writes the report to `path` (mode 0600, replacing any previous one).
pub(super) fn write(path: &Path, graph: &Value, data: &Value) -> io::Result<()> {
    let layout = layout(graph, node_width(graph, data));
    let svg = svg(&layout, data);
    let title = format!(
        "{} {} {}",
        data["run"]["process"].as_str().unwrap_or("process"),
        data["run"]["run_id"].as_str().unwrap_or(""),
        data["run"]["status"].as_str().unwrap_or("")
    );
    let (tmp, f) = super::open_replacement(path)?;
    let mut w = BufWriter::new(f);
    let mut rest = TEMPLATE;
    for (marker, value) in [
        ("<!--TITLE-->", escape(&title)),
        ("<!--GRAPH-SVG-->", svg),
        ("<!--GRAPH-JSON-->", script_json(graph)),
        ("<!--DATA-JSON-->", script_json(data)),
    ] {
        let Some((before, after)) = rest.split_once(marker) else {
            return Err(io::Error::other(format!("the report template has no {marker}")));
        };
        w.write_all(before.as_bytes())?;
        w.write_all(value.as_bytes())?;
        rest = after;
    }
    w.write_all(rest.as_bytes())?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// JSON for a `<script type="application/json">` block: `<`, `>` and `&` are written as
/// `\u003c` and the like (valid JSON, and `</script>` or `<!--` in a document cannot end or
/// change the block).
pub(super) fn script_json(value: &Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Text for HTML or SVG content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A step placed on the page (centre coordinates).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Placed {
    pub id: String,
    pub step_type: String,
    pub layer: usize,
    pub x: f64,
    pub y: f64,
}

/// An edge as a polyline from the bottom of its source to the top of its target.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Route {
    pub from: String,
    pub to: String,
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

#[derive(Clone, Debug)]
pub(super) struct Layout {
    pub nodes: Vec<Placed>,
    pub edges: Vec<Route>,
    pub node_width: f64,
    pub width: f64,
    pub height: f64,
}

/// Lays out the graph JSON of `compiler::render::json` with steps `node_width` wide.
pub(super) fn layout(graph: &Value, node_width: f64) -> Layout {
    let empty = Vec::new();
    let nodes: Vec<(String, String)> = graph["nodes"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|n| (n["id"].as_str().unwrap_or("").to_owned(), n["type"].as_str().unwrap_or("").to_owned()))
        .collect();
    let index: HashMap<&str, usize> = nodes.iter().enumerate().map(|(i, (id, _))| (id.as_str(), i)).collect();
    let edges: Vec<(usize, usize, String)> = graph["edges"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .filter_map(|e| {
            let from = *index.get(e["from"].as_str()?)?;
            let to = *index.get(e["to"].as_str()?)?;
            Some((from, to, e["label"].as_str().unwrap_or("").to_owned()))
        })
        .collect();
    let n = nodes.len();
    let mut out_edges: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for (i, (from, to, _)) in edges.iter().enumerate() {
        out_edges[*from].push(i);
        indegree[*to] += 1;
    }

    // Layers: the longest path from a root (Kahn's order). A cycle (never in a valid plan)
    // leaves nodes unvisited; they go below everything else.
    let mut layer = vec![0usize; n];
    let mut visited = vec![false; n];
    let mut remaining = indegree.clone();
    let mut queue: std::collections::VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(u) = queue.pop_front() {
        visited[u] = true;
        for &e in &out_edges[u] {
            let v = edges[e].1;
            layer[v] = layer[v].max(layer[u] + 1);
            remaining[v] -= 1;
            if remaining[v] == 0 {
                queue.push_back(v);
            }
        }
    }
    let deepest = layer.iter().copied().max().unwrap_or(0);
    for (i, seen) in visited.iter().enumerate() {
        if !seen {
            layer[i] = deepest + 1;
        }
    }

    // Depth-first discovery order (edges in order: true before false, paths as listed) gives the
    // first left-to-right order.
    let mut discovered = vec![usize::MAX; n];
    let mut next = 0;
    let roots = (0..n).filter(|&i| indegree[i] == 0);
    for root in roots.chain(0..n) {
        if discovered[root] != usize::MAX {
            continue;
        }
        let mut stack = vec![root];
        while let Some(u) = stack.pop() {
            if discovered[u] != usize::MAX {
                continue;
            }
            discovered[u] = next;
            next += 1;
            for &e in out_edges[u].iter().rev() {
                let v = edges[e].1;
                if discovered[v] == usize::MAX {
                    stack.push(v);
                }
            }
        }
    }

    // Items: the real nodes, then one invisible point per layer skipped by an edge.
    let mut item_layer: Vec<usize> = layer.clone();
    let mut item_key: Vec<f64> = discovered.iter().map(|&d| d as f64).collect();
    let mut routes: Vec<Vec<usize>> = Vec::with_capacity(edges.len());
    for (i, (from, to, _)) in edges.iter().enumerate() {
        let mut route = vec![*from];
        if layer[*to] > layer[*from] + 1 {
            for l in layer[*from] + 1..layer[*to] {
                item_layer.push(l);
                item_key.push(discovered[*from] as f64 + 0.5 + i as f64 * 1e-3);
                route.push(item_layer.len() - 1);
            }
        }
        route.push(*to);
        routes.push(route);
    }
    let layers = item_layer.iter().copied().max().map(|m| m + 1).unwrap_or(0);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers];
    for (item, &l) in item_layer.iter().enumerate() {
        rows[l].push(item);
    }
    for row in &mut rows {
        row.sort_by(|a, b| item_key[*a].total_cmp(&item_key[*b]));
    }
    let mut up: Vec<Vec<usize>> = vec![Vec::new(); item_layer.len()];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); item_layer.len()];
    for route in &routes {
        for pair in route.windows(2) {
            if item_layer[pair[1]] == item_layer[pair[0]] + 1 {
                down[pair[0]].push(pair[1]);
                up[pair[1]].push(pair[0]);
            }
        }
    }
    let mut position = vec![0f64; item_layer.len()];
    let renumber = |rows: &Vec<Vec<usize>>, position: &mut Vec<f64>| {
        for row in rows {
            for (i, &item) in row.iter().enumerate() {
                position[item] = i as f64;
            }
        }
    };
    renumber(&rows, &mut position);
    for _ in 0..4 {
        for row in rows.iter_mut().skip(1) {
            sweep(row, &up, &mut position);
        }
        for row in rows.iter_mut().rev().skip(1) {
            sweep(row, &down, &mut position);
        }
    }

    let slot = node_width + SLOT_GAP;
    let widest = rows.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let mut centre = vec![(0f64, 0f64); item_layer.len()];
    for (l, row) in rows.iter().enumerate() {
        let offset = (widest - row.len()) as f64 / 2.0;
        for (i, &item) in row.iter().enumerate() {
            let x = MARGIN + (offset + i as f64) * slot + node_width / 2.0;
            let y = MARGIN + l as f64 * (NODE_HEIGHT + LAYER_GAP) + NODE_HEIGHT / 2.0;
            centre[item] = (x, y);
        }
    }
    let placed = nodes
        .iter()
        .enumerate()
        .map(|(i, (id, t))| Placed {
            id: id.clone(),
            step_type: t.clone(),
            layer: layer[i],
            x: centre[i].0,
            y: centre[i].1,
        })
        .collect();
    let edge_routes = edges
        .iter()
        .zip(&routes)
        .map(|((from, to, label), route)| {
            let mut points: Vec<(f64, f64)> = route.iter().map(|&item| centre[item]).collect();
            if let Some(first) = points.first_mut() {
                first.1 += NODE_HEIGHT / 2.0;
            }
            if let Some(last) = points.last_mut() {
                last.1 -= NODE_HEIGHT / 2.0;
            }
            Route { from: nodes[*from].0.clone(), to: nodes[*to].0.clone(), label: label.clone(), points }
        })
        .collect();
    Layout {
        nodes: placed,
        edges: edge_routes,
        node_width,
        width: MARGIN * 2.0 + widest as f64 * slot - SLOT_GAP,
        height: MARGIN * 2.0 + layers as f64 * (NODE_HEIGHT + LAYER_GAP) - LAYER_GAP,
    }
}

/// Wide enough for the longest step id and information line, within bounds.
fn node_width(graph: &Value, data: &Value) -> f64 {
    let empty = Vec::new();
    graph["nodes"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|n| {
            let id = n["id"].as_str().unwrap_or("");
            let info = info_line(n["type"].as_str().unwrap_or(""), &data["steps"][id]);
            (id.chars().count() as f64 * CHAR_WIDTH).max(info.chars().count() as f64 * INFO_CHAR_WIDTH) + 24.0
        })
        .fold(130.0, f64::max)
        .min(300.0)
}

/// `map · 3 in · 3 out · 1 err`.
fn info_line(step_type: &str, step: &Value) -> String {
    let errors = match step["documents_error"].as_u64().unwrap_or(0) {
        0 => String::new(),
        e => format!(" · {e} err"),
    };
    format!(
        "{step_type} · {} in · {} out{errors}",
        step["documents_in"].as_u64().unwrap_or(0),
        step["documents_out"].as_u64().unwrap_or(0)
    )
}

/// Orders one row by the mean position of each item's neighbours in the adjacent row.
fn sweep(row: &mut [usize], neighbours: &[Vec<usize>], position: &mut [f64]) {
    let key = |item: usize| {
        let ns = &neighbours[item];
        if ns.is_empty() { position[item] } else { ns.iter().map(|&n| position[n]).sum::<f64>() / ns.len() as f64 }
    };
    let mut keyed: Vec<(f64, f64, usize)> = row.iter().map(|&item| (key(item), position[item], item)).collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    for (i, (_, _, item)) in keyed.into_iter().enumerate() {
        row[i] = item;
        position[item] = i as f64;
    }
}

/// The graph as inline SVG. Each step is a `<g class="step OUTCOME" data-step="ID">`.
pub(super) fn svg(layout: &Layout, data: &Value) -> String {
    let mut s = format!(
        "<svg id=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" role=\"group\" aria-label=\"process graph\">\n",
        w = layout.width.max(1.0),
        h = layout.height.max(1.0)
    );
    s.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" class=\"arrowhead\"/></marker></defs>\n<g class=\"edges\">\n",
    );
    for e in &layout.edges {
        // Curves that leave and enter steps vertically, through the bend points.
        let mut d = Vec::with_capacity(e.points.len());
        for (i, &(x, y)) in e.points.iter().enumerate() {
            if i == 0 {
                d.push(format!("M{x:.1},{y:.1}"));
            } else {
                let (px, py) = e.points[i - 1];
                let my = (py + y) / 2.0;
                d.push(format!("C{px:.1},{my:.1} {x:.1},{my:.1} {x:.1},{y:.1}"));
            }
        }
        s.push_str(&format!(
            "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"{}\" marker-end=\"url(#arrow)\"/>\n",
            escape(&e.from),
            escape(&e.to),
            d.join(" ")
        ));
        if !e.label.is_empty() && e.points.len() >= 2 {
            let (x0, y0) = e.points[0];
            let (x1, y1) = e.points[1];
            let (x, y) = (x0 + (x1 - x0) * 0.45, y0 + (y1 - y0) * 0.45);
            s.push_str(&format!(
                "<text class=\"edge-label\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
                x + 6.0,
                y + 4.0,
                escape(&e.label)
            ));
        }
    }
    s.push_str("</g>\n<g class=\"steps\">\n");
    let fit = ((layout.node_width - 16.0) / CHAR_WIDTH).floor().max(4.0) as usize;
    for node in &layout.nodes {
        let step = &data["steps"][&node.id];
        let outcome = step["outcome"].as_str().unwrap_or("not_reached");
        let class = outcome.replace('_', "-");
        let info = info_line(&node.step_type, step);
        let outcome_text = match outcome {
            "ok" => "ran ok",
            "error" => "had errors",
            _ => "not reached",
        };
        let x = node.x - layout.node_width / 2.0;
        let y = node.y - NODE_HEIGHT / 2.0;
        let rx = match node.step_type.as_str() {
            "start" | "stop" => 22.0,
            _ => 6.0,
        };
        s.push_str(&format!(
            "<g class=\"step {class} type-{t}\" data-step=\"{id}\" tabindex=\"0\" role=\"button\" aria-label=\"step {id} ({t}): {outcome_text}\">\
<title>{id}: {outcome_text}; {info}</title>\
<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" rx=\"{rx}\"/>\
<text class=\"step-id\" x=\"{cx:.1}\" y=\"{ty:.1}\">{label}</text>\
<text class=\"step-info\" x=\"{cx:.1}\" y=\"{iy:.1}\">{info}</text></g>\n",
            class = escape(&class),
            t = escape(&node.step_type),
            id = escape(&node.id),
            w = layout.node_width,
            h = NODE_HEIGHT,
            cx = node.x,
            ty = node.y - 4.0,
            iy = node.y + 14.0,
            label = escape(&ellipsis(&node.id, fit)),
            info = escape(&info),
        ));
    }
    s.push_str("</g>\n</svg>");
    s
}

fn ellipsis(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}
