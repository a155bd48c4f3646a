//! Who a client is, as far as limits go: its address, and how many
//! connections that address holds.
//!
//! The address comes from the socket, or from `X-Forwarded-For` only as far
//! as `CHARLA_TRUSTED_PROXIES` says proxies may be trusted (a hop count, as
//! Express's `trust proxy` counts them): with `n` trusted hops the client is
//! the `n`-th address from the right of the chain `X-Forwarded-For…, peer`.
//! A header sent by an untrusted peer, or the part of it in front of the
//! trusted hops, is ignored, so nobody can choose their own address.
//!
//! IPv6 addresses are counted by their /64 prefix (one host usually holds a
//! whole /64), IPv4-mapped IPv6 addresses as the IPv4 address they carry.
//!
//! Invariant: an address's count in [`AddressCounts`] is the number of
//! [`AddressPermit`]s alive for it; an address at 0 holds no entry.

use actix_web::HttpRequest;
use dashmap::DashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The `X-Forwarded-For` header.
const FORWARDED_FOR: &str = "x-forwarded-for";

/// A client address as limits count it: an IPv4 address, or an IPv6 /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientAddress(IpAddr);

impl ClientAddress {
    /// The address limits count `ip` under.
    pub(crate) fn of(ip: IpAddr) -> ClientAddress {
        match ip {
            IpAddr::V4(v4) => ClientAddress(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientAddress(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & (u128::MAX << 64);
                    ClientAddress(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }

    /// An address as a moderator writes it (a ban's `address`): an IPv4 or
    /// IPv6 address, counted as [`ClientAddress::of`] counts it, or an IPv6
    /// /64 as [`ClientAddress`] displays it (`2001:db8::/64`), so that what
    /// `GET /api/bans` shows can be given back.
    pub(crate) fn parse(text: &str) -> Option<ClientAddress> {
        if let Some(prefix) = text.strip_suffix("/64") {
            return match prefix.parse::<IpAddr>().ok()? {
                IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                    Some(ClientAddress::of(IpAddr::V6(v6)))
                }
                _ => None,
            };
        }
        text.parse::<IpAddr>().ok().map(ClientAddress::of)
    }

    /// The address of `request`'s client, trusting `trusted_proxies` hops.
    pub(crate) fn of_request(request: &HttpRequest, trusted_proxies: usize) -> ClientAddress {
        let peer = request
            .peer_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.ip());
        let forwarded = request
            .headers()
            .get_all(FORWARDED_FOR)
            .filter_map(|value| value.to_str().ok());
        ClientAddress::of(resolve(peer, forwarded, trusted_proxies))
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// The client's address behind `trusted` proxies: `peer` is the nearest
/// hop; each trusted hop vouches for the entry it appended, the rightmost
/// one not yet used. An entry that is missing or is not an address ends the
/// walk at the last address vouched for.
fn resolve<'a>(peer: IpAddr, forwarded: impl Iterator<Item = &'a str>, trusted: usize) -> IpAddr {
    if trusted == 0 {
        return peer;
    }
    // Several headers count as one list, in order.
    let chain: Vec<&str> = forwarded.flat_map(|value| value.split(',')).collect();
    let mut client = peer;
    for entry in chain.iter().rev().take(trusted) {
        match parse_entry(entry) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
}

/// Open connections per client address.
#[derive(Debug, Default)]
pub(crate) struct AddressCounts {
    open: DashMap<ClientAddress, usize>,
}

impl AddressCounts {
    /// A place for one more connection from `address`, unless it holds
    /// `max` already.
    pub(crate) fn admit(
        self: &Arc<Self>,
        address: ClientAddress,
        max: usize,
    ) -> Option<AddressPermit> {
        let mut open = self.open.entry(address).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(AddressPermit {
            counts: self.clone(),
            address,
        })
    }

    /// Connections open from `address`.
    #[cfg(test)]
    fn open(&self, address: ClientAddress) -> usize {
        self.open.get(&address).map_or(0, |open| *open)
    }
}

/// One connection's place in its address's count; dropping it frees the
/// place.
#[derive(Debug)]
pub(crate) struct AddressPermit {
    counts: Arc<AddressCounts>,
    address: ClientAddress,
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        // The entry exists: this permit counted itself into it.
        self.counts.open.remove_if_mut(&self.address, |_, open| {
            *open -= 1;
            *open == 0
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_socket_decides() {
        let forged = ["6.6.6.6"];
        assert_eq!(
            resolve(ip("10.0.0.1"), forged.into_iter(), 0),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn each_trusted_hop_vouches_for_one_entry_from_the_right() {
        let chain = ["6.6.6.6, 1.2.3.4", "10.0.0.2"];
        let peer = ip("10.0.0.1");
        assert_eq!(resolve(peer, chain.into_iter(), 1), ip("10.0.0.2"));
        assert_eq!(resolve(peer, chain.into_iter(), 2), ip("1.2.3.4"));
        assert_eq!(resolve(peer, chain.into_iter(), 3), ip("6.6.6.6"));
        // More trusted hops than entries: the leftmost entry.
        assert_eq!(resolve(peer, chain.into_iter(), 9), ip("6.6.6.6"));
        // No header at all: the peer.
        assert_eq!(resolve(peer, [].into_iter(), 1), peer);
    }

    #[test]
    fn a_garbled_entry_stops_at_the_last_address_vouched_for() {
        let chain = ["1.2.3.4, unknown"];
        assert_eq!(
            resolve(ip("10.0.0.1"), chain.into_iter(), 2),
            ip("10.0.0.1")
        );
        let chain = ["[2001:db8::1]:443, 5.6.7.8:80"];
        assert_eq!(resolve(ip("10.0.0.1"), chain.into_iter(), 1), ip("5.6.7.8"));
        assert_eq!(
            resolve(ip("10.0.0.1"), chain.into_iter(), 2),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            ClientAddress::of(ip("2001:db8:1:2:aaaa::1")),
            ClientAddress::of(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            ClientAddress::of(ip("2001:db8:1:2::1")),
            ClientAddress::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            ClientAddress::of(ip("::ffff:1.2.3.4")),
            ClientAddress::of(ip("1.2.3.4"))
        );
        assert_eq!(
            ClientAddress::of(ip("2001:db8::1")).to_string(),
            "2001:db8::/64"
        );
    }

    #[test]
    fn a_written_address_parses_as_connections_count_it() {
        let parse = |text: &str| ClientAddress::parse(text);
        assert_eq!(
            parse("203.0.113.7"),
            Some(ClientAddress::of(ip("203.0.113.7")))
        );
        assert_eq!(parse("::ffff:203.0.113.7"), parse("203.0.113.7"));
        assert_eq!(
            parse("2001:db8:1:2::1"),
            Some(ClientAddress::of(ip("2001:db8:1:2:ffff::9")))
        );
        for shown in ["203.0.113.7", "2001:db8:1:2::/64"] {
            assert_eq!(parse(shown).unwrap().to_string(), shown);
        }
        assert_eq!(parse("2001:db8:1:2::/64"), parse("2001:db8:1:2::1"));
        for bad in [
            "",
            "nonsense",
            "203.0.113.7/64",
            "203.0.113.7/32",
            "::ffff:1.2.3.4/64",
            "2001:db8::/48",
            "203.0.113.7:80",
            " 203.0.113.7",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn permits_count_and_free_their_places() {
        let counts = Arc::new(AddressCounts::default());
        let address = ClientAddress::of(ip("1.2.3.4"));
        let first = counts.admit(address, 2).unwrap();
        let second = counts.admit(address, 2).unwrap();
        assert!(counts.admit(address, 2).is_none());
        assert!(counts.admit(ClientAddress::of(ip("1.2.3.5")), 2).is_some());
        drop(first);
        assert_eq!(counts.open(address), 1);
        let third = counts.admit(address, 2).unwrap();
        drop((second, third));
        assert_eq!(counts.open(address), 0);
        assert!(counts.open.is_empty());
    }
}
