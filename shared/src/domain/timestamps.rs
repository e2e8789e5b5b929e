//! Event times: read from what TaskRouter and Event Streams send (epoch seconds or
//! milliseconds, RFC 3339), written as RFC 3339 with milliseconds in UTC, as Segment wants.
//!
//! Only times from 1970 to the end of year 9999 can be written (RFC 3339 has four-digit
//! years); anything else is refused rather than passed on, so that no event can carry a time
//! that makes formatting fail.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first millisecond RFC 3339 cannot write: 10000-01-01T00:00:00Z.
const END_MS: u64 = 253_402_300_800_000;

/// Epoch seconds stay below 1e11 until the year 5138: a larger number is milliseconds.
const MILLIS_FROM: u64 = 100_000_000_000;

/// A point in time that can be written as RFC 3339.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    since_epoch: Duration,
}

impl Timestamp {
    pub fn from_millis(ms: u64) -> Option<Self> {
        (ms < END_MS).then(|| Self {
            since_epoch: Duration::from_millis(ms),
        })
    }

    /// Epoch seconds, or milliseconds when the number is that large.
    pub fn from_epoch_number(n: u64) -> Option<Self> {
        if n >= MILLIS_FROM {
            Self::from_millis(n)
        } else {
            Self::from_millis(n * 1000)
        }
    }

    pub fn from_system_time(time: SystemTime) -> Option<Self> {
        let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
        (since_epoch < Duration::from_millis(END_MS)).then_some(Self { since_epoch })
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.since_epoch.as_millis() as u64
    }

    pub fn now() -> Option<Self> {
        Self::from_system_time(SystemTime::now())
    }

    /// RFC 3339 §5.6 `date-time`: `T`, `t` or (§5.6's note) a space between date and time,
    /// then `Z`, `z` or a numeric offset (`+01:00`), with or without fractions. A time with
    /// no offset names no instant and is refused.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let text = text.trim();
        if !text.is_ascii() || text.len() < 20 {
            return None;
        }
        let (base, offset) = match text.as_bytes()[text.len() - 1] {
            b'Z' | b'z' => (&text[..text.len() - 1], 0_i64),
            _ => {
                // `...+HH:MM` or `...-HH:MM`
                let (base, zone) = text.split_at(text.len() - 6);
                let sign = match zone.as_bytes()[0] {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                // Exactly `HH:MM`: two digits each (a sign or a third digit is no offset).
                let (hours, minutes) = zone[1..].split_once(':')?;
                let two_digits =
                    |part: &str| part.len() == 2 && part.bytes().all(|b| b.is_ascii_digit());
                if !two_digits(hours) || !two_digits(minutes) {
                    return None;
                }
                let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
                if hours > 23 || minutes > 59 {
                    return None;
                }
                (base, sign * (hours * 3600 + minutes * 60))
            }
        };
        // humantime reads the one spelling `YYYY-MM-DDTHH:MM:SS[.frac]Z`.
        let (date, time) = (base.get(..10)?, base.get(11..)?);
        if !matches!(base.as_bytes()[10], b'T' | b't' | b' ') {
            return None;
        }
        let utc = humantime::parse_rfc3339(&format!("{date}T{time}Z")).ok()?;
        let adjusted = if offset >= 0 {
            utc.checked_sub(Duration::from_secs(offset.unsigned_abs()))?
        } else {
            utc.checked_add(Duration::from_secs(offset.unsigned_abs()))?
        };
        Self::from_system_time(adjusted)
    }

    pub fn checked_sub(self, duration: Duration) -> Option<Self> {
        Some(Self {
            since_epoch: self.since_epoch.checked_sub(duration)?,
        })
    }

    /// `2026-11-18T11:06:40.123Z`.
    pub fn to_rfc3339(self) -> String {
        humantime::format_rfc3339_millis(UNIX_EPOCH + self.since_epoch).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_numbers_are_seconds_or_milliseconds() {
        let written = |n| Timestamp::from_epoch_number(n).map(Timestamp::to_rfc3339);
        assert_eq!(
            written(1_795_000_000).as_deref(),
            Some("2026-11-18T11:06:40.000Z")
        );
        assert_eq!(
            written(1_795_000_000_123).as_deref(),
            Some("2026-11-18T11:06:40.123Z")
        );
        assert_eq!(written(0).as_deref(), Some("1970-01-01T00:00:00.000Z"));
    }

    #[test]
    fn times_rfc3339_cannot_write_are_refused() {
        assert_eq!(
            Timestamp::from_millis(END_MS - 1)
                .map(Timestamp::to_rfc3339)
                .as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        assert_eq!(Timestamp::from_millis(END_MS), None);
        assert_eq!(Timestamp::from_millis(253_402_300_800_000), None);
        assert_eq!(Timestamp::from_millis(u64::MAX), None);
        assert_eq!(Timestamp::from_epoch_number(u64::MAX), None);
        assert_eq!(
            Timestamp::from_system_time(UNIX_EPOCH - Duration::from_secs(1)),
            None
        );
        assert_eq!(
            Timestamp::from_millis(500).and_then(|t| t.checked_sub(Duration::from_secs(1))),
            None
        );
    }

    #[test]
    fn every_spelling_rfc3339_allows_is_read_at_the_same_instant() {
        let read = |text| Timestamp::parse_rfc3339(text).map(Timestamp::to_rfc3339);
        for text in [
            "2026-11-22T10:15:30.250Z",
            "2026-11-22t10:15:30.250z",
            "2026-11-22 10:15:30.250Z",
            "2026-11-22t10:15:30.250+00:00",
            "2026-11-22 11:45:30.250+01:30",
            "2026-11-22t04:15:30.250-06:00",
        ] {
            assert_eq!(
                read(text).as_deref(),
                Some("2026-11-22T10:15:30.250Z"),
                "{text}"
            );
        }
    }

    #[test]
    fn rfc3339_text_is_read_in_utc_or_with_an_offset() {
        let read = |text| Timestamp::parse_rfc3339(text).map(Timestamp::to_rfc3339);
        assert_eq!(
            read("2026-11-22T10:15:30.250Z").as_deref(),
            Some("2026-11-22T10:15:30.250Z")
        );
        assert_eq!(
            read("2026-11-22T10:15:30Z").as_deref(),
            Some("2026-11-22T10:15:30.000Z")
        );
        assert_eq!(
            read("2026-11-22T11:15:30+01:00").as_deref(),
            Some("2026-11-22T10:15:30.000Z")
        );
        assert_eq!(
            read("2026-11-22T05:15:30.5-05:00").as_deref(),
            Some("2026-11-22T10:15:30.500Z")
        );
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-22T10:15:30+25:00",
            "10000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "2026-11-22T10:15:30\u{e9}00:00",
            "2026-11-22T10:15:30",
            "2026-11-22T10:15:30.250",
            "2026-11-22_10:15:30Z",
            "2026-11-22T10:15:30+-1:00",
            "2026-11-22T10:15:3+1:000",
            "2026-11-22T10:15:30+1:00",
        ] {
            assert_eq!(read(bad), None, "{bad}");
        }
    }
}
