//! Raw, strict serde types that mirror a Stepwise process file, and loading of YAML text with
//! source locations.
//!
//! Nothing here resolves references or checks the graph: that is the compiler's job. The types
//! reject unknown keys (`deny_unknown_fields`) so that a typo never silently changes a process.

mod load;
mod types;

pub use load::{DuplicateKey, LoadError, Loaded, Location, SourceMap, escape as escape_pointer, load};
pub use types::*;

/// The largest process file accepted, in bytes.
pub fn load_limit() -> usize {
    load::MAX_FILE_BYTES
}
