//! What a new user hit in their first hour (issue 14): each rough edge, through the binary.

use crate::support::{Dir, stepwise};

/// A process with one no-data start, a property and a stop.
const ONE_PROPERTY: &str =
    "name: p\nproperties: {group: '1'}\nstart: {type: no_data, next: done}\nsteps:\n  done: {type: stop}\n";

#[test]
fn set_of_an_undeclared_property_is_a_usage_error_listing_the_declared_ones() {
    let dir = Dir::new();
    let p = dir.write("p.yaml", ONE_PROPERTY);
    let run = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history", "--set", "gruop=7"]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--set: the process declares no property 'gruop' (its properties are 'group')"),
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "nothing ran: {run:?}");

    let ok = stepwise(dir.path(), &["run", p.to_str().unwrap(), "--no-history", "--set", "group=7"]);
    assert_eq!(ok.code, 0, "{ok:?}");
}
