//! # ipnet: IP address ranges (`10.0.0.0/8`, `fd00::/8`, one address)
//!
//! One type shared by the config (`[network]` allow/deny entries, parsed and validated at load)
//! and the broker's admission control (`broker::ratelimit::IpFilter`), so both read an entry the
//! same way. A leaf: pure, no I/O. Parsed once, so the accept path only compares prefixes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

/// An IP address range: `10.0.0.0/8`, `fd00::/8`, or one address (`10.0.0.5`, a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network address as written (host bits are not cleared, they are ignored by `contains`).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` lies in this range. An IPv4-mapped IPv6 address (`::ffff:10.0.0.5`, as a
    /// dual-stack listener reports IPv4 peers) is compared as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports) is the IPv4
/// address, so that an IPv4 rule applies to it.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Compares the top `prefix` bits of two `width`-bit numbers.
fn prefix_eq(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (a >> shift) == (b >> shift)
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid address range \"{s}\": expected an IP address or a CIDR range such as \
                 10.0.0.0/8 or fd00::/8"
            )
        };
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(format!(
                "invalid address range \"{s}\": prefix /{prefix} is longer than {max} bits"
            ));
        }
        // `::ffff:a.b.c.d/p` with p >= 96 is the IPv4 block `a.b.c.d/(p - 96)`, matching how
        // `contains` sees mapped peers.
        match canonical(addr) {
            IpAddr::V4(v4) if addr.is_ipv6() && prefix >= 96 => Ok(IpNet {
                addr: IpAddr::V4(v4),
                prefix: prefix - 96,
            }),
            _ => Ok(IpNet { addr, prefix }),
        }
    }
}

impl TryFrom<String> for IpNet {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_membership_table() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.0/24", "192.168.1.200", true),
            ("192.168.1.0/24", "192.168.2.1", false),
            ("10.0.0.5", "10.0.0.5", true),
            ("10.0.0.5", "10.0.0.6", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "2001:db8::1", true),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ];
        for (n, addr, expected) in cases {
            assert_eq!(net(n).contains(ip(addr)), expected, "{n} contains {addr}");
        }
    }

    #[test]
    fn single_address_is_full_prefix() {
        assert_eq!(net("10.0.0.5").prefix(), 32);
        assert_eq!(net("::1").prefix(), 128);
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn rejects_bad_entries() {
        for bad in [
            "",
            "10.0.0",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/x",
            "host.example",
        ] {
            let err = bad.parse::<IpNet>().unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }
    #[test]
    fn cidr_parsing_and_matching() {
        let table = [
            ("10.0.0.0/8", "10.200.3.4", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("192.168.1.0/24", "::ffff:192.168.1.99", true),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "2001:db9::5", false),
            ("::1", "::1", true),
            ("::/0", "fe80::1", true),
            ("fe80::/10", "febf::1", true),
            ("fe80::/10", "fec0::1", false),
            ("::ffff:10.0.0.0/104", "10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "::ffff:10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "11.0.0.1", false),
            ("::ffff:10.0.0.1", "10.0.0.1", true),
        ];
        for (net, addr, expected) in table {
            let n: IpNet = net.parse().unwrap();
            assert_eq!(n.contains(ip(addr)), expected, "{net} contains {addr}");
        }
        assert!(
            "10.0.0.0/33"
                .parse::<IpNet>()
                .unwrap_err()
                .contains("longer than 32 bits")
        );
        assert!(
            "::/129"
                .parse::<IpNet>()
                .unwrap_err()
                .contains("longer than 128 bits")
        );
        assert!(
            "10.0.0/8"
                .parse::<IpNet>()
                .unwrap_err()
                .contains("expected an IP address")
        );
    }
}
