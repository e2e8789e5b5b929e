//! The README's command samples are the binaries' real output: each `<!-- file: NAME -->`
//! block is written out, and each command of a `<!-- commands: ... -->` block is run with the
//! `# ` lines after it as what it must print.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::binary;

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(path).expect("README.md")
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
