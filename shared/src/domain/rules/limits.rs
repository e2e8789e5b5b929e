//! How large and how deep one expression may be.
//!
//! cel's parser, its tree, the walks over the tree, evaluation and even dropping the tree
//! all recurse once for each level of the expression. A condition that nests a few thousand
//! levels (`traits.x + 1 + 1 ...`, a 20,000-step member chain) overflows a 2 MiB thread stack
//! (a tokio worker's) and aborts the process: every invocation in flight is lost, and every
//! new environment loads the same rules and dies again. So, in two steps:
//! - on the text, before parsing, with one loop that cannot recurse: its length and its
//!   operators. The tree is no deeper than the operators and brackets its text holds, so
//!   this bounds the parser's recursion and the walks' (`MAX_OPERATORS` levels parse, walk
//!   and drop within a 2 MiB stack in a debug build with room to spare);
//! - on the tree, measured by the walk that finds the traits: its depth, which bounds
//!   evaluation's recursion. Evaluating takes far more stack a level than parsing (about
//!   40 KB for an arithmetic step in a debug build), hence the much smaller `MAX_DEPTH`.
//!
//! The limits sit far above any real rule (the recipe's condition is 3 levels deep; ten
//! clauses joined by `&&` are 12) and below what a 2 MiB stack holds in a debug build
//! (`shared/tests/rule_limits.rs` evaluates the deepest texts that pass on one).

/// The longest expression: a condition, or an attribute's value.
pub const MAX_EXPRESSION_BYTES: usize = 8 * 1024;
/// The most operators one expression's text may hold (`.`, `+`, `==`, `&&`, `!`, `?`, `in`
/// and each opening bracket count once).
pub const MAX_OPERATORS: usize = 500;
/// The deepest an expression's tree may be, standard macros (`exists`, `all`...) expanded.
pub const MAX_DEPTH: usize = 32;

/// Operators of two characters, each counted once.
const TWO_CHARACTER: [&str; 6] = ["==", "!=", "<=", ">=", "&&", "||"];

/// What makes an expression too large or too deep to evaluate safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("is {bytes} bytes long; an expression may be at most {MAX_EXPRESSION_BYTES}")]
    TooLong { bytes: usize },
    #[error(
        "holds more than {MAX_OPERATORS} operators (member steps, calls and indexes included); an expression may hold at most {MAX_OPERATORS} (split it into several rules)"
    )]
    TooManyOperators,
    #[error(
        "nests {depth} levels deep; an expression may nest at most {MAX_DEPTH} (split it into several rules)"
    )]
    TooDeep { depth: usize },
}

/// Checks a parsed expression's depth (measured by the walk over its tree).
pub fn check_depth(depth: usize) -> Result<(), LimitError> {
    if depth > MAX_DEPTH {
        return Err(LimitError::TooDeep { depth });
    }
    Ok(())
}

/// Checks `source`'s text against the limits, reading it once from start to end.
pub fn check_text(source: &str) -> Result<(), LimitError> {
    if source.len() > MAX_EXPRESSION_BYTES {
        return Err(LimitError::TooLong {
            bytes: source.len(),
        });
    }
    let bytes = source.as_bytes();
    let mut operators = 0_usize;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'"' | b'\'' => {
                i = after_string(bytes, i);
                continue;
            }
            // A comment runs to the end of its line (cel's lexer skips it): a quote inside
            // one opens no string, so it must not hide the operators after it.
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = bytes[i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(bytes.len(), |end| i + end);
                continue;
            }
            b'(' | b'[' | b'{' => operators += 1,
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => operators += 1,
            b'+' | b'-' | b'*' | b'/' | b'%' | b'<' | b'>' | b'=' | b'!' | b'&' | b'|' | b'?'
            | b':' => {
                operators += 1;
                if source
                    .get(i..i + 2)
                    .is_some_and(|pair| TWO_CHARACTER.contains(&pair))
                {
                    i += 1;
                }
            }
            b'i' if is_in_keyword(bytes, i) => operators += 1,
            _ => {}
        }
        if operators > MAX_OPERATORS {
            return Err(LimitError::TooManyOperators);
        }
        i += 1;
    }
    Ok(())
}

