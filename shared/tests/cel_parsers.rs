//! Rules are parsed with cel's Pratt parser (fast on a cold start) rather than the ANTLR
//! parser behind `cel::Program::compile` (the crate's documented one). These tests hold the
//! two to the same answer: the same tree for every expression we ship or document and for
//! generated ones, and for arbitrary text, the same tree wherever both read it. Node ids are left
//! out of the comparison: the parsers number map entries in a different order, and evaluation
//! never reads an id.
//!
//! Where they differ is pinned by tests below:
//! - A run of unary operators that mixes `!` and `-`. CEL's grammar has no such run, except a
//!   negative number literal after `!` (`!-1`). The Pratt parser reads any mix (`-!a`, `!-a`,
//!   `-!!1`), and cannot fold `!-9223372036854775808`. `!` of a number and `-` of a boolean
//!   are errors at evaluation, so the only mix with a meaning is one whose `!!` cancels out.
//! - A few unusual texts only one of them reads: `1in [1]` and `[,]` (ANTLR only; such a
//!   rule fails at start with a parse error), raw bytes `rb'x'` (the Pratt parser only, as
//!   CEL's grammar allows).

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use studio_router::domain::rules::{DEFAULT_RULES, parse};

/// Both parsers' answers for one source: the tree without its node ids, or `None` when the
/// source does not parse.
fn both(source: &str) -> (Option<String>, Option<String>) {
    let pratt = parse(source)
        .ok()
        .map(|tree| without_ids(&format!("{tree:?}")));
    let antlr = cel::Program::compile(source)
        .ok()
        .map(|program| without_ids(&format!("{:?}", program.expression())));
    (pratt, antlr)
}

