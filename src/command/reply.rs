//! [`Reply`]: the JSON answer to one command, as published on `$SYS/Coreflux/Command/Output`
//! and to the request's MQTT 5 Response Topic.
//!
//! Shape (commands-and-sys.md §1): success
//! `{"success": true, "command": "AddRule", "requestId": "...", "message": "Rule 'X' added",
//! "entityType": "Rule", "entityName": "X", "data": ...}`, failure
//! `{"success": false, "command": ..., "message": ..., "errors": [{"message", "line", "column",
//! "source"}]}`. Absent optional fields are left out, not `null`.

use crate::lot::LotError;
use serde::Serialize;
use serde_json::Value;

/// One command's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    pub success: bool,
    /// The verb without its dash, PascalCase (`AddRule`).
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
}

/// One error of a failed command. `line` and `column` are 1-based and count from the verb's
/// line; `source` is the text of that line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorItem {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The definition the error is in (`RULE X`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

impl From<&LotError> for ErrorItem {
    fn from(e: &LotError) -> ErrorItem {
        ErrorItem {
            message: e.message.clone(),
            line: Some(e.line),
            column: Some(e.col),
            source: Some(e.source_line.clone()),
            definition: e.definition.clone(),
        }
    }
}

impl Reply {
    /// A success with a message and nothing else.
    pub fn ok(command: &str, message: impl Into<String>) -> Reply {
        Reply {
            success: true,
            command: command.to_string(),
            request_id: None,
            message: message.into(),
            entity_type: None,
            entity_name: None,
            data: None,
            errors: Vec::new(),
        }
    }

    /// A failure; the message is also the one entry of `errors`.
    pub fn fail(command: &str, message: impl Into<String>) -> Reply {
        let message = message.into();
        Reply {
            success: false,
            errors: vec![ErrorItem {
                message: message.clone(),
                line: None,
                column: None,
                source: None,
                definition: None,
            }],
            ..Reply::ok(command, message)
        }
    }

    /// A failure listing LOT errors with their positions.
    pub fn lot_errors(command: &str, message: impl Into<String>, errors: &[LotError]) -> Reply {
        Reply {
            errors: errors.iter().map(ErrorItem::from).collect(),
            ..Reply::fail(command, message)
        }
    }

    /// `Permission denied: -<verb>`.
    pub fn denied(command: &str, verb: &str) -> Reply {
        Reply::fail(command, format!("Permission denied: -{verb}"))
    }

    pub fn entity(mut self, kind: &str, name: &str) -> Reply {
        self.entity_type = Some(kind.to_string());
        self.entity_name = Some(name.to_string());
        self
    }

    pub fn with_data(mut self, data: Value) -> Reply {
        self.data = Some(data);
        self
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a reply always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_shape() {
        let mut r = Reply::ok("AddRule", "Rule 'X' added").entity("Rule", "X");
        r.request_id = Some("7".into());
        let v: Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"success": true, "command": "AddRule", "requestId": "7",
                   "message": "Rule 'X' added", "entityType": "Rule", "entityName": "X"})
        );
    }

    #[test]
    fn failure_shape_with_lot_positions() {
        let e = LotError {
            file: None,
            definition: Some("RULE X".into()),
            line: 2,
            col: 5,
            message: "expected THEN".into(),
            source_line: "    IF x".into(),
        };
        let r = Reply::lot_errors("AddRule", "Rule not added: 1 error", &[e]);
        let v: Value = serde_json::from_slice(&r.to_json()).unwrap();
        assert_eq!(
            v,
            json!({"success": false, "command": "AddRule", "message": "Rule not added: 1 error",
                   "errors": [{"message": "expected THEN", "line": 2, "column": 5,
                               "source": "    IF x", "definition": "RULE X"}]})
        );
        let v: Value =
            serde_json::from_slice(&Reply::denied("AddUser", "addUser").to_json()).unwrap();
        assert_eq!(v["message"], "Permission denied: -addUser");
        assert_eq!(v["errors"][0]["message"], "Permission denied: -addUser");
    }
}
