//! How Charla's settings given in seconds parse: a decimal number of
//! seconds (`15`, `0.25`; white space around it is ignored) that a
//! [`Duration`] can hold. Anything else is refused with a message that quotes
//! what was given, for the command line's error to show.
//!
//! Shared by the server (`--heartbeat-secs`, `--client-timeout-secs`) and the
//! load generator (`--duration-secs`, `--dwell-secs` and the like), so every
//! setting in seconds accepts the same values and refuses them in the same
//! words.

use std::time::Duration;

/// Parses a number of seconds, decimals allowed (`15`, `0.25`).
///
/// # Errors
///
/// The message names `raw` when it is not a number, or when it is a number
/// no [`Duration`] can hold (negative, infinite, not a number, or too large).
pub fn parse_seconds(raw: &str) -> Result<Duration, String> {
    let seconds: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("`{raw}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("`{raw}` is not a usable number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_decimal_seconds_parse() {
        assert_eq!(parse_seconds("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds(" 2 "), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn what_is_not_a_number_is_refused_by_name() {
        assert_eq!(
            parse_seconds("ten"),
            Err("`ten` is not a number of seconds".to_owned())
        );
        assert_eq!(
            parse_seconds(""),
            Err("`` is not a number of seconds".to_owned())
        );
        assert_eq!(
            parse_seconds("5s"),
            Err("`5s` is not a number of seconds".to_owned())
        );
    }

    #[test]
    fn numbers_no_duration_holds_are_refused_by_name() {
        for raw in ["-1", "inf", "NaN", "1e30"] {
            assert_eq!(
                parse_seconds(raw),
                Err(format!("`{raw}` is not a usable number of seconds"))
            );
        }
    }
}