/// A tree's debug text with every `id: N` written `id: _`.
fn without_ids(tree: &str) -> String {
    let mut out = String::with_capacity(tree.len());
    let mut rest = tree;
    while let Some(at) = rest.find("id: ") {
        let (before, after) = rest.split_at(at + "id: ".len());
        out.push_str(before);
        out.push('_');
        rest = after.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

fn assert_same(source: &str) {
    let (pratt, antlr) = both(source);
    assert_eq!(pratt, antlr, "the parsers disagree on {source:?}");
}

/// CEL's syntax, a construct per line: literals of every kind, every operator, precedence,
/// selection, indexing, calls, collections, and each standard macro.
const SYNTAX: &[&str] = &[
    "1",
    "-1",
    "--1",
    "1u",
    "0x1F",
    "0x1Fu",
    "1.5",
    "1e3",
    "1.5e-3",
    ".5",
    "true",
    "false",
    "null",
    "'single'",
    "\"double\"",
    "'''triple\nquoted'''",
    "\"\"\"triple \"double\" quoted\"\"\"",
    "r'raw \\n'",
    "R\"raw\"",
    "'escapes \\n \\t \\\\ \\' \\\" \\x41 \\u00e9 \\101'",
    "b'bytes'",
    "b'\\xff\\x00'",
    "'unicode é ✓'",
    "traits",
    "traits.docs_last_2_days > 0",
    "traits['docs last 2 days'] >= 1",
    "traits.a.b.c",
    "traits.list[0]",
    "traits.map['key'].field",
    "1 + 2 * 3 - 4 / 5 % 6",
    "(1 + 2) * 3",
    "a < b && b <= c || c > d && d >= e",
    "a == b != c",
    "!a",
    "!!a",
    "-a",
    "a in [1, 2, 3]",
    "'x' in {'x': 1}",
    "a ? b : c",
    "a || b ? c : d",
    "a && b && c && d",
    "a || b || c || d",
    "size(traits.tags) > 2",
    "traits.name.startsWith('A') && traits.name.endsWith('z')",
    "traits.email.matches('^.+@example\\\\.com$')",
    "traits.name.contains('vip')",
    "int(traits.count) + uint(1) > double(2)",
    "string(traits.count) == '3'",
    "type(traits.count) == int",
    "duration('1h') < duration('2h')",
    "timestamp('2026-01-01T00:00:00Z') > timestamp('2025-01-01T00:00:00Z')",
    "[]",
    "[1, 'two', 3.0, [4], {'five': 5}]",
    "{}",
    "{'a': 1, 'b': [2, 3], 'c': {'d': 4}}",
    "{1: 'one', true: 'yes'}",
    "has(traits.vip)",
    "has(traits.a.b)",
    "traits.tags.all(t, t != 'churned')",
    "traits.tags.exists(t, t == 'vip')",
    "traits.tags.exists_one(t, t == 'vip')",
    "traits.tags.map(t, t + '!')",
    "traits.scores.map(s, s > 1, s * 2)",
    "traits.tags.filter(t, t.startsWith('a'))",
    "traits.exists(k, traits[k] == 1)",
    "[1, 2, 3].map(x, [x].exists(y, y == x)).all(z, z)",
    "traits.orders.filter(o, o.total > 100).size() > 2",
    "channel == 'whatsapp' ? 'high' : 'normal'",
    "channel in ['sms', 'whatsapp'] && traits.docs_last_2_days > 0",
    "traits.last_agent_worker_sid",
    "a.b(c).d[e].f(g)",
    "pkg.Message{field: 1}",
    ".rooted.name",
    "  traits.a   >\t1  ",
    "// a comment\ntraits.a > 1",
];

/// Text that must not parse, for either parser.
const NOT_CEL: &[&str] = &[
    "",
    "traits.",
    "1 +",
    "(1",
    "[1,",
    "{'a' 1}",
    "a ? b",
    "has(1)",
    "has(a)",
    "traits.tags.all(1, true)",
    "'unterminated",
    "1 = 1",
    "a && && b",
    "a.0",
    "b'\\u00e9'",
    "'\\q'",
    "x.y(",
    "a ? b ? c : d : e",
];

#[test]
fn the_parsers_agree_on_cel_syntax() {
    for source in SYNTAX {
        let (pratt, _) = both(source);
        assert!(pratt.is_some(), "{source:?} should parse");
        assert_same(source);
    }
}

#[test]
fn the_parsers_refuse_the_same_text() {
    for source in NOT_CEL {
        let (pratt, antlr) = both(source);
        assert!(antlr.is_none(), "ANTLR accepts {source:?}");
        assert!(pratt.is_none(), "the Pratt parser accepts {source:?}");
    }
}

/// Every expression in a rules document: conditions and attributes.
fn expressions_in(rules: &Value) -> Vec<String> {
    let mut found = Vec::new();
    let outcomes = rules["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([&rules["default"], &rules["on_error"]]);
    for outcome in outcomes {
        if let Some(when) = outcome["when"].as_str() {
            found.push(when.to_owned());
        }
        if let Some(attributes) = outcome["attributes"].as_object() {
            found.extend(
                attributes
                    .values()
                    .filter_map(Value::as_str)
                    .map(str::to_owned),
            );
        }
    }
    found
}

/// The rules we ship and the ones the README, the book and the template show, so a user copying an
/// example gets the tree the crate's documented parser would give.
#[test]
fn the_parsers_agree_on_every_rule_we_ship_or_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut documents = vec![DEFAULT_RULES.to_owned()];
    documents
        .push(std::fs::read_to_string(root.join("sandbox/rules.json")).expect("sandbox rules"));
    // JSON rules documents written out in the README, each on lines of its own.
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    documents.extend(json_blocks(&readme));
    // And in the book, where the rules chapter lives.
    for entry in std::fs::read_dir(root.join("docs/src")).expect("docs/src") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            documents.extend(json_blocks(
                &std::fs::read_to_string(path).expect("a chapter"),
            ));
        }
    }
    let mut checked = 0;
    for document in &documents {
        let Ok(rules) = serde_json::from_str::<Value>(document) else {
            continue;
        };
        for expression in expressions_in(&rules) {
            assert_same(&expression);
            checked += 1;
        }
    }
    assert!(checked >= 8, "only {checked} expressions found to check");
}

/// The ```json blocks of a markdown text.
fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, fence) if fence.starts_with("```json") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), text) => {
                block.push_str(text);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// CEL's binary operators, for generated expressions and token soup.
const BINARY_OPERATORS: &[&str] = &[
    "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in",
];

/// The rest of CEL's punctuation.
const PUNCTUATION: &[&str] = &[".", ",", ":", "?", "!", "(", ")", "[", "]", "{", "}"];

/// Names and keywords the rules use, and the standard macros and functions.
const WORDS: &[&str] = &[
    "traits", "channel", "in", "true", "null", "has", "all", "exists", "map", "size",
];

/// A CEL expression built from the grammar: identifiers, literals, operators, calls,
/// collections and macros, nested a few levels.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "traits(\\.[a-z_]{1,8}){0,2}",
        "[a-z]{1,3}",
        Just("channel".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| format!("{n}u")),
        any::<u16>().prop_map(|n| format!("0x{n:X}")),
        (0.0f64..1e6).prop_map(|f| format!("{f:?}")),
        "[ -~&&[^'\\\\]]{0,8}".prop_map(|s| format!("'{s}'")),
        "[a-z]{0,6}".prop_map(|s| format!("b'{s}'")),
        Just("true".to_owned()),
        Just("null".to_owned()),
    ];
    leaf.prop_recursive(4, 32, 3, |inner| {
        let operator = prop::sample::select(BINARY_OPERATORS);
        prop_oneof![
            (inner.clone(), operator, inner.clone()).prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("{a} ? {b} : {c}")),
            (inner.clone(), "[a-z]{1,6}").prop_map(|(a, f)| format!("({a}).{f}")),
            (inner.clone(), inner.clone()).prop_map(|(a, i)| format!("({a})[{i}]")),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(|v| {
                let entries: Vec<String> = v.iter().map(|(k, x)| format!("{k}: {x}")).collect();
                format!("{{{}}}", entries.join(", "))
            }),
            (
                prop_oneof![Just("size"), Just("int"), Just("string"), Just("f")],
                prop::collection::vec(inner.clone(), 0..3)
            )
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (
                inner.clone(),
                prop_oneof![
                    Just("all"),
                    Just("exists"),
                    Just("exists_one"),
                    Just("map"),
                    Just("filter")
                ],
                inner.clone()
            )
                .prop_map(|(range, m, body)| format!("({range}).{m}(x, {body})")),
            "traits(\\.[a-z_]{1,8}){1,2}".prop_map(|path| format!("has({path})")),
        ]
    })
}

