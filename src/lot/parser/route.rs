//! # lot::parser::route: `DEFINE ROUTE` (spec §6)
//!
//! A route is one slice (`route_def`): `ADD` blocks of `WITH KEY value` lines. Checks here: the
//! route type is one lothub runs, every block and key is known for that type, values convert to
//! what the key needs (`'1883'` is a port), required keys are present, and a MAPPING's
//! DESTINATION_TOPIC has the same wildcards as its SOURCE_TOPIC (reported on the destination's
//! line).

use super::route_keys::{
    BRIDGE_KEYS, EVENT_KEYS, MAPPING_KEYS, OTHER_TYPES, SQL_KEYS, Want, convert,
};
use super::{Cx, Pair, Rule, parse_slice};
use crate::lot::ast::{
    Direction, Mapping, Route, RouteConfig, RouteEntry, RouteEvent, RouteType, RouteValue, Span,
    Spanned,
};
use crate::lot::error::LotError;
use crate::lot::source::{DefLines, Source};
use crate::lot::topic;

type R<T> = Result<T, LotError>;

pub(crate) fn parse(src: &Source<'_>, def: &DefLines) -> R<Route> {
    src.check_indentation(def)?;
    let first = def.lines[0];
    let last = def.lines[def.lines.len() - 1];
    let (pair, cx) = parse_slice(src, Rule::route_def, first.start, last.end)?;
    parse_route_def(&cx, pair)
}

fn parse_route_def(cx: &Cx<'_>, pair: Pair<'_>) -> R<Route> {
    let span = cx.span(&pair);
    let mut route = Route {
        name: Spanned {
            value: String::new(),
            span,
        },
        route_type: Spanned {
            value: RouteType::MqttBridge,
            span,
        },
        configs: Vec::new(),
        mappings: Vec::new(),
        events: Vec::new(),
        span,
    };
    for p in pair.into_inner() {
        match p.as_rule() {
            Rule::def_name => route.name = cx.name(p),
            Rule::route_type => route.route_type = parse_route_type(cx, p)?,
            Rule::route_block => parse_route_block(cx, p, &mut route)?,
            _ => {}
        }
    }
    check_required(cx, &route)?;
    Ok(route)
}

fn parse_route_type(cx: &Cx<'_>, pair: Pair<'_>) -> R<Spanned<RouteType>> {
    let span = cx.span(&pair);
    let upper = pair.as_str().to_ascii_uppercase();
    let value = match upper.as_str() {
        "MQTT_BRIDGE" => RouteType::MqttBridge,
        "POSTGRESQL" => RouteType::Postgresql,
        other => {
            let known = if OTHER_TYPES.contains(&other) {
                ""
            } else {
                " (unknown route type)"
            };
            return Err(cx.error(
                &pair,
                format!(
                    "route type {} is not supported by lothub{known}: it runs MQTT_BRIDGE and \
                     POSTGRESQL",
                    pair.as_str()
                ),
            ));
        }
    };
    Ok(Spanned { value, span })
}

