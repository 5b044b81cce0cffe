//! Command text -> [`Request`]: the verb, its arguments, the optional trailing `-requestId`.
//!
//! Pure (no broker, no runtime). The payload is `-<verb> <arguments>`; arguments are words split
//! on whitespace with double quotes grouping (quotes removed, `a="b c"` is one word `a=b c`).
//! Verbs that take a LOT text or JSON (`-add<Kind>`, `-lot`, `-restore`, the inputs of
//! `-runAction`) read the raw rest of the payload instead ([`Args::rest`]), so their line
//! numbering is kept: the verb's line is line 1 of the text handed on.

use thiserror::Error;

/// A command as received, before its verb is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The verb as written, without its dash (`addRule`).
    pub verb: String,
    /// Everything after the verb, with the `-requestId <id>` suffix removed.
    pub rest: String,
    /// The id from a trailing `-requestId <id>`, echoed in the reply.
    pub request_id: Option<String>,
}

/// Why a payload is not a command at all (no verb can be named).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("the command is not UTF-8 text")]
    NotUtf8,
    #[error("empty command; expected -<verb> <arguments>, e.g. -status")]
    Empty,
    #[error("a command starts with '-', e.g. -status (got {0:?})")]
    NoDash(String),
}

/// A verb's arguments were wrong: the reply's message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ArgError(pub String);

impl Request {
    /// Splits a command payload into verb, arguments and request id.
    pub fn parse(payload: &[u8]) -> Result<Request, ParseError> {
        let text = std::str::from_utf8(payload).map_err(|_| ParseError::NotUtf8)?;
        let text = text.trim_start();
        if text.is_empty() {
            return Err(ParseError::Empty);
        }
        let Some(after_dash) = text.strip_prefix('-') else {
            let word: String = text.chars().take_while(|c| !c.is_whitespace()).collect();
            return Err(ParseError::NoDash(word));
        };
        let verb_end = after_dash
            .find(char::is_whitespace)
            .unwrap_or(after_dash.len());
        let verb = after_dash[..verb_end].to_string();
        let rest = &after_dash[verb_end..];
        let (rest, request_id) = split_request_id(rest);
        // Only blanks on the verb's own line are dropped: a LOT text that starts on the next
        // line keeps its leading line break, so its line numbers count from the verb's line.
        let rest = rest.trim_start_matches([' ', '\t']);
        Ok(Request {
            verb,
            rest: rest.to_string(),
            request_id,
        })
    }

    /// The verb in the reply's form: without the dash, first letter upper case (`AddRule`).
    pub fn command_name(&self) -> String {
        pascal_case(&self.verb)
    }

    /// The arguments as words.
    pub fn args(&self) -> Args<'_> {
        Args {
            text: &self.rest,
            pos: 0,
        }
    }
}

