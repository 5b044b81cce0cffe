//! CONNECT: from the client's first packet to a CONNACK and a [`Conn`] attached to its session
//! (MQTT 5 §3.1, §3.2; 3.1.1 §3.1, §3.2).
//!
//! Decides the client id (assigned when empty), the keep-alive (capped by `max_keepalive`), the
//! session expiry, authenticates through the hooks on the blocking pool, attaches the session
//! (takeover, clean start, session present) and builds the CONNACK with the limits MQTT 5 clients
//! must respect. Must not do I/O: the connection task writes what this returns.
//!
//! Start reading at [`accept`].

use super::hooks::{AuthDecision, AuthRequest, ClientInfo};
use super::outbound::Outbound;
use super::ratelimit::TokenBucket;
use super::session::Session;
use super::{ConnectionInfo, Shared};
use crate::protocol::packet::{
    ConnAck, Connect, Packet, Properties, ProtocolVersion, Will, reason,
};
use crate::protocol::topic::validate_topic_name;
use std::sync::Arc;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A connected client: everything the read/write loop needs.
pub(super) struct Conn {
    pub shared: Arc<Shared>,
    pub session: Arc<Session>,
    /// The session generation this connection attached with (see `SessionState::generation`).
    pub generation: u64,
    pub version: ProtocolVersion,
    pub client: ClientInfo,
    /// Cancelled by a takeover; a child of the shutdown token, so the loop waits on one future
    /// for both.
    pub kick: CancellationToken,
    /// 1.5 x the effective keep-alive (MQTT 5 §3.1.2.10); `None` when keep-alive is off.
    pub keep_alive: Option<Duration>,
    /// Published unless the client ends with a normal DISCONNECT (§3.1.2.5).
    /// Boxed: most clients have none, and a `Will` is large (its properties).
    pub will: Option<Box<Will>>,
    /// The expiry the client connected with: a DISCONNECT may not raise it from 0 (§3.14.2.2.2).
    pub connect_expiry: u32,
    /// Inbound topic aliases (§3.3.2.3.4), indexed by alias - 1; grown on demand.
    pub in_aliases: Vec<Option<Arc<str>>>,
    pub out: Outbound,
    /// Per-client PUBLISH rate (`max_publish_rate`), `None` when unlimited.
    pub publish_rate: Option<TokenBucket>,
    /// QoS 1 acks produced by the current read batch, not yet seen by the client (Receive
    /// Maximum accounting).
    pub unacked_batch: usize,
    /// The store's durability point that must be reached before the pending output (holding
    /// PUBACK/PUBREC of publishes that reported store events) is written; 0 when none.
    pub durable_needed: u64,
}

/// The outcome of [`accept`].
pub(super) enum Accepted {
    Yes(Box<Conn>),
    /// Refused with this CONNACK.
    No(Box<ConnAck>),
}

fn refuse(code: u8) -> Accepted {
    Accepted::No(Box::new(ConnAck {
        session_present: false,
        reason: code,
        properties: Properties::default(),
    }))
}

