//! Env and secrets: `-setEnv NAME=value`, `-removeEnv NAME`, `-listEnv`, `-setSecret NAME=value`,
//! `-removeSecret NAME`, `-listSecrets` (names only: a secret's value never leaves the hub in a
//! reply, and is stored encrypted).

use serde_json::json;

use super::parse::ArgError;
use super::{Call, Reply, Verb};

pub(super) fn apply(verb: Verb, call: &Call<'_>) -> Reply {
    match run(verb, call) {
        Ok(reply) => reply,
        Err(message) => Reply::fail(&call.command, message),
    }
}

fn run(verb: Verb, call: &Call<'_>) -> Result<Reply, String> {
    let rt = call.runtime;
    let cmd = call.command.as_str();
    let mut args = call.request.args();
    let err = |e: crate::runtime::RuntimeError| e.to_string();
    Ok(match verb {
        Verb::SetEnv | Verb::SetSecret => {
            let usage = format!("-{} NAME=value", verb.name());
            let word = args.required("NAME=value", &usage).map_err(|e| e.0)?;
            args.finish(&usage).map_err(|e| e.0)?;
            let (name, value) = name_value(&word, &usage).map_err(|e| e.0)?;
            if verb == Verb::SetEnv {
                rt.set_env(name, value).map_err(err)?;
                Reply::ok(cmd, format!("Env '{name}' set")).entity("Env", name)
            } else {
                rt.set_secret(name, value).map_err(err)?;
                Reply::ok(cmd, format!("Secret '{name}' set")).entity("Secret", name)
            }
        }
        Verb::RemoveEnv | Verb::RemoveSecret => {
            let usage = format!("-{} NAME", verb.name());
            let name = args.required("NAME", &usage).map_err(|e| e.0)?;
            args.finish(&usage).map_err(|e| e.0)?;
            let (title, removed) = if verb == Verb::RemoveEnv {
                ("Env", rt.remove_env(&name).map_err(err)?)
            } else {
                ("Secret", rt.remove_secret(&name).map_err(err)?)
            };
            if !removed {
                return Err(format!("{title} '{name}' is not set"));
            }
            Reply::ok(cmd, format!("{title} '{name}' removed")).entity(title, &name)
        }
        Verb::ListEnv => {
            args.finish("-listEnv").map_err(|e| e.0)?;
            let env = rt.list_env().map_err(err)?;
            Reply::ok(cmd, format!("{} env variable(s)", env.len())).with_data(json!(env))
        }
        Verb::ListSecrets => {
            args.finish("-listSecrets").map_err(|e| e.0)?;
            let names = rt.list_secrets().map_err(err)?;
            Reply::ok(cmd, format!("{} secret(s)", names.len())).with_data(json!(names))
        }
        _ => return Err(format!("-{} is not an env or secret verb", verb.name())),
    })
}

/// `NAME=value` -> (NAME, value). The value may be empty; the name may not, and holds no space.
fn name_value<'a>(word: &'a str, usage: &str) -> Result<(&'a str, &'a str), ArgError> {
    match word.split_once('=') {
        Some((name, value)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
            Ok((name, value))
        }
        _ => Err(ArgError(format!(
            "expected NAME=value, got {word:?}; usage: {usage}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_value_split() {
        assert_eq!(name_value("A=b=c", "u").unwrap(), ("A", "b=c"));
        assert_eq!(name_value("A=", "u").unwrap(), ("A", ""));
        assert!(name_value("=x", "u").is_err());
        assert!(name_value("noequals", "u").is_err());
    }
}
