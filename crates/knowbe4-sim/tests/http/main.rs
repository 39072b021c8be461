//! HTTP-level tests of the KnowBe4 simulator: each test starts a simulator on a free loopback
//! port and drives it with a plain reqwest client and hand-written GraphQL.

mod auth;
mod bulk;
mod faults;
mod groups;
mod limits;
mod pagination;
mod partner;
mod phishing;
mod rest;
mod stats;
mod support;
mod training;
mod users;