fn parse_route_block(cx: &Cx<'_>, pair: Pair<'_>, route: &mut Route) -> R<()> {
    let span = cx.span(&pair);
    let Some(block) = pair.into_inner().nth(1) else {
        return Err(cx
            .src
            .error_span(span, "expected MAPPING, EVENT or a config block"));
    };
    let ty = route.route_type.value;
    match block.as_rule() {
        Rule::route_mapping => {
            if ty != RouteType::MqttBridge {
                return Err(cx.error(
                    &block,
                    "MAPPING blocks belong to MQTT_BRIDGE routes; a POSTGRESQL route uses ADD EVENT",
                ));
            }
            let (name, entries) = parse_named_block(cx, block, &MAPPING_KEYS)?;
            let mapping = build_mapping(cx, name, entries, span)?;
            if route
                .mappings
                .iter()
                .any(|m| m.name.value == mapping.name.value)
            {
                return Err(cx.src.error_span(
                    mapping.name.span,
                    format!("mapping \"{}\" is defined twice", mapping.name.value),
                ));
            }
            route.mappings.push(mapping);
        }
        Rule::route_event => {
            if ty != RouteType::Postgresql {
                return Err(cx.error(
                    &block,
                    "EVENT blocks belong to POSTGRESQL routes; an MQTT_BRIDGE route uses ADD MAPPING",
                ));
            }
            let (name, entries) = parse_named_block(cx, block, &EVENT_KEYS)?;
            route.events.push(build_event(cx, name, entries, span)?);
        }
        _ => {
            let mut inner = block.into_inner();
            let Some(name_pair) = inner.next() else {
                return Err(cx.src.error_span(span, "expected a block name"));
            };
            let block_name = cx.name(name_pair.clone());
            let upper = block_name.value.to_ascii_uppercase();
            let keys: &[(&str, Want)] = match (ty, upper.as_str()) {
                (RouteType::MqttBridge, "SOURCE_CONFIG" | "DESTINATION_CONFIG") => &BRIDGE_KEYS,
                (RouteType::Postgresql, "SQL_CONFIG") => &SQL_KEYS,
                (RouteType::MqttBridge, _) => {
                    return Err(cx.error(
                        &name_pair,
                        format!(
                            "unknown block {}: an MQTT_BRIDGE route takes SOURCE_CONFIG, \
                             DESTINATION_CONFIG and MAPPING",
                            block_name.value
                        ),
                    ));
                }
                (RouteType::Postgresql, _) => {
                    return Err(cx.error(
                        &name_pair,
                        format!(
                            "unknown block {}: a POSTGRESQL route takes SQL_CONFIG and EVENT",
                            block_name.value
                        ),
                    ));
                }
            };
            if route.configs.iter().any(|c| c.block.value == upper) {
                return Err(cx.error(&name_pair, format!("{upper} is given twice")));
            }
            let entries = parse_entries(cx, inner, keys, &upper)?;
            route.configs.push(RouteConfig {
                block: Spanned {
                    value: upper,
                    span: block_name.span,
                },
                entries,
                span,
            });
        }
    }
    Ok(())
}

fn parse_named_block(
    cx: &Cx<'_>,
    block: Pair<'_>,
    keys: &[(&str, Want)],
) -> R<(Spanned<String>, Vec<RouteEntry>)> {
    let span = cx.span(&block);
    let mut inner = block.into_inner().skip(1);
    let Some(name) = inner.next() else {
        return Err(cx.src.error_span(span, "expected a name"));
    };
    let name = cx.name(name);
    let entries = parse_entries(cx, inner, keys, &name.value)?;
    Ok((name, entries))
}

