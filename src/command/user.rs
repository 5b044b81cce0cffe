//! The user verbs: `-addUser <user> <password>`, `-removeUser <user>`,
//! `-changeUserPassword <user> <newPassword>`, `-changeUserSettings <user> <Flag> true|false`,
//! `-addUserToGroup` / `-removeUserFromGroup <user> <group>`, `-listUsers`.
//!
//! Each parses its words, calls the runtime (which hashes, commits, then refreshes the users
//! the rules see) and words the reply. Passwords are never echoed, hashes never listed.

use serde_json::json;

use super::parse::ArgError;
use super::{Call, Reply, Verb};
use crate::runtime::RuntimeError;

pub(super) fn apply(verb: Verb, call: &Call<'_>) -> Reply {
    match run(verb, call) {
        Ok(reply) => reply,
        Err(Failure::Args(e)) => Reply::fail(&call.command, e.0),
        Err(Failure::Runtime(e)) => Reply::fail(&call.command, sentence(&e)),
    }
}

enum Failure {
    Args(ArgError),
    Runtime(RuntimeError),
}

impl From<ArgError> for Failure {
    fn from(e: ArgError) -> Failure {
        Failure::Args(e)
    }
}

impl From<RuntimeError> for Failure {
    fn from(e: RuntimeError) -> Failure {
        Failure::Runtime(e)
    }
}

/// The runtime's error as the reply's message: first letter upper case.
fn sentence(e: &RuntimeError) -> String {
    super::parse::pascal_case(&e.to_string())
}

fn run(verb: Verb, call: &Call<'_>) -> Result<Reply, Failure> {
    let rt = call.runtime;
    let cmd = call.command.as_str();
    let mut args = call.request.args();
    let reply = match verb {
        Verb::AddUser => {
            const USAGE: &str = "-addUser <user> <password>";
            let user = args.required("user name", USAGE)?;
            let password = args.required("password", USAGE)?;
            args.finish(USAGE)?;
            rt.add_user(&user, &password)?;
            Reply::ok(cmd, format!("User '{user}' added")).entity("User", &user)
        }
        Verb::RemoveUser => {
            const USAGE: &str = "-removeUser <user>";
            let user = args.required("user name", USAGE)?;
            args.finish(USAGE)?;
            if !rt.remove_user(&user)? {
                return Err(RuntimeError::NoSuchUser(user).into());
            }
            Reply::ok(cmd, format!("User '{user}' removed")).entity("User", &user)
        }
        Verb::ChangeUserPassword => {
            const USAGE: &str = "-changeUserPassword <user> <newPassword>";
            let user = args.required("user name", USAGE)?;
            let password = args.required("new password", USAGE)?;
            args.finish(USAGE)?;
            rt.change_password(&user, &password)?;
            Reply::ok(cmd, format!("Password of user '{user}' changed")).entity("User", &user)
        }
        Verb::ChangeUserSettings => {
            const USAGE: &str = "-changeUserSettings <user> <Flag> true|false";
            let user = args.required("user name", USAGE)?;
            let flag = args.required("flag", USAGE)?;
            let value = args.required("true or false", USAGE)?;
            args.finish(USAGE)?;
            let value = match value.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ArgError(format!(
                        "expected true or false, got {value:?}; usage: {USAGE}"
                    ))
                    .into());
                }
            };
            rt.set_flag(&user, &flag, value)?;
            Reply::ok(cmd, format!("User '{user}': {flag} set to {value}"))
                .entity("User", &user)
                .with_data(json!({ "flag": flag, "value": value }))
        }
        Verb::AddUserToGroup => {
            const USAGE: &str = "-addUserToGroup <user> <group>";
            let user = args.required("user name", USAGE)?;
            let group = args.required("group", USAGE)?;
            args.finish(USAGE)?;
            let message = if rt.add_to_group(&user, &group)? {
                format!("User '{user}' added to group '{group}'")
            } else {
                format!("User '{user}' was already in group '{group}'")
            };
            Reply::ok(cmd, message).entity("User", &user)
        }
        Verb::RemoveUserFromGroup => {
            const USAGE: &str = "-removeUserFromGroup <user> <group>";
            let user = args.required("user name", USAGE)?;
            let group = args.required("group", USAGE)?;
            args.finish(USAGE)?;
            let message = if rt.remove_from_group(&user, &group)? {
                format!("User '{user}' removed from group '{group}'")
            } else {
                format!("User '{user}' was not in group '{group}'")
            };
            Reply::ok(cmd, message).entity("User", &user)
        }
        Verb::ListUsers => {
            args.finish("-listUsers")?;
            let users = rt.list_users()?;
            let n = users.len();
            let data = serde_json::to_value(&users).unwrap_or_default();
            Reply::ok(cmd, format!("{n} user(s)")).with_data(data)
        }
        _ => Reply::fail(cmd, format!("-{} is not a user verb", verb.name())),
    };
    Ok(reply)
}
