//! Bans (docs/protocol.md, rule 52): who is kept out of which room, or of
//! the whole server, and until when.
//!
//! A ban names a member id (`identity`: an identity's id after `identify`,
//! or an anonymous connection's session id) or a client address as rule 46
//! counts it (IPv4, or an IPv6 /64). It lasts until `until` (Unix
//! milliseconds) and stops applying by itself then: every question takes
//! the clock of the moment (`now`), so an expired ban is never enforced,
//! even before [`Bans::forget_expired`] drops it. Taking the clock as an
//! argument also lets the tests below move time without waiting.
//!
//! [`Bans`] belongs to the registry, which checks `join` and `say` against
//! it; the SQLite copy that outlives a restart is the ban book
//! ([`crate::store::database::BanBook`]).
//!
//! Invariant: [`Bans`]'s two indexes hold the same bans, and its `targets`
//! names each ban's index entry, so a lift by id finds it in one step.

use crate::address::ClientAddress;
use charla_protocol::{RoomName, api};
use std::collections::HashMap;
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds in a second.
const MILLIS_PER_SECOND: u64 = 1000;
/// Seconds in a day (UTC has no leap seconds in Unix time).
const SECONDS_PER_DAY: u64 = 86_400;

/// What a ban keeps out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BanTarget {
    /// Every connection whose member id is this one.
    Identity(String),
    /// Every connection from this client address.
    Address(ClientAddress),
}

/// One ban.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Ban {
    /// Opaque: 16 random hex digits.
    pub(crate) id: String,
    pub(crate) target: BanTarget,
    /// The room; `None` bans from every room.
    pub(crate) room: Option<RoomName>,
    /// When it ends, in Unix milliseconds.
    pub(crate) until: u64,
    /// Why, in the moderator's words (shown to the banned client).
    pub(crate) reason: Option<String>,
}

impl Ban {
    /// A fresh ban id. Ids only name bans to the token holder, so they
    /// need to be unique, not unguessable.
    pub(crate) fn new_id() -> String {
        format!("{:016x}", fastrand::u64(..))
    }

    /// Whether the ban still applies at `now`.
    pub(crate) fn is_active(&self, now: u64) -> bool {
        now < self.until
    }

    /// Whether the ban applies in `room`.
    pub(crate) fn covers(&self, room: &RoomName) -> bool {
        self.room.as_ref().is_none_or(|banned| banned == room)
    }

    /// Whether the ban names a connection with this member id and address.
    pub(crate) fn names(&self, member_id: &str, address: ClientAddress) -> bool {
        match &self.target {
            BanTarget::Identity(identity) => identity == member_id,
            BanTarget::Address(banned) => *banned == address,
        }
    }

    /// The `message` of the `banned` error, with the end in UTC.
    pub(crate) fn refusal(&self) -> String {
        let place = if self.room.is_some() {
            "this room"
        } else {
            "this server"
        };
        let mut message = format!("you are banned from {place} until {}", rfc3339(self.until));
        if let Some(reason) = &self.reason {
            let _ = write!(message, ": {reason}");
        }
        message
    }

    /// The ban as the HTTP API shows it (and the ban book stores it).
    pub(crate) fn to_wire(&self) -> api::Ban {
        let (identity, address) = match &self.target {
            BanTarget::Identity(identity) => (Some(identity.clone()), None),
            BanTarget::Address(address) => (None, Some(address.to_string())),
        };
        api::Ban {
            id: self.id.clone(),
            identity,
            address,
            room: self.room.as_ref().map(|room| room.as_str().to_owned()),
            until: self.until,
            reason: self.reason.clone(),
        }
    }

    /// A ban read back from the ban book; `None` for a row that names
    /// neither exactly one target nor a valid room (a file edited by hand).
    pub(crate) fn from_wire(wire: api::Ban) -> Option<Ban> {
        let target = match (wire.identity, wire.address) {
            (Some(identity), None) => BanTarget::Identity(identity),
            (None, Some(address)) => BanTarget::Address(ClientAddress::parse(&address)?),
            _ => return None,
        };
        let room = match wire.room {
            Some(room) => Some(RoomName::parse(&room).ok()?),
            None => None,
        };
        Some(Ban {
            id: wire.id,
            target,
            room,
            until: wire.until,
            reason: wire.reason,
        })
    }
}

/// The bans the registry enforces, indexed by what they name: a `join` or
/// `say` looks up two keys, and nothing at all while there are no bans.
#[derive(Debug, Default)]
pub(crate) struct Bans {
    by_identity: HashMap<String, Vec<Ban>>,
    by_address: HashMap<ClientAddress, Vec<Ban>>,
    /// Each ban's target, by ban id.
    targets: HashMap<String, BanTarget>,
}

impl Bans {
    /// The bans in `bans`.
    pub(crate) fn from_list(bans: Vec<Ban>) -> Bans {
        let mut all = Bans::default();
        for ban in bans {
            all.insert(ban);
        }
        all
    }