fn parse_entries<'i>(
    cx: &Cx<'_>,
    pairs: impl Iterator<Item = Pair<'i>>,
    keys: &[(&str, Want)],
    block: &str,
) -> R<Vec<RouteEntry>> {
    let mut entries: Vec<RouteEntry> = Vec::new();
    for p in pairs.filter(|p| p.as_rule() == Rule::route_entry) {
        let entry = parse_entry(cx, p, keys, block)?;
        if entries.iter().any(|e| e.key.value == entry.key.value) {
            return Err(cx.src.error_span(
                entry.key.span,
                format!("{} is given twice", entry.key.value),
            ));
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_entry(cx: &Cx<'_>, pair: Pair<'_>, keys: &[(&str, Want)], block: &str) -> R<RouteEntry> {
    let span = cx.span(&pair);
    let mut inner = pair.into_inner().skip(1);
    let (Some(key), Some(value)) = (inner.next(), inner.next()) else {
        return Err(cx.src.error_span(span, "expected WITH KEY value"));
    };
    let upper = key.as_str().to_ascii_uppercase();
    let Some((_, want)) = keys.iter().find(|(k, _)| *k == upper) else {
        let names: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
        return Err(cx.error(
            &key,
            format!(
                "unknown setting {} in {block}: expected one of {}",
                key.as_str(),
                names.join(", ")
            ),
        ));
    };
    let raw = parse_route_value(cx, value.clone())?;
    let value = convert(raw, *want).map_err(|m| cx.error(&value, format!("{upper}: {m}")))?;
    Ok(RouteEntry {
        key: Spanned {
            value: upper,
            span: cx.span(&key),
        },
        value,
        span,
    })
}

fn parse_route_value(cx: &Cx<'_>, pair: Pair<'_>) -> R<RouteValue> {
    let span = cx.span(&pair);
    let Some(v) = pair.into_inner().next() else {
        return Err(cx.src.error_span(span, "expected a value"));
    };
    Ok(match v.as_rule() {
        Rule::get_env => RouteValue::Env(nth_string(cx, v)),
        Rule::get_secret => RouteValue::Secret(nth_string(cx, v)),
        Rule::string | Rule::sq_string => RouteValue::Text(cx.string(v).value),
        Rule::boolean => RouteValue::Bool(v.as_str().eq_ignore_ascii_case("true")),
        Rule::signed_number => {
            let s = v.as_str();
            match s.parse::<i64>() {
                Ok(i) => RouteValue::Int(i),
                Err(_) => match s.parse::<f64>() {
                    Ok(f) if f.is_finite() => RouteValue::Float(f),
                    _ => return Err(cx.error(&v, format!("number {s} is out of range"))),
                },
            }
        }
        _ => RouteValue::Text(v.as_str().to_owned()),
    })
}

fn nth_string(cx: &Cx<'_>, pair: Pair<'_>) -> String {
    pair.into_inner()
        .find(|p| p.as_rule() == Rule::string)
        .map(|p| cx.string(p).value)
        .unwrap_or_default()
}

fn text_of(entries: &[RouteEntry], key: &str) -> Option<Spanned<String>> {
    let e = entries.iter().find(|e| e.key.value == key)?;
    match &e.value {
        RouteValue::Text(t) => Some(Spanned {
            value: t.clone(),
            span: e.span,
        }),
        _ => None,
    }
}

fn require(
    cx: &Cx<'_>,
    entries: &[RouteEntry],
    key: &str,
    block: &Spanned<String>,
    at: Span,
) -> R<Spanned<String>> {
    if let Some(e) = entries.iter().find(|e| e.key.value == key)
        && !matches!(e.value, RouteValue::Text(_))
    {
        return Err(cx
            .src
            .error_span(e.span, format!("{key} must be quoted text")));
    }
    text_of(entries, key).ok_or_else(|| {
        cx.src
            .error_span(at, format!("{} needs WITH {key}", block.value))
    })
}

fn build_mapping(
    cx: &Cx<'_>,
    name: Spanned<String>,
    entries: Vec<RouteEntry>,
    span: Span,
) -> R<Mapping> {
    let source = require(cx, &entries, "SOURCE_TOPIC", &name, span)?;
    let dest = require(cx, &entries, "DESTINATION_TOPIC", &name, span)?;
    topic::check_filter(&source.value).map_err(|m| cx.src.error_span(source.span, m))?;
    topic::check_filter(&dest.value).map_err(|m| cx.src.error_span(dest.span, m))?;
    let (ws, wd) = (
        topic::wildcards(&source.value),
        topic::wildcards(&dest.value),
    );
    if ws != wd {
        let list = |w: &[char]| {
            if w.is_empty() {
                "none".to_owned()
            } else {
                w.iter().map(char::to_string).collect::<Vec<_>>().join(" ")
            }
        };
        return Err(cx.src.error_span(
            dest.span,
            format!(
                "DESTINATION_TOPIC \"{}\" has wildcards ({}) that do not match those of \
                 SOURCE_TOPIC \"{}\" ({}): each + and # of the source fills the same one of the \
                 destination, in order",
                dest.value,
                list(&wd),
                source.value,
                list(&ws)
            ),
        ));
    }
    let direction = match text_of(&entries, "DIRECTION") {
        None => Direction::Out,
        Some(d) => match d.value.to_ascii_lowercase().as_str() {
            "out" => Direction::Out,
            "in" => Direction::In,
            "both" => Direction::Both,
            _ => {
                return Err(cx.src.error_span(
                    d.span,
                    format!(
                        "DIRECTION must be \"out\", \"in\" or \"both\", not \"{}\"",
                        d.value
                    ),
                ));
            }
        },
    };
    Ok(Mapping {
        name,
        source_topic: source,
        destination_topic: dest,
        direction,
        span,
    })
}

fn build_event(
    cx: &Cx<'_>,
    name: Spanned<String>,
    entries: Vec<RouteEntry>,
    span: Span,
) -> R<RouteEvent> {
    let source = require(cx, &entries, "SOURCE_TOPIC", &name, span)?;
    let query = require(cx, &entries, "QUERY", &name, span)?;
    check_placeholders(&query.value).map_err(|m| cx.src.error_span(query.span, m))?;
    topic::check_filter(&source.value).map_err(|m| cx.src.error_span(source.span, m))?;
    let destination_topic = text_of(&entries, "DESTINATION_TOPIC");
    if let Some(d) = &destination_topic {
        topic::check_name(&d.value).map_err(|m| cx.src.error_span(d.span, m))?;
    }
    Ok(RouteEvent {
        name,
        source_topic: source,
        query,
        destination_topic,
        span,
    })
}

/// Every `{word}` or `{word.word}` of a QUERY must be a placeholder the route fills (spec §6).
/// Braces around anything else (a JSON literal in the SQL) are left alone.
fn check_placeholders(query: &str) -> Result<(), String> {
    let mut rest = query;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        let name = &after[..close];
        rest = &after[close + 1..];
        let word_like = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !word_like {
            continue;
        }
        let parts: Vec<&str> = name.split('.').collect();
        let known = match parts.as_slice() {
            ["payload"] | ["topic"] | ["timestamp"] | ["timestamp", "unix"] => true,
            ["topic", n] => n.parse::<u32>().is_ok_and(|n| n >= 1),
            ["payload", "json", path @ ..] => {
                !path.is_empty() && path.iter().all(|p| !p.is_empty())
            }
            _ => false,
        };
        if !known {
            return Err(format!(
                "unknown placeholder {{{name}}} in QUERY: use {{payload}}, {{payload.json.a.b}}, \
                 {{topic}}, {{topic.N}} (N from 1), {{timestamp}} or {{timestamp.unix}}"
            ));
        }
    }
    Ok(())
}

/// Blocks and keys without which a route cannot run.
fn check_required(cx: &Cx<'_>, route: &Route) -> R<()> {
    let needed: &[&str] = match route.route_type.value {
        RouteType::MqttBridge => &["SOURCE_CONFIG", "DESTINATION_CONFIG"],
        RouteType::Postgresql => &["SQL_CONFIG"],
    };
    if route.route_type.value == RouteType::MqttBridge
        && route.configs.len() == 2
        && route.configs.iter().all(|c| c.get("BROKER").is_some())
    {
        return Err(cx.src.error_span(
            route.configs[1].block.span,
            "both sides are BROKER SELF: an MQTT_BRIDGE connects this hub to another broker, so \
             one side needs BROKER_ADDRESS",
        ));
    }
    for block in needed {
        let Some(config) = route.configs.iter().find(|c| c.block.value == *block) else {
            return Err(cx.src.error_span(
                route.route_type.span,
                format!(
                    "a {} route needs an ADD {block} block",
                    route.route_type.value.as_str()
                ),
            ));
        };
        let keys: &[&str] = match route.route_type.value {
            RouteType::MqttBridge if config.get("BROKER").is_some() => &[],
            RouteType::MqttBridge => &["BROKER_ADDRESS"],
            RouteType::Postgresql => &["SERVER", "DATABASE"],
        };
        for key in keys {
            if config.get(key).is_none() {
                let hint = if route.route_type.value == RouteType::MqttBridge {
                    " (or WITH BROKER SELF for this hub)"
                } else {
                    ""
                };
                return Err(cx
                    .src
                    .error_span(config.block.span, format!("{block} needs WITH {key}{hint}")));
            }
        }
    }
    Ok(())
}
