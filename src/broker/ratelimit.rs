//! Admission control: per-client publish rate, per-IP connection rate, IP allow/deny lists.
//!
//! Owns three small, pure data structures; the caller supplies the current time so that tests
//! need no clock. It must not touch sockets or sessions: the connection code asks
//! [`IpFilter::allows`] and [`ConnectionRateLimiter::check`] when a socket is accepted, and
//! [`TokenBucket::try_take`] for each incoming PUBLISH (MQTT 5 reason 0x96 Message rate too high
//! is the broker's to send).
//!
//! Start reading at [`TokenBucket`].

pub use crate::ipnet::IpNet;
use crate::ipnet::canonical;
use ahash::AHashMap;
use std::net::IpAddr;
use tokio::time::{Duration, Instant};

/// A token bucket: up to `burst` events at once, refilled at `rate` events per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `rate` is events per second (> 0), `burst` the bucket size (at least 1).
    pub fn new(rate: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate.max(f64::MIN_POSITIVE),
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
    }

    /// Takes one token if available.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be available (`now` if one is available already); lets a caller
    /// delay reading instead of refusing.
    pub fn next_available(&mut self, now: Instant) -> Instant {
        self.refill(now);
        if self.tokens >= 1.0 {
            return now;
        }
        now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
    }
}

/// Per-IP connection rate limiting with a bounded map.
///
/// Each address gets a [`TokenBucket`] (`per_window` connections per `window`). The map holds at
/// most `max_entries` addresses: when full, entries idle for a whole window (their bucket is full
/// again, so forgetting them changes nothing) are evicted, and if none is, the least recently
/// seen entry is. A flood from many addresses therefore costs bounded memory.
#[derive(Debug)]
pub struct ConnectionRateLimiter {
    per_window: u32,
    window: Duration,
    max_entries: usize,
    entries: AHashMap<IpAddr, (TokenBucket, Instant)>,
}

impl ConnectionRateLimiter {
    pub fn new(per_window: u32, window: Duration, max_entries: usize) -> ConnectionRateLimiter {
        ConnectionRateLimiter {
            per_window: per_window.max(1),
            window: window.max(Duration::from_millis(1)),
            max_entries: max_entries.max(1),
            entries: AHashMap::new(),
        }
    }

    /// True if a new connection from `ip` is allowed now (and counts it).
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> bool {
        let ip = canonical(ip);
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.max_entries {
            self.evict(now);
        }
        let rate = f64::from(self.per_window) / self.window.as_secs_f64();
        let (bucket, seen) = self
            .entries
            .entry(ip)
            .or_insert_with(|| (TokenBucket::new(rate, self.per_window, now), now));
        *seen = now;
        bucket.try_take(now)
    }

    /// Number of addresses currently tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict(&mut self, now: Instant) {
        let window = self.window;
        self.entries
            .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < window);
        if self.entries.len() >= self.max_entries {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, seen))| *seen)
                .map(|(ip, _)| *ip);
            if let Some(ip) = oldest {
                self.entries.remove(&ip);
            }
        }
    }
}

/// IP allow and deny lists. A denied address is refused; otherwise, when the allow list is not
/// empty, only addresses it contains are admitted; with both lists empty everyone is admitted.
#[derive(Debug, Clone, Default)]
pub struct IpFilter {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl IpFilter {
    /// A filter from ranges already parsed (the config's `[network]` lists).
    pub fn from_nets(allow: Vec<IpNet>, deny: Vec<IpNet>) -> IpFilter {
        IpFilter { allow, deny }
    }

    /// Parses both lists (each entry an address or CIDR block); the error names the entry.
    pub fn new<A, D>(allow: A, deny: D) -> Result<IpFilter, String>
    where
        A: IntoIterator,
        A::Item: AsRef<str>,
        D: IntoIterator,
        D::Item: AsRef<str>,
    {
        let parse = |s: &str| s.parse::<IpNet>();
        Ok(IpFilter {
            allow: allow
                .into_iter()
                .map(|s| parse(s.as_ref()))
                .collect::<Result<_, _>>()?,
            deny: deny
                .into_iter()
                .map(|s| parse(s.as_ref()))
                .collect::<Result<_, _>>()?,
        })
    }

    /// True when both lists are empty (the caller can skip the check).
    pub fn is_open(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.deny.iter().any(|n| n.contains(ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 3, t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        assert_eq!(b.next_available(t0), t0 + Duration::from_millis(500));
        assert!(!b.try_take(t0 + Duration::from_millis(400)));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(100);
        let taken = (0..10).filter(|_| b.try_take(later)).count();
        assert_eq!(taken, 3);
        // Time going backwards (instants from different sources) never adds tokens.
        assert!(!b.try_take(t0));
    }

    #[test]
    fn connection_limiter_per_ip() {
        let t0 = Instant::now();
        let mut l = ConnectionRateLimiter::new(2, Duration::from_secs(10), 100);
        assert!(l.check(ip("10.0.0.1"), t0));
        assert!(l.check(ip("10.0.0.1"), t0));
        assert!(!l.check(ip("10.0.0.1"), t0));
        // The mapped IPv6 form is the same client.
        assert!(!l.check(ip("::ffff:10.0.0.1"), t0));
        assert!(l.check(ip("10.0.0.2"), t0));
        assert!(l.check(ip("10.0.0.1"), t0 + Duration::from_secs(5)));
        assert!(!l.check(ip("10.0.0.1"), t0 + Duration::from_secs(5)));
    }

    #[test]
    fn connection_limiter_map_is_bounded() {
        let t0 = Instant::now();
        let mut l = ConnectionRateLimiter::new(1, Duration::from_secs(10), 50);
        for i in 0..1000u32 {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(l.check(addr, t0 + Duration::from_millis(u64::from(i))));
            assert!(l.len() <= 50);
        }
        // The most recent address is still remembered (and limited).
        let last = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + 999));
        assert!(!l.check(last, t0 + Duration::from_millis(999)));
        // After a whole window, stale entries are evicted first.
        let later = t0 + Duration::from_secs(60);
        assert!(l.check(ip("192.168.1.1"), later));
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn filter_deny_wins_and_allow_restricts() {
        let open = IpFilter::default();
        assert!(open.is_open());
        assert!(open.allows(ip("1.2.3.4")));

        let f = IpFilter::new(["10.0.0.0/8", "2001:db8::/32"], ["10.0.0.66"]).unwrap();
        assert!(f.allows(ip("10.1.2.3")));
        assert!(!f.allows(ip("10.0.0.66")));
        assert!(!f.allows(ip("::ffff:10.0.0.66")));
        assert!(!f.allows(ip("172.16.0.1")));
        assert!(f.allows(ip("2001:db8::1")));

        let deny_only = IpFilter::new(Vec::<String>::new(), ["127.0.0.0/8"]).unwrap();
        assert!(!deny_only.allows(ip("127.0.0.1")));
        assert!(deny_only.allows(ip("::1")));

        assert!(IpFilter::new(["nonsense"], Vec::<&str>::new()).is_err());
    }
}
