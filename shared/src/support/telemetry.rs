//! JSON log lines and the masking that keeps customer data and secrets out of them.

use tracing::level_filters::LevelFilter;

/// Installs the JSON-lines subscriber on stdout (what CloudWatch Logs ingests line by line),
/// at `level` (`error` to `trace`), default `info`.
pub fn init(level: Option<&str>) {
    let level = level
        .and_then(|value| value.to_ascii_lowercase().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .with_max_level(level)
        .with_writer(std::io::stdout)
        .finish();
    // Not `try_init`: with tracing-subscriber's `tracing-log` feature (which a dependency
    // turns on) it would also route the `log` crate's records into these lines. A second
    // init (tests, the sandbox hosting several functions) is harmless: keep the first.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

/// `+15555550100` -> `+1******0100`: enough to tell customers apart in a log, not to call them.
pub fn mask_phone(phone: &str) -> String {
    mask_keeping(phone, 2, 4)
}

/// `Ann.Lee@example.com` -> `a***@example.com`: the domain helps debugging, the person stays hidden.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{}***@{domain}", first.to_lowercase())
        }
        None => mask_keeping(email, 1, 0),
    }
}

/// Any other identifier value (user ids, anonymous ids): first two and last two characters.
pub fn mask_other(value: &str) -> String {
    mask_keeping(value, 2, 2)
}

fn mask_keeping(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= head + tail + 2 {
        // Too short to show anything safely.
        return "*".repeat(chars.len().max(1));
    }
    let mut masked: String = chars[..head].iter().collect();
    masked.extend(std::iter::repeat_n('*', chars.len() - head - tail));
    masked.extend(&chars[chars.len() - tail..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_keeps_country_digit_and_last_four() {
        assert_eq!(mask_phone("+15555550100"), "+1******0100");
        assert_eq!(mask_phone("+447700900123"), "+4*******0123");
    }

    #[test]
    fn email_keeps_first_letter_and_domain() {
        assert_eq!(mask_email("Ann.Lee@example.com"), "a***@example.com");
        assert_eq!(mask_email("not-an-email"), "n***********");
    }

    #[test]
    fn short_values_are_fully_hidden() {
        assert_eq!(mask_other("u1"), "**");
        assert_eq!(mask_other("user-12345"), "us******45");
    }
}
