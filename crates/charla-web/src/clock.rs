//! Message times for pages rendered on the server, where the reader's time
//! zone is unknown: an RFC 3339 UTC timestamp for `<time datetime>` (which
//! the client re-renders in the reader's locale) and a short `HH:MM UTC` for
//! readers without JavaScript.
//!
//! The civil-date conversion is Howard Hinnant's `civil_from_days`, exact for
//! every date a `u64` of milliseconds since 1970 can reach in practice; it
//! saves a date-time dependency for two format strings.

/// Milliseconds in one day.
const MILLIS_PER_DAY: u64 = 86_400_000;

/// A UTC calendar time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UtcTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

impl UtcTime {
    fn from_unix_millis(millis: u64) -> UtcTime {
        let days = millis / MILLIS_PER_DAY;
        let in_day = (millis % MILLIS_PER_DAY) / 1000;
        let (year, month, day) = civil_from_days(i64::try_from(days).unwrap_or(i64::MAX / 2));
        UtcTime {
            year,
            month,
            day,
            hour: in_day / 3600,
            minute: in_day % 3600 / 60,
            second: in_day % 60,
        }
    }
}

/// `2024-05-01T13:45:07Z`.
pub fn rfc3339(millis: u64) -> String {
    let t = UtcTime::from_unix_millis(millis);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `13:45 UTC`.
pub fn short_utc(millis: u64) -> String {
    let t = UtcTime::from_unix_millis(millis);
    format!("{:02}:{:02} UTC", t.hour, t.minute)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // In range by construction: month is 1..=12 and day 1..=31.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_999), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(1_709_251_199_000), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_800_000), "2100-01-01T00:00:00Z");
        assert_eq!(short_utc(1_700_000_000_000), "22:13 UTC");
    }
}
