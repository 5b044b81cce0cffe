//! # lot: LOT (Language of Things) text -> checked definitions, and their evaluation
//!
//! Pure: no broker, no sockets, no files except in [`cli_check`].

pub mod ast;
pub mod context;
pub mod eval;
pub mod timefmt;
pub mod value;

use std::path::PathBuf;

/// `lothub lot check FILE...`: prints one line per definition (kind and name) on stdout when every
/// file is valid and returns 0; otherwise prints every error on stderr and returns 1.
pub fn cli_check(files: &[PathBuf]) -> i32 {
    let _ = files;
    eprintln!("lot check: not implemented yet");
    1
}
