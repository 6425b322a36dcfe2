//! The documentation holds together (issue 24): the README is a landing page of at most
//! 12 KB that links every page of `docs/`, and no relative link or anchor in the project's
//! Markdown is broken.

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown file of the documentation: the root's and `docs/`'s.
fn pages() -> Vec<PathBuf> {
    let mut pages = Vec::new();
    for dir in [root().to_owned(), root().join("docs")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "md") {
                pages.push(path);
            }
        }
    }
    pages.sort();
    pages
}

/// The targets of `[text](target)` links, outside code blocks and code spans.
fn links(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Code spans hold examples, not links.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

/// GitHub's anchor of a heading: lower case, spaces to hyphens, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' | '-' => Some('-'),
            '_' => Some('_'),
            c if c.is_alphanumeric() => Some(c.to_lowercase().next().unwrap_or(c)),
            _ => None,
        })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut fenced = false;
    markdown
        .lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            !fenced && line.starts_with('#')
        })
        .map(|line| slug(line.trim_start_matches('#')))
        .collect()
}

#[test]
fn no_relative_link_or_anchor_is_broken() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", page.display()));
                continue;
            }
            if !anchor.is_empty() {
                let target_text = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&target_text).iter().any(|a| a == anchor) {
                    broken.push(format!("{}: {link} (no such heading)", page.display()));
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} links checked");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_is_a_landing_page_that_links_every_page() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.len() <= 12 * 1024,
        "README.md is {} bytes; at most 12 KB: move detail to docs/",
        readme.len()
    );
    let first = readme.split("```").nth(1).unwrap_or_default();
    assert!(
        first.contains(" demo") && first.contains("cargo test"),
        "the two commands first: {first}"
    );
    let linked = links(&readme);
    for page in pages()
        .iter()
        .filter(|p| p.parent().unwrap().ends_with("docs"))
    {
        let name = format!("docs/{}", page.file_name().unwrap().to_string_lossy());
        assert!(
            linked
                .iter()
                .any(|link| link.split('#').next() == Some(name.as_str())),
            "README.md does not link {name}"
        );
    }
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug(" Incidents that resolve"), "incidents-that-resolve");
    assert_eq!(slug(" Dependencies, and why"), "dependencies-and-why");
    assert_eq!(slug(" Reload (SIGHUP)"), "reload-sighup");
    assert_eq!(
        links("see [a](docs/a.md#x) and `[b](c)`\n```\n[d](e)\n```"),
        ["docs/a.md#x"]
    );
}

/// Every alerting rule has a description and a `runbook_url` that is a section of
/// docs/operations.md: an on-call engineer who follows it lands on the runbook.
#[test]
fn every_alert_links_its_runbook_section() {
    let rules =
        std::fs::read_to_string(root().join("deploy/prometheus/sdm-watch.rules.yml")).unwrap();
    let operations = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let sections = anchors(&operations);
    let mut alerts = Vec::new();
    for block in rules.split("- alert: ").skip(1) {
        let name = block.lines().next().unwrap().trim().to_owned();
        let field = |key: &str| {
            block
                .lines()
                .find_map(|line| line.trim().strip_prefix(key))
                .map(|value| value.trim().trim_matches('"').to_owned())
        };
        assert!(
            field("description:").is_some_and(|d| d.len() > 40),
            "{name} has no description"
        );
        let url = field("runbook_url:").unwrap_or_else(|| panic!("{name} has no runbook_url"));
        let anchor = url
            .strip_prefix("docs/operations.md#")
            .unwrap_or_else(|| panic!("{name}: {url} is not a section of docs/operations.md"));
        assert!(
            sections.iter().any(|section| section == anchor),
            "{name}: docs/operations.md has no section #{anchor}"
        );
        alerts.push(name);
    }
    assert!(alerts.len() >= 8, "{alerts:?}");
    assert!(alerts.iter().any(|name| name == "SdmWatchTargetMissing"));
    assert!(alerts.iter().any(|name| name == "SdmWatchFailedReload"));
}