    /// Whether no ban is held at all: the registry's check of a `join` or
    /// `say` then costs nothing, not even a look at the clock.
    pub(crate) fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Bans held (expired ones not yet forgotten included).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.targets.len()
    }

    /// Adds `ban` (replacing one with the same id).
    pub(crate) fn insert(&mut self, ban: Ban) {
        self.remove(&ban.id);
        self.targets.insert(ban.id.clone(), ban.target.clone());
        match &ban.target {
            BanTarget::Identity(identity) => self
                .by_identity
                .entry(identity.clone())
                .or_default()
                .push(ban),
            BanTarget::Address(address) => self.by_address.entry(*address).or_default().push(ban),
        }
    }

    /// Lifts the ban `id`; answers whether it was in force at `now` (an
    /// expired one is dropped all the same).
    pub(crate) fn lift(&mut self, id: &str, now: u64) -> bool {
        self.remove(id).is_some_and(|ban| ban.is_active(now))
    }

    /// The bans in force at `now`, soonest to end first (then by id).
    pub(crate) fn active(&self, now: u64) -> Vec<&Ban> {
        let mut active: Vec<&Ban> = self
            .by_identity
            .values()
            .chain(self.by_address.values())
            .flatten()
            .filter(|ban| ban.is_active(now))
            .collect();
        active.sort_unstable_by(|a, b| a.until.cmp(&b.until).then_with(|| a.id.cmp(&b.id)));
        active
    }

    /// The ban that keeps a connection with `member_id` and `address` out
    /// of `room` at `now`: of those in force, the one that ends last.
    pub(crate) fn barring(
        &self,
        member_id: &str,
        address: ClientAddress,
        room: &RoomName,
        now: u64,
    ) -> Option<&Ban> {
        if self.is_empty() {
            return None;
        }
        let by_identity = self.by_identity.get(member_id).into_iter().flatten();
        let by_address = self.by_address.get(&address).into_iter().flatten();
        by_identity
            .chain(by_address)
            .filter(|ban| ban.is_active(now) && ban.covers(room))
            .max_by_key(|ban| ban.until)
    }

    /// Drops every ban that ended by `now`.
    pub(crate) fn forget_expired(&mut self, now: u64) {
        let expired: Vec<String> = self
            .by_identity
            .values()
            .chain(self.by_address.values())
            .flatten()
            .filter(|ban| !ban.is_active(now))
            .map(|ban| ban.id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
    }

    fn remove(&mut self, id: &str) -> Option<Ban> {
        let target = self.targets.remove(id)?;
        fn take<K: std::hash::Hash + Eq>(
            index: &mut HashMap<K, Vec<Ban>>,
            key: &K,
            id: &str,
        ) -> Option<Ban> {
            let bans = index.get_mut(key)?;
            let ban = bans
                .iter()
                .position(|ban| ban.id == id)
                .map(|at| bans.swap_remove(at));
            if bans.is_empty() {
                index.remove(key);
            }
            ban
        }
        match &target {
            BanTarget::Identity(identity) => take(&mut self.by_identity, identity, id),
            BanTarget::Address(address) => take(&mut self.by_address, address, id),
        }
    }
}

