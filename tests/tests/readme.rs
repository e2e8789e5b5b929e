//! The README and the book (`docs/src/`) say what is true: their command samples are the
//! binaries' real output (each `<!-- file: NAME -->` block is written out, and each command of
//! a `<!-- commands: ... -->` block is run with the `# ` lines after it as what it must
//! print), the README is a front page, and every link between them resolves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::binary;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The README and every chapter of the book, by path, with `{{#include}}`s expanded as
/// mdBook expands them.
fn documents() -> BTreeMap<PathBuf, String> {
    let root = root();
    let mut found = BTreeMap::new();
    let readme = root.join("README.md");
    found.insert(
        readme.clone(),
        std::fs::read_to_string(&readme).expect("README.md"),
    );
    let book = root.join("docs/src");
    for entry in std::fs::read_dir(&book).expect("docs/src") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(&path).expect("a chapter");
            found.insert(path.clone(), expand_includes(&path, &text));
        }
    }
    found
}

fn expand_includes(path: &Path, text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line
            .trim()
            .strip_prefix("{{#include ")
            .and_then(|rest| rest.strip_suffix("}}"))
        {
            Some(included) => {
                let file = path.parent().expect("a folder").join(included.trim());
                out.push_str(&std::fs::read_to_string(&file).unwrap_or_else(|e| {
                    panic!("{}: cannot include {}: {e}", path.display(), file.display())
                }));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The README and the book as one text, for the samples (which live in the rules chapter).
fn readme() -> String {
    documents().into_values().collect::<Vec<_>>().join("\n")
}

/// The fenced block right after each line that starts with `marker`, with that line.
fn blocks_after<'a>(text: &'a str, marker: &str) -> Vec<(&'a str, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with(marker) {
            continue;
        }
        let body: Vec<&str> = lines[i + 1..]
            .iter()
            .skip(1) // the opening fence
            .take_while(|l| !l.starts_with("```"))
            .copied()
            .collect();
        found.push((*line, body.join("\n")));
    }
    found
}

/// A directory of this test's own with the README's files in it.
fn workdir(text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("readme-samples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (marker, body) in blocks_after(text, "<!-- file: ") {
        let name = marker
            .trim_start_matches("<!-- file: ")
            .split([' ', '-'])
            .next()
            .unwrap_or_default();
        std::fs::write(dir.join(name), body).expect("write a README file");
    }
    dir
}

#[test]
fn the_check_rules_samples_are_what_the_binary_prints() {
    let text = readme();
    let dir = workdir(&text);
    let commands = blocks_after(&text, "<!-- commands: ");
    assert!(!commands.is_empty(), "the README has command samples");
    let mut checked = 0;
    for (_, block) in commands {
        let mut lines = block.lines().peekable();
        while let Some(line) = lines.next() {
            let Some(args) = line.strip_prefix("cargo run -p route-decision -- ") else {
                continue;
            };
            let mut expected = Vec::new();
            while let Some(out) = lines.peek().and_then(|l| l.strip_prefix("# ")) {
                expected.push(out.to_owned());
                lines.next();
            }
            let output = Command::new(binary("route-decision"))
                .args(args.split_whitespace())
                .current_dir(&dir)
                .output()
                .expect("run route-decision");
            let printed = String::from_utf8_lossy(&output.stdout);
            assert!(output.status.success(), "{line}: {output:?}");
            assert_eq!(printed.lines().collect::<Vec<_>>(), expected, "{line}");
            checked += 1;
        }
    }
    assert!(checked >= 2, "both --check-rules samples were run");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_readme_is_a_front_page_with_both_commands_first() {
    let text = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() < 250, "README.md has {} lines", lines.len());
    let first: String = lines
        .iter()
        .take(20)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    for command in [
        "cargo run -p sandbox",
        "cargo build --workspace --bins && cargo nextest run --workspace",
    ] {
        assert!(
            first.contains(command),
            "{command} is not in the first 20 lines"
        );
    }
    // CI runs the test command verbatim from the README.
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    assert!(ci.contains("cargo build --workspace --bins && cargo nextest run --workspace"));
}

/// A heading's id as mdBook makes it: alphanumerics, `_` and `-` kept (lower-cased),
/// whitespace to `-`, the rest dropped; code spans and links by their text. GitHub's are the
/// same for these headings.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find("](").map(|i| open + i) else {
            break;
        };
        let Some(end) = rest[close..].find(')').map(|i| close + i) else {
            break;
        };
        text.push_str(&rest[..open]);
        text.push_str(&rest[open + 1..close]);
        rest = &rest[end + 1..];
    }
    text.push_str(rest);
    text.chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The lines outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The ids a document's headings get (a repeated one gets `-1`, `-2`, as mdBook does).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for line in prose(text) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes == 0 || hashes > 6 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let id = slug(line[hashes..].trim());
        let n = seen.entry(id.clone()).or_insert(0);
        ids.insert(if *n == 0 {
            id.clone()
        } else {
            format!("{id}-{n}")
        });
        *n += 1;
    }
    ids
}

/// The targets of a line's links and images, code spans left out.
fn link_targets(line: &str) -> Vec<String> {
    let mut bare = String::new();
    for (i, piece) in line.split('`').enumerate() {
        if i % 2 == 0 {
            bare.push_str(piece);
        }
    }
    let mut targets = Vec::new();
    let mut rest = bare.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        targets.push(after[..end].trim().to_owned());
        rest = &after[end..];
    }
    targets
}

#[test]
fn every_link_in_the_readme_and_the_book_resolves() {
    let documents = documents();
    let ids: BTreeMap<PathBuf, BTreeSet<String>> = documents
        .iter()
        .map(|(path, text)| (path.clone(), anchors(text)))
        .collect();
    let mut broken = Vec::new();
    let mut checked = 0;
    for (path, text) in &documents {
        for line in prose(text) {
            for target in link_targets(line) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let resolved = if file.is_empty() {
                    path.clone()
                } else {
                    path.parent().expect("a folder").join(file)
                };
                let Ok(resolved) = resolved.canonicalize() else {
                    broken.push(format!("{}: {target} (no such file)", path.display()));
                    continue;
                };
                if anchor.is_empty() {
                    continue;
                }
                let known = ids
                    .iter()
                    .find(|(p, _)| p.canonicalize().is_ok_and(|p| p == resolved))
                    .map(|(_, ids)| ids);
                match known {
                    Some(ids) if ids.contains(anchor) => {}
                    Some(_) => {
                        broken.push(format!("{}: {target} (no such heading)", path.display()))
                    }
                    None => broken.push(format!(
                        "{}: {target} (an anchor into a file that is not the README or the book)",
                        path.display()
                    )),
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 60, "only {checked} links found");
}

#[test]
fn every_chapter_is_in_the_books_summary() {
    let book = root().join("docs/src");
    let summary = std::fs::read_to_string(book.join("SUMMARY.md")).expect("SUMMARY.md");
    let listed: BTreeSet<String> = link_targets(&summary.replace('\n', " "))
        .into_iter()
        .collect();
    for entry in std::fs::read_dir(&book).expect("docs/src") {
        let name = entry
            .expect("an entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".md") && name != "SUMMARY.md" {
            assert!(listed.contains(&name), "{name} is not in SUMMARY.md");
        }
    }
}

#[test]
fn the_build_timings_are_measured_not_placeholders() {
    let text =
        std::fs::read_to_string(root().join("docs/src/getting-started.md")).expect("chapter");
    assert!(
        !text.contains("MEASURE_"),
        "getting-started.md still has a placeholder"
    );
}
