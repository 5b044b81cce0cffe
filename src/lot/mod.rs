//! # lot: LOT (Language of Things) text -> checked definitions, and their evaluation
//!
//! Pure: no broker, no sockets, no files except in [`cli_check`]. (Compilation runs on a short-lived
//! thread of its own, only to have a known stack size; see [`compile_sources`].)
//!
//! # Layout
//! | file | owns |
//! |---|---|
//! | `ast/` | the typed AST every other part shares (start here) |
//! | `source.rs` | pre-pass: comments blanked, logical lines, definitions, indentation |
//! | `../../grammar/lot.pest` + `parser/` | pest grammar and one `parse_xxx` per rule |
//! | `check.rs` | cross-definition checks: names, duplicates, action context, wildcards |
//! | `topic.rs` | topic name / filter validation for the checks |
//! | `error.rs` | [`LotError`] and its `file:line:col` rendering |
//! | `value.rs`, `eval*.rs`, `timefmt.rs`, `context.rs` | the evaluator (another owner) |
//!
//! Compilation: [`compile`] (one text) or [`compile_sources`] (several files that may refer to
//! each other's names). A text either compiles completely or yields every error found: a
//! definition with an error is never partly returned.

pub mod ast;
mod check;
pub mod context;
pub mod error;
pub mod eval;
mod parser;
mod source;
pub mod timefmt;
mod topic;
pub mod value;

use std::collections::HashSet;
use std::path::PathBuf;

pub use ast::{Definition, Kind};
pub use error::LotError;

use check::Parsed;
use source::Source;

/// Names already deployed on the hub, so that definitions may refer to them (may be empty).
#[derive(Debug, Clone, Default)]
pub struct KnownNames {
    pub models: HashSet<String>,
    pub actions: HashSet<String>,
}

impl KnownNames {
    /// The model and action names of already-compiled (deployed) definitions.
    pub fn from_definitions<'a>(defs: impl IntoIterator<Item = &'a Definition>) -> KnownNames {
        let mut known = KnownNames::default();
        for d in defs {
            match d.kind {
                Kind::Model => {
                    known.models.insert(d.name.clone());
                }
                Kind::Action => {
                    known.actions.insert(d.name.clone());
                }
                Kind::Rule | Kind::Route => {}
            }
        }
        known
    }
}

/// Compiles one LOT text (one or more definitions). `file` is only used in error messages.
pub fn compile(
    text: &str,
    file: Option<&str>,
    known: &KnownNames,
) -> Result<Vec<Definition>, Vec<LotError>> {
    compile_sources(&[(text, file)], known)
}

/// Compiles several texts together: names resolve across all of them (spec §8: forward
/// references are fine) and a name defined twice anywhere is an error at the second DEFINE.
pub fn compile_sources(
    sources: &[(&str, Option<&str>)],
    known: &KnownNames,
) -> Result<Vec<Definition>, Vec<LotError>> {
    // The parser recurses once per nesting level of an expression (pest rules call each other),
    // and a tokio worker or test thread has only 2 MiB of stack. The pre-pass caps nesting
    // (64 brackets, 256 operators per line); running on a thread with a known stack makes that
    // cap safe whatever thread the caller is on. If no thread can be started, run here.
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("lot-compile".into())
            .stack_size(COMPILE_STACK)
            .spawn_scoped(scope, || compile_here(sources, known));
        match worker {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => compile_here(sources, known),
        }
    })
}

/// Stack of the compile thread: room for the deepest input the pre-pass lets through.
const COMPILE_STACK: usize = 64 * 1024 * 1024;

fn compile_here(
    sources: &[(&str, Option<&str>)],
    known: &KnownNames,
) -> Result<Vec<Definition>, Vec<LotError>> {
    let mut errors = Vec::new();
    let mut srcs = Vec::with_capacity(sources.len());
    let mut pre_errors = Vec::with_capacity(sources.len());
    for (text, file) in sources {
        let (src, errs) = Source::new(text, *file);
        srcs.push(src);
        pre_errors.push(errs);
    }
    let mut parsed = Vec::new();
    for (i, src) in srcs.iter().enumerate() {
        parse_source(
            i,
            src,
            std::mem::take(&mut pre_errors[i]),
            &mut parsed,
            &mut errors,
        );
    }
    errors.extend(check::check_all(&srcs, &parsed, known));
    if errors.is_empty() {
        Ok(parsed.into_iter().map(|p| p.def).collect())
    } else {
        errors.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        errors.dedup();
        Err(errors)
    }
}