/// Milliseconds since the Unix epoch: a message's `at`, and the clock bans
/// are compared with.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `millis` (Unix milliseconds) as an RFC 3339 time in UTC to the second,
/// rounded up so that the time shown is never before the real one:
/// `2026-12-04T12:00:00Z`.
pub(crate) fn rfc3339(millis: u64) -> String {
    let seconds = millis.div_ceil(MILLIS_PER_SECOND);
    let (days, time) = (seconds / SECONDS_PER_DAY, seconds % SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        time / 3600,
        time / 60 % 60,
        time % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Counted from 0000-03-01, so a leap day ends its year.
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn address(text: &str) -> ClientAddress {
        ClientAddress::parse(text).unwrap()
    }

    fn ban(id: &str, target: BanTarget, room_name: Option<&str>, until: u64) -> Ban {
        Ban {
            id: id.into(),
            target,
            room: room_name.map(room),
            until,
            reason: None,
        }
    }

    fn identity(id: &str) -> BanTarget {
        BanTarget::Identity(id.into())
    }

    #[test]
    fn a_room_ban_bars_that_room_only_and_a_server_ban_every_room() {
        let anywhere = address("192.0.2.1");
        let bans = Bans::from_list(vec![
            ban("a", identity("mallory"), Some("general"), 1000),
            ban("b", BanTarget::Address(address("203.0.113.7")), None, 1000),
        ]);
        let general = room("general");
        let other = room("other");
        assert_eq!(
            bans.barring("mallory", anywhere, &general, 0)
                .map(|b| &b.id[..]),
            Some("a")
        );
        assert!(bans.barring("mallory", anywhere, &other, 0).is_none());
        assert!(bans.barring("ana", anywhere, &general, 0).is_none());
        for name in [&general, &other] {
            assert_eq!(
                bans.barring("ana", address("203.0.113.7"), name, 0)
                    .map(|b| &b.id[..]),
                Some("b")
            );
        }
        assert!(
            bans.barring("ana", address("203.0.113.8"), &other, 0)
                .is_none()
        );
    }

    #[test]
    fn a_ban_stops_applying_at_its_end_by_itself() {
        let mut bans = Bans::from_list(vec![
            ban("short", identity("mallory"), None, 1000),
            ban("long", identity("mallory"), Some("general"), 5000),
        ]);
        let anywhere = address("192.0.2.1");
        let general = room("general");
        // The one that ends last is the one a refusal names.
        assert_eq!(
            bans.barring("mallory", anywhere, &general, 999)
                .map(|b| &b.id[..]),
            Some("long")
        );
        assert_eq!(
            bans.barring("mallory", anywhere, &room("other"), 999)
                .map(|b| &b.id[..]),
            Some("short")
        );
        assert!(
            bans.barring("mallory", anywhere, &room("other"), 1000)
                .is_none()
        );
        assert_eq!(
            bans.active(1000)
                .iter()
                .map(|b| &b.id[..])
                .collect::<Vec<_>>(),
            ["long"]
        );
        assert_eq!(
            bans.active(0).iter().map(|b| &b.id[..]).collect::<Vec<_>>(),
            ["short", "long"],
            "soonest to end first"
        );
        bans.forget_expired(1000);
        assert_eq!(bans.len(), 1);
        bans.forget_expired(5000);
        assert_eq!(bans.len(), 0);
        assert!(bans.barring("mallory", anywhere, &general, 0).is_none());
    }

    #[test]
    fn lifting_answers_whether_the_ban_was_in_force() {
        let mut bans = Bans::from_list(vec![
            ban("a", identity("mallory"), None, 1000),
            ban("b", identity("mallory"), None, 2000),
            ban("c", BanTarget::Address(address("2001:db8::1")), None, 500),
        ]);
        assert!(bans.lift("a", 10));
        assert!(!bans.lift("a", 10), "already lifted");
        assert!(!bans.lift("c", 600), "expired: dropped, not in force");
        assert!(!bans.lift("nope", 10));
        assert_eq!(bans.len(), 1);
        assert!(
            bans.barring("mallory", address("192.0.2.1"), &room("x"), 10)
                .is_some()
        );
        assert!(bans.by_address.is_empty(), "empty index entries go");
    }

    #[test]
    fn an_address_ban_matches_the_way_connections_are_counted() {
        let bans = Bans::from_list(vec![ban(
            "v6",
            BanTarget::Address(address("2001:db8:1:2::1")),
            None,
            1000,
        )]);
        let x = room("x");
        assert!(
            bans.barring("s", address("2001:db8:1:2:ffff::9"), &x, 0)
                .is_some()
        );
        assert!(
            bans.barring("s", address("2001:db8:1:3::1"), &x, 0)
                .is_none()
        );
    }

    #[test]
    fn a_ban_round_trips_through_its_wire_form() {
        let mut banned = ban(
            "a",
            BanTarget::Address(address("2001:db8:1:2::1")),
            Some("general"),
            7,
        );
        banned.reason = Some("spam".into());
        let wire = banned.to_wire();
        assert_eq!(wire.address.as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(Ban::from_wire(wire), Some(banned));
        let server_ban = ban("b", identity("0123456789abcdef"), None, 7);
        assert_eq!(Ban::from_wire(server_ban.to_wire()), Some(server_ban));
        let mut both = ban("c", identity("x"), None, 7).to_wire();
        both.address = Some("192.0.2.1".into());
        assert_eq!(Ban::from_wire(both), None);
        let mut bad_room = ban("d", identity("x"), None, 7).to_wire();
        bad_room.room = Some("no way".into());
        assert_eq!(Ban::from_wire(bad_room), None);
    }

    #[test]
    fn the_refusal_names_the_place_and_the_end_in_utc() {
        let mut banned = ban("a", identity("x"), Some("general"), 1_796_385_600_000);
        assert_eq!(
            banned.refusal(),
            "you are banned from this room until 2026-12-04T12:00:00Z"
        );
        banned.room = None;
        banned.reason = Some("spam".into());
        assert_eq!(
            banned.refusal(),
            "you are banned from this server until 2026-12-04T12:00:00Z: spam"
        );
    }

    #[test]
    fn times_are_written_in_rfc_3339_utc_rounded_up_to_the_second() {
        for (millis, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (1, "1970-01-01T00:00:01Z"),
            (951_782_400_000, "2000-02-29T00:00:00Z"),
            (951_868_799_000, "2000-02-29T23:59:59Z"),
            (1_709_251_199_500, "2024-03-01T00:00:00Z"),
            (1_796_385_600_000, "2026-12-04T12:00:00Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00Z"),
            (253_402_300_799_000, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339(millis), text, "{millis}");
        }
    }
}
