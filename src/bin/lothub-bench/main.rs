//! `lothub-bench`: load generator (placeholder).
fn main() {}