/// Handles CONNECT; on success the CONNACK is already in the connection's output buffer.
pub(super) async fn accept(shared: &Arc<Shared>, c: Connect, info: &ConnectionInfo) -> Accepted {
    let settings = &shared.settings;
    let v = c.protocol;
    let mut props = Properties::default();

    // Enhanced authentication (MQTT 5 §4.12) is not offered: refuse any method (§3.1.2.11.9).
    if c.properties.authentication_method.is_some() {
        return refuse(reason::BAD_AUTHENTICATION_METHOD);
    }

    // Client id: an empty one gets a generated id (MQTT 5 §3.1.3.1 Assigned Client Identifier;
    // 3.1.1 only with clean session, else return code 2).
    let client_id: Arc<str> = if c.client_id.is_empty() {
        if !v.is_v5() && !c.clean_start {
            return refuse(reason::CLIENT_IDENTIFIER_NOT_VALID);
        }
        let id = format!("lothub-{}", uuid::Uuid::new_v4().simple());
        if v.is_v5() {
            props.assigned_client_identifier = Some(id.clone());
        }
        Arc::from(id)
    } else {
        Arc::from(c.client_id.as_str())
    };

    // Keep-alive (§3.1.2.10, §3.2.2.3.14 Server Keep Alive).
    let max_ka = settings.max_keepalive;
    let keep_alive = if max_ka == u16::MAX || (c.keep_alive != 0 && c.keep_alive <= max_ka) {
        c.keep_alive
    } else if v.is_v5() {
        props.server_keep_alive = Some(max_ka);
        max_ka
    } else {
        // 3.x cannot be told another value: refuse as Mosquitto does ("identifier rejected").
        return refuse(reason::CLIENT_IDENTIFIER_NOT_VALID);
    };

    // Session expiry: MQTT 5 property (capped), 3.x persistent sessions get the default.
    let max_expiry = u32::try_from(settings.max_session_expiry.as_secs()).unwrap_or(u32::MAX);
    let expiry = if v.is_v5() {
        let asked = c.properties.session_expiry_interval.unwrap_or(0);
        if asked > max_expiry {
            props.session_expiry_interval = Some(max_expiry);
        }
        asked.min(max_expiry)
    } else if c.clean_start {
        0
    } else {
        u32::try_from(settings.default_session_expiry.as_secs()).unwrap_or(u32::MAX)
    };

    if let Some(will) = &c.will {
        if validate_topic_name(&will.topic, &shared.topic_limits).is_err() {
            return refuse(reason::TOPIC_NAME_INVALID);
        }
        // The will lives as long as the session: its properties are bounded like a PUBLISH's.
        if will.properties.user_properties.len() > settings.max_user_properties {
            return refuse(reason::IMPLEMENTATION_SPECIFIC_ERROR);
        }
    }

    let username = info.tls_identity.clone().or_else(|| c.username.clone());
    let client = ClientInfo {
        client_id: client_id.clone(),
        username: username.as_deref().map(Arc::from),
        peer: info.peer,
        listener: info.listener.clone(),
        protocol: v,
    };

    // Authentication runs on the blocking pool: real implementations hash passwords.
    let request = AuthRequest {
        client: client.clone(),
        username,
        password: c.password.clone(),
    };
    let hooks = shared.hooks.clone();
    let decision = tokio::task::spawn_blocking(move || hooks.authenticate(&request))
        .await
        .unwrap_or(AuthDecision::NotAuthorized);
    match decision {
        AuthDecision::Allow => {}
        AuthDecision::BadCredentials => return refuse(reason::BAD_USER_NAME_OR_PASSWORD),
        AuthDecision::NotAuthorized => return refuse(reason::NOT_AUTHORIZED),
    }
    if shared.shutdown.is_cancelled() {
        return refuse(reason::SERVER_SHUTTING_DOWN);
    }

    let kick = shared.shutdown.child_token();
    let attached = shared
        .registry
        .attach(shared, client_id, c.clean_start, expiry, kick.clone());
    // An offline persistent session was resumed or discarded: either way it no longer counts
    // as a disconnected client.
    if attached.was_offline {
        shared.stats.offline_session_gone();
    }
    shared.stats.client_connected();

    if v.is_v5() {
        if settings.receive_maximum != u16::MAX {
            props.receive_maximum = Some(settings.receive_maximum);
        }
        props.maximum_packet_size =
            Some(u32::try_from(settings.max_packet_size).unwrap_or(u32::MAX));
        if settings.topic_alias_maximum > 0 {
            props.topic_alias_maximum = Some(settings.topic_alias_maximum);
        }
        if c.properties.request_response_information == Some(1) {
            props.response_information = Some(format!(
                "{}{}",
                settings.response_information_prefix, client.client_id
            ));
        }
    }

    let client_receive_max = c.properties.receive_maximum.unwrap_or(u16::MAX).max(1);
    let quota = usize::from(client_receive_max.min(settings.max_inflight.max(1)));
    let client_max_packet = c
        .properties
        .maximum_packet_size
        .map_or(usize::MAX, |m| m as usize);
    // Outbound aliases cost a map entry each: use at most as many as we accept inbound.
    let alias_max = if settings.outbound_topic_aliases {
        c.properties
            .topic_alias_maximum
            .unwrap_or(0)
            .min(settings.topic_alias_maximum)
    } else {
        0
    };
    let mut out = Outbound::new(v, quota, client_max_packet, alias_max);
    out.resend = attached.session_present;
    let connack = ConnAck {
        // 3.1.1 §3.2.2.2: session present is 0 whenever clean session is 1 (attach ensures it).
        session_present: attached.session_present,
        reason: reason::SUCCESS,
        properties: props,
    };
    out.push(&Packet::ConnAck(connack), &shared.stats);

    let publish_rate = (settings.max_publish_rate > 0).then(|| {
        TokenBucket::new(
            f64::from(settings.max_publish_rate),
            settings.max_publish_rate,
            Instant::now(),
        )
    });
    shared.hooks.on_connect(&client);
    tracing::info!(
        client_id = %client.client_id,
        user = client.username.as_deref().unwrap_or(""),
        peer = %client.peer,
        protocol = ?v,
        session_present = attached.session_present,
        "client connected"
    );
    Accepted::Yes(Box::new(Conn {
        shared: shared.clone(),
        session: attached.session,
        generation: attached.generation,
        version: v,
        client,
        kick,
        keep_alive: (keep_alive > 0).then(|| Duration::from_millis(u64::from(keep_alive) * 1500)),
        will: c.will.map(Box::new),
        connect_expiry: expiry,
        in_aliases: Vec::new(),
        out,
        publish_rate,
        unacked_batch: 0,
        durable_needed: 0,
    }))
}
