//! Which TCP peers are front proxies whose `X-Forwarded-*` / `X-Original-*` headers are
//! believed: addresses and CIDR blocks (`--trusted-proxy`). Empty by default, so nothing is
//! believed until the operator names the proxy.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One trusted address or block, e.g. `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

/// A `--trusted-proxy` value that is neither an IP address nor a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not an IP address or CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1, fd00::/8)")]
pub struct ProxyNetError {
    value: String,
}

impl FromStr for ProxyNet {
    type Err = ProxyNetError;

    fn from_str(s: &str) -> Result<ProxyNet, ProxyNetError> {
        let err = || ProxyNetError {
            value: s.to_owned(),
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would also take a leading `+`.
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| err())?
            }
            Some(_) => return Err(err()),
        };
        if prefix > max {
            return Err(err());
        }
        let canonical = addr.to_canonical();
        let prefix = if canonical.is_ipv4() && addr.is_ipv6() {
            // `::ffff:a.b.c.d/n` counts the prefix over 128 bits; shorter than the mapped
            // range itself would mean more than IPv4.
            prefix.checked_sub(96).ok_or_else(err)?
        } else {
            prefix
        };
        Ok(ProxyNet {
            addr: canonical,
            prefix,
        })
    }
}

impl ProxyNet {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the top `prefix` of `bits` bits of `a` and `b` agree.
fn masked(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The trusted front proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ProxyNet>);

impl TrustedProxies {
    /// These addresses and blocks.
    pub fn new(nets: Vec<ProxyNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    /// Whether a request from `peer` comes from a trusted proxy (IPv4-mapped IPv6 peers count
    /// as their IPv4 address).
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(peer))
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configured blocks, for the start-up banner.
    pub fn nets(&self) -> &[ProxyNet] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|s| s.parse().expect("valid")).collect())
    }

    #[test]
    fn addresses_and_blocks_match_only_their_peers() {
        let t = trusted(&["127.0.0.1", "10.1.0.0/16", "fd00::/8"]);
        for ip in ["127.0.0.1", "10.1.200.3", "fd12::1", "::ffff:127.0.0.1"] {
            assert!(t.trusts(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["127.0.0.2", "10.2.0.1", "fe80::1", "::1", "192.168.1.1"] {
            assert!(!t.trusts(ip.parse().expect("ip")), "{ip}");
        }
        assert!(trusted(&["0.0.0.0/0"]).trusts("8.8.8.8".parse().expect("ip")));
        assert!(!trusted(&["0.0.0.0/0"]).trusts("::1".parse().expect("ip")));
        assert!(trusted(&["::ffff:10.0.0.0/104"]).trusts("10.9.9.9".parse().expect("ip")));
        assert!(!TrustedProxies::default().trusts("127.0.0.1".parse().expect("ip")));
    }

    #[test]
    fn malformed_values_are_refused_with_the_value() {
        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::1/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "1.2.3",
            "::ffff:10.0.0.0/64",
        ] {
            let e = bad.parse::<ProxyNet>().expect_err("invalid");
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }
}
