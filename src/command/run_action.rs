//! `-runAction <name> [json inputs]`: runs a deployed callable action now, through the engine,
//! and replies with its outputs and every message it published.

use serde_json::Value;

use super::{Call, Outcome, Reply};
use crate::runtime::engine::EngineError;

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

async fn run(call: &Call<'_>, name: &str, inputs: Value) -> Reply {
    let cmd = call.command.as_str();
    match call.runtime.engine().run_action(name, inputs).await {
        Ok(run) => {
            let outputs = run.outputs.len();
            let published = run.published.len();
            Reply::ok(
                cmd,
                format!(
                    "Action '{name}' ran: {outputs} output(s), {published} message(s) published"
                ),
            )
            .entity("Action", name)
            .with_data(run.to_json())
        }
        Err(EngineError::UnknownAction(_)) => {
            Reply::fail(cmd, format!("Action '{name}' does not exist"))
        }
        Err(e) => Reply::fail(cmd, format!("Action '{name}' failed: {e}")),
    }
}
