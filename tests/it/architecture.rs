//! The architecture test: every `crate::` path in `src/` must point where the code map in
//! `ARCHITECTURE.md` allows, the map must have no cycle, and every module must be in it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The code map: module -> the modules it may import, from `ARCHITECTURE.md`'s table.
fn code_map() -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        // | `module` | what it owns | may import |
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let module = cells[1].trim_matches('`').to_owned();
        let allowed = cells[3]
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        map.insert(module, allowed);
    }
    map
}

/// The modules `lib.rs` declares.
fn declared_modules() -> BTreeSet<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .filter_map(|rest| rest.split(';').next())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/watch/cycle.rs` -> `watch`).
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(Path::new(ROOT).join("src")).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let module = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(module, "lib" | "main")).then(|| module.to_owned())
}

/// The top-level modules a line of code names through `crate::` (`crate::a::b`,
/// `crate::{a, b::c}`), comments left out.
fn imports(line: &str) -> Vec<String> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let code = code.split(" //").next().unwrap_or(code);
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let preceded_by_word = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if !preceded_by_word {
            if let Some(group) = after.strip_prefix('{') {
                let inside = group.split('}').next().unwrap_or("");
                found.extend(
                    inside
                        .split(',')
                        .filter_map(|item| first_segment(item.trim())),
                );
            } else if let Some(name) = first_segment(after) {
                found.push(name);
            }
        }
        rest = after;
    }
    found
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty() && name != "self").then_some(name)
}

#[test]
fn every_import_follows_the_code_map() {
    let map = code_map();
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let Some(allowed) = map.get(&module) else {
            wrong.push(format!(
                "{}: module `{module}` is not in ARCHITECTURE.md's code map",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            for target in imports(line) {
                if target != module && !allowed.contains(&target) {
                    wrong.push(format!(
                        "{}:{}: `{module}` imports `{target}`, against the code map (it may import: {})",
                        file.strip_prefix(ROOT).unwrap_or(file).display(),
                        number + 1,
                        allowed.iter().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_code_map_names_every_module_and_has_no_cycle() {
    let map = code_map();
    let declared = declared_modules();
    let mapped: BTreeSet<String> = map.keys().cloned().collect();
    assert_eq!(
        mapped, declared,
        "ARCHITECTURE.md's code map and lib.rs's modules differ"
    );
    for (module, allowed) in &map {
        for target in allowed {
            assert!(
                map.contains_key(target),
                "`{module}` may import `{target}`, which is not a module"
            );
        }
    }
    let left = on_cycles(map.clone());
    assert!(
        left.is_empty(),
        "the code map has a cycle among: {}",
        left.keys().cloned().collect::<Vec<_>>().join(", ")
    );
}

/// The nodes of `graph` (node -> the nodes it points to) that lie on a cycle, or lead into
/// one: peel off nodes that point at nothing left, then nodes nothing left points at.
fn on_cycles(mut left: BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    loop {
        let ready: Vec<String> = left
            .iter()
            .filter(|(node, targets)| {
                targets.iter().all(|target| !left.contains_key(target))
                    || !left.values().any(|others| others.contains(*node))
            })
            .map(|(node, _)| node.clone())
            .collect();
        if ready.is_empty() {
            return left;
        }
        for node in ready {
            left.remove(&node);
        }
    }
}

#[test]
fn the_import_reader_reads_what_the_code_writes() {
    assert_eq!(imports("use crate::store::{held, jobs};"), ["store"]);
    assert_eq!(
        imports("use crate::{config, domain::Status};"),
        ["config", "domain"]
    );
    assert_eq!(
        imports("    let x = crate::domain::error_chain(&e); // crate::sim is fine here"),
        ["domain"]
    );
    assert_eq!(imports("//! See crate::poll."), Vec::<String>::new());
    assert_eq!(imports("use sdm_watch_crate::x;"), Vec::<String>::new());
}

/// The sibling files a file of a module names (`super::held`, `crate::poll::held`), in
/// its code before any `#[cfg(test)]`, comments left out.
fn siblings(module: &str, text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let own = format!("crate::{module}::");
    for line in text
        .lines()
        .take_while(|line| !line.contains("#[cfg(test)]"))
    {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for prefix in ["super::", own.as_str()] {
            let mut rest = code;
            while let Some(at) = rest.find(prefix) {
                let after = &rest[at + prefix.len()..];
                let names: Vec<String> = match after.strip_prefix('{') {
                    Some(group) => group
                        .split('}')
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .filter_map(|item| first_segment(item.trim()))
                        .collect(),
                    None => first_segment(after).into_iter().collect(),
                };
                found.extend(names);
                rest = after;
            }
        }
    }
    found
}

