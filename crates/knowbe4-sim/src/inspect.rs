//! Reads a GraphQL request before it runs: the root field names (for stats and logs), whether it
//! is a mutation, and whether a bulk membership call is over the gateway-timeout size.

use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet};
use async_graphql::{Name, Value, Variables};

/// What the HTTP layer needs to know about a GraphQL request.
#[derive(Debug, Default)]
pub(crate) struct Inspection {
    /// Root field names (not aliases), in document order, one entry per occurrence.
    pub root_fields: Vec<String>,
    /// The largest `userIds` list of a bulk membership call in the request.
    pub largest_bulk: usize,
}

/// Mutations whose `userIds` list size the gateway cares about.
const BULK_MUTATIONS: &[&str] = &["userAddToGroups", "userDeleteMemberships"];

pub(crate) fn inspect(doc: &ExecutableDocument, operation_name: Option<&str>, variables: &Variables) -> Inspection {
    let mut out = Inspection::default();
    let Some(op) = select_operation(doc, operation_name) else {
        return out;
    };
    let mut seen = 0;
    walk(doc, &op.selection_set.node, op.ty, variables, &mut out, &mut seen);
    out
}

fn select_operation<'a>(doc: &'a ExecutableDocument, name: Option<&str>) -> Option<&'a OperationDefinition> {
    match (&doc.operations, name) {
        (async_graphql::parser::types::DocumentOperations::Single(op), _) => Some(&op.node),
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => {
            ops.get(&Name::new(name)).map(|op| &op.node)
        }
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| &op.node)
        }
        _ => None,
    }
}

fn walk(
    doc: &ExecutableDocument,
    set: &SelectionSet,
    ty: OperationType,
    variables: &Variables,
    out: &mut Inspection,
    depth: &mut usize,
) {
    // Fragments can nest; a bound keeps a hostile document from looping.
    *depth += 1;
    if *depth > 64 {
        return;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                out.root_fields.push(name.to_string());
                if ty == OperationType::Mutation && BULK_MUTATIONS.contains(&name) {
                    let size = field.node.arguments.iter().find(|(arg, _)| arg.node.as_str() == "userIds").map_or(
                        0,
                        |(_, value)| {
                            // Substitute variables, then count.
                            let value = value.node.clone().into_const_with(|name| {
                                Ok::<_, ()>(variables.get(&name).cloned().unwrap_or(Value::Null))
                            });
                            value.map_or(0, |v| list_len(&v))
                        },
                    );
                    out.largest_bulk = out.largest_bulk.max(size);
                }
            }
            Selection::InlineFragment(frag) => walk(doc, &frag.node.selection_set.node, ty, variables, out, depth),
            Selection::FragmentSpread(spread) => {
                if let Some(def) = doc.fragments.get(&spread.node.fragment_name.node) {
                    walk(doc, &def.node.selection_set.node, ty, variables, out, depth);
                }
            }
        }
    }
}

fn list_len(value: &Value) -> usize {
    match value {
        Value::List(items) => items.len(),
        Value::Null => 0,
        // A single value is coerced to a one-item list.
        _ => 1,
    }
}
