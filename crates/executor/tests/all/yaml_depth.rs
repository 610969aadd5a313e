//! Deeply nested YAML is refused with a position, before anything recurses
//! on it (issue 10: 50,000 levels overflowed the stack).

use std::path::Path;

use chainsink_executor::workflow::{ErrorKind, MAX_YAML_DEPTH, Workflow};

/// The single error for `text`: (line, column, kind, message).
fn only_error(text: &str) -> (usize, usize, ErrorKind, String) {
    let errs = Workflow::from_str(text, "deep.yaml")
        .expect_err("expected an error")
        .errors;
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    let e = &errs[0];
    assert_eq!(e.file, "deep.yaml");
    (e.line, e.column, e.kind, e.message.clone())
}

fn assert_depth_error(text: &str, line: usize, col: usize) {
    let (l, c, kind, message) = only_error(text);
    assert_eq!((l, c, kind), (line, col, ErrorKind::Syntax), "{message}");
    assert!(
        message.contains(&format!("more than {MAX_YAML_DEPTH} levels")),
        "{message}"
    );
}

#[test]
fn the_limit_is_64_levels() {
    assert_eq!(MAX_YAML_DEPTH, 64);
}

#[test]
fn flow_nesting_50000_deep_is_refused_at_the_first_level_too_deep() {
    let n = 50_000;
    let text = format!("{}{}\n", "[".repeat(n), "]".repeat(n));
    assert!(text.len() > 100_000);
    // The 65th `[` opens the 65th level: column 65.
    assert_depth_error(&text, 1, MAX_YAML_DEPTH + 1);
    // An unclosed one too (the rest is never read).
    assert_depth_error(&"{a: [".repeat(n), 1, 5 * (MAX_YAML_DEPTH / 2) + 1);
}

#[test]
fn block_nesting_50000_deep_is_refused() {
    // Compact block sequences: `- - - ... x`, each level two columns on.
    let text = format!("{}x\n", "- ".repeat(50_000));
    assert_depth_error(&text, 1, 2 * MAX_YAML_DEPTH + 1);
}

#[test]
fn indented_block_mappings_are_refused_at_the_line_of_the_level_too_deep() {
    let text: String = (0..100)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .collect();
    // Line i (1-based) starts the mapping of level i, at column 2i - 1.
    assert_depth_error(&text, 65, 2 * MAX_YAML_DEPTH + 1);
}

#[test]
fn exactly_the_limit_is_not_a_depth_error() {
    let n = MAX_YAML_DEPTH;
    let text = format!("{}{}\n", "[".repeat(n), "]".repeat(n));
    let (line, col, kind, message) = only_error(&text);
    // Just not a workflow: the usual type error, not a depth error.
    assert_eq!((line, col, kind), (1, 1, ErrorKind::WrongType), "{message}");
    assert!(!message.contains("levels"), "{message}");
}

#[test]
fn aliases_count_at_their_expanded_depth() {
    // Each anchor nests the previous one 40 levels deeper: the loader copies
    // aliased nodes, so the text is shallow but the tree is not.
    let mut text = String::from("a0: &a0 1\n");
    for i in 1..2_000 {
        text.push_str(&format!(
            "a{i}: &a{i} {}*a{}{}\n",
            "[".repeat(40),
            i - 1,
            "]".repeat(40)
        ));
    }
    // Line 3: 1 (top) + 40 + the 40 levels of `*a1` = 81.
    let (line, col, kind, message) = only_error(&text);
    assert_eq!((line, col, kind), (3, 49, ErrorKind::Syntax), "{message}");
    assert!(message.contains("alias"), "{message}");
    assert!(
        message.contains(&format!("more than {MAX_YAML_DEPTH} levels")),
        "{message}"
    );
}

#[test]
fn deep_nesting_inside_a_workflow_names_the_file_position() {
    let text = format!(
        "apiVersion: telemachy/v1\nmetadata:\n  name: {}{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    // metadata (2) holds the value: levels 1 (top) + 1 (metadata) + 63 more.
    let col = 9 + (MAX_YAML_DEPTH - 2);
    let err = Workflow::from_str(&text, "w.yaml").unwrap_err();
    assert_eq!(err.errors.len(), 1, "{err}");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("w.yaml:3:{col}: ")),
        "file:line:col first: {shown}"
    );
}

#[test]
fn the_example_workflows_still_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            Workflow::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n > 0, "no workflows in {}", dir.display());
}
