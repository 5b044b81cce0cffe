//! The LOT verbs: `-add<Kind> <LOT text>`, `-remove<Kind> <name>`, `-removeAll<Kind>s`,
//! `-restoreRules`, `-lot <text>` (any mix of kinds, all or nothing), `-list <Kinds>` and
//! `-listRoutes`.
//!
//! The LOT text is the raw rest of the payload: its line 1 is the verb's line, so the compiler's
//! line and column are already the ones the operator sees. Deployment itself (compile, commit,
//! swap, `$SYS` topics) is the runtime's; a failed deployment changes nothing.

use serde_json::{Value, json};

use super::verb::creation_scope;
use super::{Call, Reply, Verb};
use crate::lot::Kind;
use crate::runtime::{DeployError, DeployedItem, Runtime, kind_title};

pub(super) fn apply(verb: Verb, call: &Call<'_>) -> Reply {
    let cmd = call.command.as_str();
    let rt = call.runtime;
    match verb {
        Verb::Add(kind) => deploy(call, call.request.args().rest(), Some(kind)),
        Verb::Lot => {
            let text = call.request.args().rest();
            // Scope check per kind before anything is deployed: all or nothing here too.
            if let Some(kinds) = kinds_in(rt, text) {
                for kind in kinds {
                    if !rt.authorize_scope(call.client, creation_scope(kind)) {
                        let mut reply = Reply::denied(cmd, "lot");
                        reply.errors[0].message = format!(
                            "{} definitions need the {:?} scope",
                            kind_title(kind),
                            creation_scope(kind)
                        );
                        return reply;
                    }
                }
            }
            deploy(call, text, None)
        }
        Verb::Remove(kind) => {
            let usage = format!("-remove{} <name>", kind_title(kind));
            let mut args = call.request.args();
            let name = match args.required("name", &usage) {
                Ok(n) => n,
                Err(e) => return Reply::fail(cmd, e.0),
            };
            if let Err(e) = args.finish(&usage) {
                return Reply::fail(cmd, e.0);
            }
            let title = kind_title(kind);
            match rt.remove(kind, &name) {
                Ok(true) => {
                    Reply::ok(cmd, format!("{title} '{name}' removed")).entity(title, &name)
                }
                Ok(false) => Reply::fail(cmd, format!("{title} '{name}' does not exist")),
                Err(e) => Reply::fail(cmd, e.to_string()),
            }
        }
        Verb::RemoveAll(kind) => {
            if let Err(e) = call.request.args().finish(&format!("-{}", verb.name())) {
                return Reply::fail(cmd, e.0);
            }
            match rt.remove_all(kind) {
                Ok(n) => Reply::ok(cmd, format!("{n} {}(s) removed", kind_title(kind)))
                    .with_data(json!({ "removed": n })),
                Err(e) => Reply::fail(cmd, e.to_string()),
            }
        }
        Verb::RestoreRules => {
            if let Err(e) = call.request.args().finish("-restoreRules") {
                return Reply::fail(cmd, e.0);
            }
            match rt.restore_rules() {
                Ok(items) => Reply::ok(cmd, format!("{} seed rule(s) restored", items.len()))
                    .with_data(items_json(&items)),
                Err(e) => deploy_failure(cmd, "Rules not restored", &e),
            }
        }
        Verb::ListRoutes => {
            if let Err(e) = call.request.args().finish("-listRoutes") {
                return Reply::fail(cmd, e.0);
            }
            list(cmd, rt, Kind::Route)
        }
        Verb::List => {
            const USAGE: &str = "-list Rules|Models|Actions|Routes";
            let mut args = call.request.args();
            let which = match args.required("what to list", USAGE) {
                Ok(w) => w,
                Err(e) => return Reply::fail(cmd, e.0),
            };
            if let Err(e) = args.finish(USAGE) {
                return Reply::fail(cmd, e.0);
            }
            match plural_kind(&which) {
                Some(kind) => list(cmd, rt, kind),
                None => Reply::fail(cmd, format!("cannot list {which:?}; usage: {USAGE}")),
            }
        }
        _ => Reply::fail(cmd, format!("-{} is not a LOT verb", verb.name())),
    }
}

