//! The one-way shape of `src/`: imports run from the front doors down to the settings.
//! `config` holds plain settings and imports no stage of the check; no two top-level
//! modules import each other, directly or round a loop. A reload builds new stages from
//! new settings, so settings must never depend on the stages they configure.
//!
//! Imports are read as `crate::module` paths outside comments and test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The stages of a check (and the doors into them): `config` may import none of them.
const STAGES: &[&str] = &[
    "allow",
    "credentials",
    "decision",
    "dpop",
    "gateway",
    "grpc",
    "issuer",
    "policy",
    "reload",
    "server",
    "token",
    "token_cache",
];

/// Top-level module -> the top-level modules it imports.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.clone()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let relative = path.strip_prefix(&src).unwrap().to_string_lossy().to_string();
        let module = relative.trim_end_matches(".rs").split('/').next().unwrap().to_string();
        if !relative.ends_with(".rs") || relative.ends_with("tests.rs") || matches!(module.as_str(), "main" | "lib") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for line in code_lines(&text) {
            for (at, _) in line.match_indices("crate::") {
                let name: String =
                    line[at + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    graph
}

/// The lines of `text` before its test module, without `//` comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .take_while(|line| !line.trim_start().starts_with("#[cfg(test)]"))
        .map(|line| line.split("//").next().unwrap_or_default())
}

/// Every module `from` reaches by following imports.
fn reachable<'a>(graph: &'a BTreeMap<String, BTreeSet<String>>, from: &'a str) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = graph.get(from).map(|d| d.iter().map(String::as_str).collect()).unwrap_or_default();
    while let Some(module) = todo.pop() {
        if seen.insert(module) {
            todo.extend(graph.get(module).into_iter().flatten().map(String::as_str));
        }
    }
    seen
}

#[test]
fn the_parser_sees_the_imports_it_must() {
    let graph = imports();
    assert!(graph["decision"].contains("policy") && graph["decision"].contains("token"), "{graph:?}");
    assert!(graph["server"].contains("reload"), "{graph:?}");
}

#[test]
fn config_imports_no_stage() {
    let graph = imports();
    let stages: Vec<&String> = graph["config"].iter().filter(|m| STAGES.contains(&m.as_str())).collect();
    assert!(stages.is_empty(), "config imports {stages:?}");
    let reached: Vec<&str> = reachable(&graph, "config").into_iter().filter(|m| STAGES.contains(m)).collect();
    assert!(reached.is_empty(), "config reaches {reached:?} through its imports");
}

#[test]
fn no_module_imports_itself_round_a_loop() {
    let graph = imports();
    let loops: Vec<(&String, &String)> = graph
        .iter()
        .flat_map(|(module, deps)| deps.iter().map(move |dep| (module, dep)))
        .filter(|(module, dep)| reachable(&graph, dep).contains(module.as_str()))
        .collect();
    assert!(loops.is_empty(), "imports that come back round: {loops:?}");
}
