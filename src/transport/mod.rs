//! `transport`: placeholder, filled in by its issue.

pub mod accept;
pub mod identity;
pub mod reload;
pub mod tls;
pub mod ws;
