//! The library's shape, checked: no two sibling modules, at any level, import each other.
//! A circle between siblings means neither can be read, tested or moved without the other.
//!
//! The check reads every `use crate::...`, `use super::...` (grouped `{...}` imports included)
//! and every inline `crate::path` in `shared/src`, outside `#[cfg(test)]` modules and the
//! test-only files, and finds, for each import, the pair of siblings it connects: the first
//! modules where the importer's path and the imported path part.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files compiled only for tests.
const TEST_ONLY: [&str; 2] = ["testing.rs", "extension/stand_in.rs"];

/// A module's path from the crate root: `shared/src/rules/evaluate.rs` is `["rules", "evaluate"]`.
type ModulePath = Vec<String>;

fn module_path(relative: &Path) -> ModulePath {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir)
        .expect("readable source folder")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The text of a file without its test module.
fn production_text(text: &str) -> &str {
    text.find("#[cfg(test)]\nmod tests")
        .map_or(text, |at| &text[..at])
}

/// Every path a `use` tree names: `crate::{a::b, c}` is `crate::a::b` and `crate::c`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        return vec![tree.split(" as ").next().unwrap_or(tree).trim().to_owned()];
    };
    let prefix = tree[..open].trim_end_matches("::").trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|rest| match rest.as_str() {
            "self" => prefix.to_owned(),
            _ => format!("{prefix}::{rest}"),
        })
        .collect()
}

/// The modules `text` (the module at `at`) imports, as absolute module paths.
fn imports(at: &ModulePath, text: &str) -> Vec<ModulePath> {
    // `super` is the module's parent, for `a/b.rs` and `a/mod.rs` alike.
    let parent: ModulePath = at[..at.len().saturating_sub(1)].to_vec();
    let mut paths = Vec::new();
    for statement in text.split(';') {
        let Some(tree) = statement.trim().strip_prefix("use ").or_else(|| {
            statement
                .trim()
                .strip_prefix("pub use ")
                .or_else(|| statement.trim().strip_prefix("pub(crate) use "))
        }) else {
            continue;
        };
        paths.extend(expand(tree));
    }
    let mut rest = text;
    while let Some(at) = rest.find("crate::") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        paths.push(tail[..end].trim_end_matches(':').to_owned());
        rest = &tail[end..];
    }
    paths
        .into_iter()
        .filter_map(|path| {
            let segments: Vec<&str> = path.split("::").collect();
            let absolute: ModulePath = match segments.first() {
                Some(&"crate") => segments[1..].iter().map(|s| (*s).to_owned()).collect(),
                Some(&"super") => parent
                    .iter()
                    .cloned()
                    .chain(segments[1..].iter().map(|s| (*s).to_owned()))
                    .collect(),
                _ => return None,
            };
            Some(absolute)
        })
        .collect()
}

/// For each parent module, which of its children import which.
fn sibling_imports(src: &Path) -> BTreeMap<ModulePath, BTreeSet<(String, String)>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut edges: BTreeMap<ModulePath, BTreeSet<(String, String)>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("under src").to_path_buf();
        let name = relative.to_string_lossy().replace('\\', "/");
        if TEST_ONLY.contains(&name.as_str()) {
            continue;
        }
        let module = module_path(&relative);
        let text = std::fs::read_to_string(&file).expect("readable source");
        for imported in imports(&module, production_text(&text)) {
            let shared = module
                .iter()
                .zip(&imported)
                .take_while(|(a, b)| a == b)
                .count();
            if shared < module.len() && shared < imported.len() {
                edges
                    .entry(module[..shared].to_vec())
                    .or_default()
                    .insert((module[shared].clone(), imported[shared].clone()));
            }
        }
    }
    edges
}

fn circles(edges: &BTreeMap<ModulePath, BTreeSet<(String, String)>>) -> Vec<String> {
    let mut found = Vec::new();
    for (parent, pairs) in edges {
        for (from, to) in pairs {
            if from < to && pairs.contains(&(to.clone(), from.clone())) {
                let at = if parent.is_empty() {
                    "crate".to_owned()
                } else {
                    parent.join("::")
                };
                found.push(format!("{at}: {from} <-> {to}"));
            }
        }
    }
    found
}

#[test]
fn no_two_sibling_modules_import_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = circles(&sibling_imports(&src));
    assert!(
        found.is_empty(),
        "modules that import each other: {found:#?}"
    );
}

#[test]
fn the_check_sees_grouped_super_and_inline_imports() {
    // GIVEN the import forms the check must read
    let at: ModulePath = vec!["rules".into(), "evaluate".into()];
    let text = "use super::{explain::{RuleTrace, error_kind}, values};\n\
                use crate::{metrics::{self, Counter}, json_text};\n\
                fn f() { crate::timestamps::Timestamp::now(); }";
    // THEN each names the module it reaches
    let found: BTreeSet<ModulePath> = imports(&at, text).into_iter().collect();
    for expected in [
        &["rules", "explain", "RuleTrace"][..],
        &["rules", "values"],
        &["metrics"],
        &["metrics", "Counter"],
        &["json_text"],
        &["timestamps", "Timestamp", "now"],
    ] {
        let expected: ModulePath = expected.iter().map(|s| (*s).to_owned()).collect();
        assert!(found.contains(&expected), "{expected:?} in {found:?}");
    }
    // AND a circle between two siblings is reported, one between parent and child is not
    let mut edges = BTreeMap::new();
    edges.insert(
        vec!["rules".to_owned()],
        BTreeSet::from([
            ("evaluate".to_owned(), "explain".to_owned()),
            ("explain".to_owned(), "evaluate".to_owned()),
        ]),
    );
    assert_eq!(circles(&edges), ["rules: evaluate <-> explain"]);
}