/// Deploys `text` (only definitions of `only`, when given) and words the reply.
fn deploy(call: &Call<'_>, text: &str, only: Option<Kind>) -> Reply {
    let cmd = call.command.as_str();
    let rt = call.runtime;
    let result = match only {
        Some(kind) => rt.deploy_kind(text, kind),
        None => rt.deploy(text),
    };
    let what = only.map_or("Definitions", kind_title);
    match result {
        Ok(items) => match items.as_slice() {
            [one] => {
                let title = kind_title(one.kind);
                let done = if one.replaced { "replaced" } else { "added" };
                Reply::ok(cmd, format!("{title} '{}' {done}", one.name))
                    .entity(title, &one.name)
                    .with_data(items_json(&items))
            }
            _ => {
                let names: Vec<String> = items
                    .iter()
                    .map(|i| format!("{} '{}'", kind_title(i.kind), i.name))
                    .collect();
                Reply::ok(
                    cmd,
                    format!("{} definitions deployed: {}", items.len(), names.join(", ")),
                )
                .with_data(items_json(&items))
            }
        },
        Err(e) => deploy_failure(cmd, &format!("{what} not deployed"), &e),
    }
}

/// A failed deployment: the message names the first error with its position; `errors` lists
/// them all.
fn deploy_failure(cmd: &str, lead: &str, e: &DeployError) -> Reply {
    match e {
        DeployError::Compile(errors) => {
            let first = errors
                .first()
                .map(|e| format!(": {}", e.headline()))
                .unwrap_or_default();
            Reply::lot_errors(
                cmd,
                format!("{lead}, {} error(s){first}", errors.len()),
                errors,
            )
        }
        other => Reply::fail(cmd, format!("{lead}: {other}")),
    }
}

fn items_json(items: &[DeployedItem]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|i| json!({ "kind": kind_title(i.kind), "name": i.name, "replaced": i.replaced }))
            .collect(),
    )
}

fn list(cmd: &str, rt: &Runtime, kind: Kind) -> Reply {
    let defs = rt.list(kind);
    let data: Vec<Value> = defs
        .iter()
        .map(|(name, source)| json!({ "name": name, "source": source }))
        .collect();
    Reply::ok(cmd, format!("{} {}(s)", defs.len(), kind_title(kind))).with_data(Value::Array(data))
}

/// `Rules` -> Rule (singular accepted too, any case).
fn plural_kind(word: &str) -> Option<Kind> {
    let w = word.to_ascii_lowercase();
    let w = w.strip_suffix('s').unwrap_or(&w);
    [Kind::Rule, Kind::Model, Kind::Action, Kind::Route]
        .into_iter()
        .find(|k| kind_title(*k).eq_ignore_ascii_case(w))
}

/// The kinds a `-lot` text defines, when it compiles (`None` otherwise: the deployment then
/// fails with the compiler's errors and nothing is checked or deployed).
fn kinds_in(rt: &Runtime, text: &str) -> Option<Vec<Kind>> {
    let defs = rt.check_text(text).ok()?;
    let mut kinds: Vec<Kind> = defs.iter().map(|d| d.kind).collect();
    kinds.sort_by_key(|k| kind_title(*k));
    kinds.dedup();
    Some(kinds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_words() {
        assert_eq!(plural_kind("Rules"), Some(Kind::Rule));
        assert_eq!(plural_kind("models"), Some(Kind::Model));
        assert_eq!(plural_kind("Action"), Some(Kind::Action));
        assert_eq!(plural_kind("ROUTES"), Some(Kind::Route));
        assert_eq!(plural_kind("Users"), None);
    }
}
