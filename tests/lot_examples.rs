//! Every file of `lot-examples/` compiles (all together, since an action may publish a model
//! defined in another file), opens with a comment saying what it shows, and sits in the folder
//! of its kind. So an example can never go stale.

use std::path::{Path, PathBuf};

use lothub::lot::{Kind, KnownNames, cli_check, compile_sources};

fn example_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("lot-examples");
    let mut files = Vec::new();
    for dir in ["rules", "models", "actions", "routes"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("examples folder") {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "lot") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn there_are_at_least_twenty_examples_each_opening_with_a_comment() {
    let files = example_files();
    assert!(files.len() >= 20, "only {} examples", files.len());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let start = text.trim_start();
        assert!(
            start.starts_with("//") || start.starts_with("--") || start.starts_with("/*"),
            "{} does not open with a comment",
            f.display()
        );
        assert!(
            text.contains("On a hub"),
            "{} does not say what it does on a hub",
            f.display()
        );
    }
}

#[test]
fn every_example_compiles_and_sits_in_its_kind_folder() {
    let files = example_files();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| (std::fs::read_to_string(f).unwrap(), f.display().to_string()))
        .collect();
    for (text, name) in &texts {
        let sources = [(text.as_str(), Some(name.as_str()))];
        // Alone, a file may refer to a model or action of another file: resolve those as known.
        let mut known = KnownNames::default();
        known.models.insert("EnergyReading".into());
        let defs = match compile_sources(&sources, &known) {
            Ok(d) => d,
            Err(errs) => panic!(
                "{}",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        };
        assert!(!defs.is_empty(), "{name} has no definition");
        let folder = match defs[0].kind {
            Kind::Rule => "/rules/",
            Kind::Model => "/models/",
            Kind::Action => "/actions/",
            Kind::Route => "/routes/",
        };
        assert!(
            defs.iter().all(|d| d.kind == defs[0].kind),
            "{name} mixes kinds"
        );
        assert!(name.contains(folder), "{name} is not in {folder}");
    }
    let all: Vec<(&str, Option<&str>)> = texts
        .iter()
        .map(|(t, n)| (t.as_str(), Some(n.as_str())))
        .collect();
    assert!(compile_sources(&all, &KnownNames::default()).is_ok());
}

#[test]
fn lot_check_accepts_all_examples_together() {
    assert_eq!(cli_check(&example_files()), 0);
}

#[test]
fn lot_check_fails_on_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.lot");
    std::fs::write(&bad, "DEFINE RULE R WITH PRIORITY 100 FOR Publsh ALLOW\n").unwrap();
    assert_eq!(cli_check(&[bad]), 1);
    assert_eq!(cli_check(&[dir.path().join("missing.lot")]), 1);
}

/// The LOT snippets of docs/lot-language.md (code blocks starting with DEFINE and holding no
/// `<placeholder>`) compile too, so the reference cannot drift from the compiler.
#[test]
fn reference_snippets_compile() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/lot-language.md"))
            .expect("docs/lot-language.md");
    let mut snippets = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.starts_with("```")) {
            (None, true) => current = Some(String::new()),
            (Some(text), true) => {
                snippets.push(std::mem::take(text));
                current = None;
            }
            (Some(text), false) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, false) => {}
        }
    }
    let lot: Vec<&String> = snippets
        .iter()
        .filter(|s| s.starts_with("DEFINE") && !s.contains('<'))
        .collect();
    assert!(lot.len() >= 6, "only {} snippets found", lot.len());
    let mut known = KnownNames::default();
    known.models.insert("EnergyReading".into());
    for s in lot {
        if let Err(errs) = compile_sources(&[(s.as_str(), None)], &known) {
            panic!(
                "{s}\n{}",
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