/// Whether `source` has `!` and `-` side by side, where the parsers may differ.
fn mixed_unary(source: &str) -> bool {
    let tight: String = source.chars().filter(|c| !c.is_whitespace()).collect();
    tight.contains("!-") || tight.contains("-!")
}

/// Unusual text that only one of the parsers reads. Where the Pratt parser refuses, the rule
/// fails at start with a parse error; where it reads what ANTLR refuses, it follows CEL's
/// grammar. Neither ever reads the same text as a different expression.
#[test]
fn a_few_unusual_texts_only_one_parser_reads() {
    // (source, the Pratt parser reads it, ANTLR reads it)
    let cases = [
        ("1in [1]", false, true),       // a number right against `in`
        ("1uin [1u]", false, true),     // the same, with an unsigned number
        ("[,]", false, true),           // ANTLR's error recovery reads an empty list
        ("rb'x' == b'x'", true, false), // raw bytes, which CEL's grammar allows
        ("-!true", true, false),        // mixed unary operators, above
    ];
    for (source, pratt, antlr) in cases {
        assert_eq!(parse(source).is_ok(), pratt, "Pratt on {source:?}");
        assert_eq!(
            cel::Program::compile(source).is_ok(),
            antlr,
            "ANTLR on {source:?}"
        );
    }
    // Written the usual way, both read them, as the same tree.
    for source in ["1 in [1]", "1u in [1u]", "[]", "b'x' == b'x'", "-(!true)"] {
        let (pratt, antlr) = both(source);
        assert!(pratt.is_some(), "{source:?}");
        assert_eq!(pratt, antlr, "{source:?}");
    }
}

/// One CEL token, or something close to one.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,3}",
        prop::sample::select(WORDS).prop_map(str::to_owned),
        "[0-9]{1,3}(u|\\.[0-9]|e[0-9])?",
        "0x[0-9A-F]{1,3}",
        "'[a-z\\\\ ]{0,3}'",
        "b'[a-z]{0,2}'",
        prop_oneof![
            prop::sample::select(BINARY_OPERATORS),
            prop::sample::select(PUNCTUATION)
        ]
        .prop_map(str::to_owned),
    ]
}

/// For expressions built from CEL's grammar: both parsers read them as the same tree, or
/// both refuse them (a ternary nested without parentheses, say).
fn agree(source: &str) -> Result<(), TestCaseError> {
    prop_assume!(!mixed_unary(source));
    let (pratt, antlr) = both(source);
    prop_assert_eq!(pratt, antlr, "the parsers disagree on {:?}", source);
    Ok(())
}

/// For any text: neither parser panics, and what both read, they read as the same tree.
/// (Which unusual texts only one of them reads is pinned above.)
fn agree_where_both_read(source: &str) -> Result<(), TestCaseError> {
    prop_assume!(!mixed_unary(source));
    if let (Some(pratt), Some(antlr)) = both(source) {
        prop_assert_eq!(pratt, antlr, "the parsers disagree on {:?}", source);
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_parsers_agree_on_generated_expressions(source in expression()) {
        agree(&source)?;
    }

    /// Arbitrary text from CEL's own alphabet: most of it is not CEL.
    #[test]
    fn the_parsers_agree_on_arbitrary_text(
        source in "[a-z0-9_ .,:?!&|=<>+*/%()\\[\\]{}'\"-]{0,24}"
    ) {
        agree_where_both_read(&source)?;
    }

    /// CEL's tokens in any order: text that is often nearly CEL, and sometimes is.
    #[test]
    fn the_parsers_agree_on_token_soup(
        tokens in prop::collection::vec(token(), 0..14),
        spaced in any::<bool>(),
    ) {
        let source = tokens.join(if spaced { " " } else { "" });
        agree_where_both_read(&source)?;
    }
}
