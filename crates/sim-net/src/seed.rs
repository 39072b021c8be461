//! Pieces of the simulators' deterministic seed data.

use rand::Rng;
use rand::rngs::SmallRng;

const FIRST: &[&str] = &[
    "Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Karl", "Laura", "Mallory",
    "Niaj", "Olivia", "Peggy", "Quentin", "Rupert", "Sybil", "Trent", "Ursula", "Victor", "Wendy", "Xavier", "Yvonne",
    "Zach",
];
const LAST: &[&str] = &[
    "Anderson", "Brown", "Clark", "Davis", "Evans", "Fischer", "Garcia", "Harris", "Ito", "Jones", "King", "Lopez",
    "Miller", "Nguyen", "Olsen", "Patel", "Quinn", "Rossi", "Smith", "Taylor", "Ueda", "Vargas", "Walker", "Xu",
    "Young", "Zimmer",
];

/// One of `items`, drawn from the seeded generator.
pub fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// A seeded person's name and email.
pub struct Person {
    pub first: &'static str,
    pub last: &'static str,
    /// `first.last{n}@example.com`, lower case.
    pub email: String,
}

/// The `n`th seeded person: a first and a last name drawn in that order, and an email made
/// unique by `n`.
pub fn person(rng: &mut SmallRng, n: usize) -> Person {
    let first = pick(rng, FIRST);
    let last = pick(rng, LAST);
    let email = format!("{}.{}{n}@example.com", first.to_lowercase(), last.to_lowercase());
    Person { first, last, email }
}
