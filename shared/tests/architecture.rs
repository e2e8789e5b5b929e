//! The library's shape, checked: the layers import only downward (the domain from neither the
//! edge nor the adapters, the adapters not from the edge, support from none of the three), and
//! no two sibling modules, at any level, import each other. A circle between siblings means
//! neither can be read, tested or moved without the other.
//!
//! The check reads every `use crate::...`, `use super::...` (grouped `{...}` imports included)
//! and every inline `crate::path` in `shared/src`, outside `#[cfg(test)]` modules and the
//! test-only files, and finds, for each import, the pair of siblings it connects: the first
//! modules where the importer's path and the imported path part.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files compiled only for tests.
const TEST_ONLY: [&str; 2] = ["testing.rs", "adapters/extension/stand_in.rs"];

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

/// Each layer, and the layers it must not import from.
const FORBIDDEN: [(&str, &[&str]); 3] = [
    ("domain", &["edge", "adapters"]),
    ("adapters", &["edge"]),
    ("support", &["edge", "domain", "adapters"]),
];

/// Every import that goes against [`FORBIDDEN`], as `layer -> layer`.
fn upward_imports(edges: &BTreeMap<ModulePath, BTreeSet<(String, String)>>) -> Vec<String> {
    let top = edges.get(&Vec::new()).cloned().unwrap_or_default();
    let mut found = Vec::new();
    for (layer, forbidden) in FORBIDDEN {
        for imported in forbidden {
            if top.contains(&(layer.to_owned(), (*imported).to_owned())) {
                found.push(format!("{layer} -> {imported}"));
            }
        }
    }
    found
}

#[test]
fn the_layers_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = sibling_imports(&src);
    let found = upward_imports(&edges);
    assert!(found.is_empty(), "imports against the layers: {found:#?}");
    // AND the check has something to look at: the edge does import the domain
    let top = edges.get(&Vec::new()).cloned().unwrap_or_default();
    assert!(top.contains(&("edge".to_owned(), "domain".to_owned())));
}

/// Where the environment's variables may be read: the configuration, and the reader itself.
const READS_THE_ENVIRONMENT: [&str; 2] = ["adapters/config/", "support/environment.rs"];

#[test]
fn only_the_configuration_reads_the_environment() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in files {
        let name = file
            .strip_prefix(&src)
            .expect("under src")
            .to_string_lossy()
            .replace('\\', "/");
        if READS_THE_ENVIRONMENT
            .iter()
            .any(|allowed| name.starts_with(allowed))
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        let text = production_text(&text);
        if ["Variables", "std::env::var", "env::var("]
            .iter()
            .any(|reader| text.contains(reader))
        {
            found.push(name);
        }
    }
    assert!(
        found.is_empty(),
        "environment read outside the configuration: {found:?}"
    );
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
    // AND an import from the domain up to the adapters is reported
    let mut edges = BTreeMap::new();
    edges.insert(
        Vec::new(),
        BTreeSet::from([("domain".to_owned(), "adapters".to_owned())]),
    );
    assert_eq!(upward_imports(&edges), ["domain -> adapters"]);
}

/// The folders of production code: the library, the local stack and the function binaries.
const PRODUCTION: [&str; 3] = ["src", "../sandbox/src", "../functions"];
const MAX_FILE_LINES: usize = 450;
const MAX_FUNCTION_LINES: usize = 80;

/// `fn` items of `text` longer than `MAX_FUNCTION_LINES`, as `name (lines)`: a function runs
/// from its `fn` line to the first line that closes it at the same indentation.
fn long_functions(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (start, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let Some(at) = trimmed.find("fn ") else {
            continue;
        };
        let before = &trimmed[..at];
        let is_item = before.split_whitespace().all(|word| {
            [
                "pub",
                "pub(crate)",
                "pub(super)",
                "async",
                "const",
                "unsafe",
            ]
            .contains(&word)
        });
        if !is_item || line.trim_end().ends_with(';') {
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        let closing = format!("{indent}}}");
        if let Some(end) = lines[start + 1..]
            .iter()
            .position(|l| l.trim_end() == closing)
        {
            let length = end + 2;
            if length > MAX_FUNCTION_LINES {
                let name: String = trimmed[at + 3..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push(format!("{name} ({length} lines)"));
            }
        }
    }
    found
}

#[test]
fn no_production_file_or_function_is_too_long() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for folder in PRODUCTION {
        let mut files = Vec::new();
        rust_files(&manifest.join(folder), &mut files);
        for file in files
            .iter()
            .filter(|f| !f.components().any(|c| c.as_os_str() == "target"))
        {
            let text = std::fs::read_to_string(file).expect("readable source");
            let text = production_text(&text);
            let name = file.display();
            if text.lines().count() > MAX_FILE_LINES {
                found.push(format!("{name}: {} lines", text.lines().count()));
            }
            found.extend(
                long_functions(text)
                    .into_iter()
                    .map(|f| format!("{name}: {f}")),
            );
        }
    }
    assert!(found.is_empty(), "over the limits: {found:#?}");
}

#[test]
fn the_length_check_measures_a_function_to_its_closing_brace() {
    let body = "    let x = 1;\n".repeat(MAX_FUNCTION_LINES);
    let long = format!("pub async fn long() {{\n{body}}}\nfn short() {{\n}}\n");
    assert_eq!(
        long_functions(&long),
        [format!("long ({} lines)", MAX_FUNCTION_LINES + 2)]
    );
    assert!(long_functions("    fn declared(&self);\n").is_empty());
}
