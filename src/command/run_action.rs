//! `-runAction <name> [json inputs]`: runs a deployed callable action now, through the engine,
//! and replies with its outputs and every message it published.

use serde_json::Value;

use super::{Call, Outcome, Reply};

pub(super) async fn apply(call: &Call<'_>) -> Outcome {
    let cmd = call.command.as_str();
    const USAGE: &str = "-runAction <name> [json inputs]";
    let mut args = call.request.args();
    let name = match args.required("action name", USAGE) {
        Ok(n) => n,
        Err(e) => return Reply::fail(cmd, e.0).into(),
    };
    let rest = args.rest().trim();
    let inputs = if rest.is_empty() {
        Value::Null
    } else {
        match serde_json::from_str::<Value>(rest) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Reply::fail(cmd, format!("inputs must be a JSON object; usage: {USAGE}"))
                    .into();
            }
            Err(e) => {
                return Reply::fail(cmd, format!("inputs are not JSON: {e}; usage: {USAGE}"))
                    .into();
            }
        }
    };
    run(call, &name, inputs).await.into()
}

async fn run(call: &Call<'_>, name: &str, _inputs: Value) -> Reply {
    let _ = call.runtime;
    Reply::fail(
        &call.command,
        format!("cannot run action '{name}': the action engine is not wired into the runtime yet"),
    )
}