fn parse_source(
    index: usize,
    src: &Source<'_>,
    pre_errors: Vec<LotError>,
    parsed: &mut Vec<Parsed>,
    errors: &mut Vec<LotError>,
) {
    let lines = match src.logical_lines() {
        Ok(l) => l,
        Err(e) => {
            errors.push(e);
            errors.extend(pre_errors);
            return;
        }
    };
    let (defs, split_errors) = src.definitions(lines);
    errors.extend(split_errors);
    for def in &defs {
        let start = def.lines[0].line_start;
        let end = def.lines[def.lines.len() - 1].end;
        let name = parser::definition_name(src, def);
        let label = |kind: Option<Kind>| match (kind, &name) {
            (Some(k), Some(n)) => Some(format!("{k} {n}")),
            (None, Some(n)) => Some(n.clone()),
            _ => None,
        };
        // A string or comment left open inside this definition: report that, not the
        // confusing syntax errors that follow from it.
        let (first_line, _) = src.line_col(start);
        let (last_line, _) = src.line_col(end);
        let own: Vec<&LotError> = pre_errors
            .iter()
            .filter(|e| e.line >= first_line && e.line <= last_line)
            .collect();
        let kind = parser::definition_kind(src, def);
        if !own.is_empty() {
            for e in own {
                let mut e = e.clone();
                e.definition = label(kind.as_ref().ok().copied());
                errors.push(e);
            }
            continue;
        }
        let result = kind
            .map_err(|e| vec![e])
            .and_then(|k| parser::parse_definition(src, def, k).map(|ast| (k, ast)));
        match result {
            Ok((kind, ast)) => {
                let def_name = match &ast {
                    ast::DefinitionAst::Rule(r) => r.name.value.clone(),
                    ast::DefinitionAst::Model(m) => m.name.value.clone(),
                    ast::DefinitionAst::Action(a) => a.name.value.clone(),
                    ast::DefinitionAst::Route(r) => r.name.value.clone(),
                };
                parsed.push(Parsed {
                    src: index,
                    define_at: start,
                    def: Definition {
                        kind,
                        name: def_name,
                        source: src.text[start..end].to_owned(),
                        ast,
                    },
                });
            }
            Err(errs) => {
                let kind = parser::definition_kind(src, def).ok();
                for mut e in errs {
                    e.definition = label(kind);
                    errors.push(e);
                }
            }
        }
    }
    // Errors outside every definition (e.g. text before the first DEFINE, an unterminated
    // comment at the very end) are still reported.
    for e in pre_errors {
        let inside = defs.iter().any(|d| {
            let (a, _) = src.line_col(d.lines[0].line_start);
            let (b, _) = src.line_col(d.lines[d.lines.len() - 1].end);
            e.line >= a && e.line <= b
        });
        if !inside {
            errors.push(e);
        }
    }
}

/// `lothub lot check FILE...`: prints one line per definition (kind and name) on stdout when every
/// file is valid and returns 0; otherwise prints every error on stderr and returns 1.
pub fn cli_check(files: &[PathBuf]) -> i32 {
    let mut texts = Vec::with_capacity(files.len());
    for f in files {
        match std::fs::read_to_string(f) {
            Ok(t) => texts.push((t, f.display().to_string())),
            Err(e) => {
                eprintln!("{}: cannot read: {e}", f.display());
                return 1;
            }
        }
    }
    let sources: Vec<(&str, Option<&str>)> = texts
        .iter()
        .map(|(t, f)| (t.as_str(), Some(f.as_str())))
        .collect();
    match compile_sources(&sources, &KnownNames::default()) {
        Ok(defs) => {
            for d in &defs {
                println!("{} {}", d.kind, d.name);
            }
            0
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}\n");
            }
            eprintln!(
                "{} error{} found",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            1
        }
    }
}