/// `in` standing as a word of its own at `i`.
fn is_in_keyword(bytes: &[u8], i: usize) -> bool {
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    bytes.get(i + 1) == Some(&b'n')
        && !word(i.checked_sub(1).and_then(|before| bytes.get(before)))
        && !word(bytes.get(i + 2))
}

/// Where the string literal that opens at `start` ends: CEL's `"..."`, `'...'` and their
/// triple-quoted forms, raw (`r"..."`, no escapes) or not. A string that does not end runs
/// to the end of the text: the parser then says where it starts.
fn after_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let raw = start
        .checked_sub(1)
        .and_then(|before| bytes.get(before))
        .is_some_and(|b| matches!(b, b'r' | b'R'))
        || (start >= 2
            && matches!(bytes[start - 1], b'b' | b'B')
            && matches!(bytes[start - 2], b'r' | b'R'));
    let triple = bytes.get(start..start + 3) == Some(&[quote; 3][..]);
    let close_len = if triple { 3 } else { 1 };
    let mut i = start + close_len;
    while i < bytes.len() {
        if bytes[i] == b'\\' && !raw {
            i += 2;
            continue;
        }
        if bytes[i] == quote && (!triple || bytes.get(i..i + 3) == Some(&[quote; 3][..])) {
            return i + close_len;
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_rules_are_far_inside_the_limits() {
        for rule in [
            "traits.docs_last_2_days > 0",
            "has(traits.vip) && traits.vip == true || channel == 'whatsapp'",
            "traits.viewed.exists(x, traits.purchased.exists(y, x == y))",
            r#"traits.email.endsWith("@example.com") ? 10 : 1"#,
            "traits.state in ['CA', 'NY', 'TX'] && traits.lifetime_value >= 1000.0",
        ] {
            assert_eq!(check_text(rule), Ok(()), "{rule}");
        }
    }

    #[test]
    fn operators_inside_strings_do_not_count() {
        let quoted = format!("traits.note == '{}'", "+.".repeat(1_000));
        assert_eq!(check_text(&quoted), Ok(()));
        let raw = format!(r#"traits.path == r"\" && {}"#, "!".repeat(600));
        assert_eq!(
            check_text(&raw),
            Err(LimitError::TooManyOperators),
            "a raw string ends at its quote"
        );
        let triple = format!("traits.a == '''it's {} fine''' ", "+".repeat(500));
        assert_eq!(check_text(&triple), Ok(()));
        assert_eq!(check_depth(MAX_DEPTH), Ok(()));
        assert_eq!(
            check_depth(MAX_DEPTH + 1),
            Err(LimitError::TooDeep { depth: 33 })
        );
        assert_eq!(
            check_text("traits.a == 'open"),
            Ok(()),
            "the parser places it"
        );
    }

    #[test]
    fn long_deep_and_operator_heavy_texts_are_refused() {
        let sum = format!("traits.x{} > 0", " + 1".repeat(1_200));
        assert_eq!(check_text(&sum), Err(LimitError::TooManyOperators));
        let chain = format!("traits.a{}", ".b".repeat(20_000));
        assert_eq!(
            check_text(&chain),
            Err(LimitError::TooLong { bytes: chain.len() })
        );
        let chain = format!("traits.a{}", ".b".repeat(600));
        assert_eq!(check_text(&chain), Err(LimitError::TooManyOperators));
        let nested = format!("{}true{}", "(".repeat(501), ")".repeat(501));
        assert_eq!(check_text(&nested), Err(LimitError::TooManyOperators));
        let nots = format!("{}true", "!".repeat(501));
        assert_eq!(check_text(&nots), Err(LimitError::TooManyOperators));
        let ins = format!("1{}", " in [1]".repeat(260));
        assert_eq!(check_text(&ins), Err(LimitError::TooManyOperators));
    }

    #[test]
    fn a_quote_in_a_comment_hides_nothing() {
        let commented = format!("traits.x // the customer's tier\n{}", " + 1".repeat(600));
        assert_eq!(check_text(&commented), Err(LimitError::TooManyOperators));
        assert_eq!(check_text("traits.x > 0 // it's 'fine'"), Ok(()));
    }

    #[test]
    fn numbers_with_a_point_are_not_member_steps() {
        let many = format!("traits.x > {}", "0.5 + ".repeat(99) + "0.5");
        assert_eq!(check_text(&many), Ok(()));
    }
}