/// Inside a module too, files import one way: no two of them (nor any ring of them) import
/// each other; `mod.rs`, which declares them, stands apart, but a nested module's `mod.rs`
/// counts as a file of its parent (the ring notify/format/mod.rs <-> notify/report.rs).
#[test]
fn no_files_of_one_module_import_each_other() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut by_module: BTreeMap<PathBuf, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let src = Path::new(ROOT).join("src");
    for file in &files {
        let Some(mut dir) = file.parent() else {
            continue;
        };
        let mut stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        if stem == "mod" {
            // A nested module's mod.rs (notify/format/mod.rs) is one file among its
            // parent's (notify/format beside notify/report.rs); a top module's stands apart.
            let Some(parent) = dir.parent().filter(|parent| *parent != src.as_path()) else {
                continue;
            };
            stem = dir.file_name().unwrap().to_string_lossy().into_owned();
            dir = parent;
        }
        if dir == src.as_path() {
            continue;
        }
        let module = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        by_module
            .entry(dir.to_owned())
            .or_default()
            .insert(stem, siblings(&module, &text));
    }
    let mut rings = Vec::new();
    for (dir, graph) in by_module {
        let left = on_cycles(
            graph
                .iter()
                .map(|(file, names)| {
                    let names = names
                        .iter()
                        .filter(|n| graph.contains_key(*n) && *n != file)
                        .cloned()
                        .collect();
                    (file.clone(), names)
                })
                .collect(),
        );
        if !left.is_empty() {
            rings.push(format!(
                "{}: {}",
                dir.strip_prefix(ROOT).unwrap_or(&dir).display(),
                left.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    assert!(
        rings.is_empty(),
        "files importing each other:\n{}",
        rings.join("\n")
    );
}

#[test]
fn the_sibling_reader_reads_what_the_code_writes() {
    let text = "use super::held::{self, Held};\nuse super::{plan, tracker::Rules};\nlet x = crate::poll::lookup::go();\n// super::remind\n#[cfg(test)]\nuse super::commit;";
    let found: Vec<String> = siblings("poll", text).into_iter().collect();
    assert_eq!(found, ["held", "lookup", "plan", "tracker"]);
}

/// The map's tests section names every file of the integration tests, so that a newcomer
/// finds where a behaviour is tested.
#[test]
fn the_map_names_every_test_file() {
    let map = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("tests/it")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".rs") && name != "main.rs" && !map.contains(&format!("`{name}`")) {
            missing.push(name);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md does not name: {}",
        missing.join(", ")
    );
}

/// Each file the map introduces by name in a module's row (`` `name`: what it does ``) is
/// there: `src/<module>/…/name.rs` or `…/name/mod.rs`, at any depth of the module. A map
/// that still describes a file since removed or renamed fails.
#[test]
fn every_file_the_map_names_is_there() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let mut named = 0;
    let mut gone = Vec::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let module = cells[1].trim_matches('`');
        let mut files = Vec::new();
        let dir = Path::new(ROOT).join("src").join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        for name in introduced(cells[2]) {
            named += 1;
            let last = name.rsplit("::").next().unwrap_or(&name);
            let nested = name.replace("::", "/");
            let there = files.iter().any(|file| {
                let path = file.to_string_lossy();
                (file.file_stem().is_some_and(|stem| stem == last)
                    || path.ends_with(&format!("/{last}/mod.rs")))
                    && (!name.contains("::") || path.contains(&nested))
            });
            if !there {
                gone.push(format!("{module}: `{name}`"));
            }
        }
    }
    assert!(named > 30, "the map names only {named} files");
    assert!(
        gone.is_empty(),
        "the map describes files that are not there: {gone:?}"
    );
}

/// The names a row introduces: `` `name`: `` (lower-case, `::` allowed).
fn introduced(cell: &str) -> Vec<String> {
    let parts: Vec<&str> = cell.split('`').collect();
    // Odd parts are inside backticks; the part after one starts with ':' when it is named.
    (1..parts.len())
        .step_by(2)
        .filter(|&i| parts.get(i + 1).is_some_and(|after| after.starts_with(':')))
        .map(|i| parts[i])
        .filter(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':')
        })
        .map(str::to_owned)
        .collect()
}