/// `addRule` -> `AddRule`.
pub fn pascal_case(verb: &str) -> String {
    let mut chars = verb.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Removes a trailing `-requestId <id>` (the id a word, optionally quoted). The `-requestId`
/// must stand after whitespace so that it is never the end of another word.
fn split_request_id(rest: &str) -> (&str, Option<String>) {
    const KEY: &str = "-requestId";
    let trimmed = rest.trim_end();
    let Some(at) = trimmed.rfind(KEY) else {
        return (rest, None);
    };
    let before = &trimmed[..at];
    if !(before.is_empty() || before.ends_with(char::is_whitespace)) {
        return (rest, None);
    }
    let tail = &trimmed[at + KEY.len()..];
    if !tail.starts_with(char::is_whitespace) {
        return (rest, None);
    }
    let mut args = Args { text: tail, pos: 0 };
    match (args.word(), args.word()) {
        (Some(id), None) if !id.is_empty() => (before, Some(id)),
        _ => (rest, None),
    }
}

/// A cursor over a command's arguments (the mini-redis `Parse` idea: each verb takes what it
/// needs, then says whether anything is left over).
#[derive(Debug, Clone)]
pub struct Args<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Args<'a> {
    /// The next word: whitespace separates, double quotes group (and are removed). `None` at
    /// the end.
    pub fn word(&mut self) -> Option<String> {
        let rest = &self.text[self.pos..];
        let start = rest.len() - rest.trim_start().len();
        let rest = &rest[start..];
        if rest.is_empty() {
            self.pos = self.text.len();
            return None;
        }
        let mut word = String::new();
        let mut quoted = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    end = i;
                    break;
                }
                c => word.push(c),
            }
        }
        self.pos += start + end;
        Some(word)
    }

    /// The next word, or an error naming what was expected.
    pub fn required(&mut self, what: &str, usage: &str) -> Result<String, ArgError> {
        match self.word() {
            Some(w) if !w.is_empty() => Ok(w),
            _ => Err(ArgError(format!("missing {what}; usage: {usage}"))),
        }
    }

    /// The raw text after the words taken so far (blanks on the current line dropped, line
    /// breaks kept), for LOT and JSON arguments.
    pub fn rest(&self) -> &'a str {
        self.text[self.pos..].trim_start_matches([' ', '\t'])
    }

    /// Errors when words are left over.
    pub fn finish(mut self, usage: &str) -> Result<(), ArgError> {
        match self.word() {
            None => Ok(()),
            Some(w) => Err(ArgError(format!(
                "unexpected argument {w:?}; usage: {usage}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let mut a = Args { text, pos: 0 };
        std::iter::from_fn(|| a.word()).collect()
    }

    #[test]
    fn verb_and_words() {
        let r = Request::parse(b"-addUser  alice  s3cret").unwrap();
        assert_eq!(r.verb, "addUser");
        assert_eq!(r.command_name(), "AddUser");
        assert_eq!(r.request_id, None);
        let mut a = r.args();
        assert_eq!(a.word().as_deref(), Some("alice"));
        assert_eq!(a.word().as_deref(), Some("s3cret"));
        assert_eq!(a.word(), None);
    }

    #[test]
    fn quotes_group_and_are_removed() {
        assert_eq!(words(r#"a "b c" d"#), ["a", "b c", "d"]);
        assert_eq!(words(r#"GREETING="hello world""#), ["GREETING=hello world"]);
        assert_eq!(words(r#""""#), [""]);
        assert_eq!(words("  \t\n "), Vec::<String>::new());
    }

    #[test]
    fn request_id_is_taken_from_the_end() {
        let r = Request::parse(b"-removeUser bob -requestId 42").unwrap();
        assert_eq!(r.request_id.as_deref(), Some("42"));
        assert_eq!(words(&r.rest), ["bob"]);
        let r = Request::parse(b"-status -requestId \"a b\"  \n").unwrap();
        assert_eq!(r.request_id.as_deref(), Some("a b"));
        assert_eq!(r.rest, "");
        // Not at the end, or glued to another word: an ordinary argument.
        let r = Request::parse(b"-setEnv X=-requestId 7").unwrap();
        assert_eq!(r.request_id, None);
        let r = Request::parse(b"-removeUser -requestId a b").unwrap();
        assert_eq!(r.request_id, None);
    }

    #[test]
    fn lot_text_keeps_its_lines() {
        let payload =
            "-addRule\nDEFINE RULE X WITH PRIORITY 100 FOR Publish\n    ALLOW -requestId r1";
        let r = Request::parse(payload.as_bytes()).unwrap();
        assert_eq!(r.request_id.as_deref(), Some("r1"));
        assert_eq!(
            r.rest,
            "\nDEFINE RULE X WITH PRIORITY 100 FOR Publish\n    ALLOW "
        );
        let r = Request::parse(b"-addRule   DEFINE RULE Y").unwrap();
        assert_eq!(r.rest, "DEFINE RULE Y");
    }

    #[test]
    fn rest_after_words() {
        let r = Request::parse(br#"-runAction Add {"a": 1, "b": 2}"#).unwrap();
        let mut a = r.args();
        assert_eq!(a.word().as_deref(), Some("Add"));
        assert_eq!(a.rest(), r#"{"a": 1, "b": 2}"#);
    }

    #[test]
    fn not_commands() {
        assert_eq!(Request::parse(b""), Err(ParseError::Empty));
        assert_eq!(Request::parse(b"  \n"), Err(ParseError::Empty));
        assert_eq!(
            Request::parse(b"status now"),
            Err(ParseError::NoDash("status".into()))
        );
        assert_eq!(Request::parse(&[0xff, 0xfe]), Err(ParseError::NotUtf8));
    }

    #[test]
    fn finish_and_required() {
        let r = Request::parse(b"-removeUser").unwrap();
        let e = r
            .args()
            .required("user name", "-removeUser <user>")
            .unwrap_err();
        assert_eq!(e.0, "missing user name; usage: -removeUser <user>");
        let r = Request::parse(b"-removeUser a b").unwrap();
        let mut a = r.args();
        a.word();
        assert!(
            a.finish("-removeUser <user>")
                .unwrap_err()
                .0
                .contains("\"b\"")
        );
    }
}
