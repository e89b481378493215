//! No two modules of the workspace import each other, directly or round a
//! longer loop: a cycle is a knot a reader has to untie before either side
//! makes sense (issue 16).
//!
//! Reads every crate's `src/` (and each `tests/NAME/` directory with a
//! `main.rs`), maps each file to its module path, and follows every
//! `crate::` and `super::` path in its code (comments and strings stripped;
//! `use` groups expanded; inline `mod NAME { .. }` blocks such as `mod
//! tests` followed, so their `super::` is the file itself) to the deepest
//! file module it names. A path from `a::x::y` to `b::z` makes the edge
//! `a -> b` between the two sibling modules under their common parent, so a
//! loop through a directory (`collectors/replication.rs` uses `session.rs`,
//! which uses `collectors/mod.rs`) counts. A module using its own parent or
//! child is not an edge: that is the ordinary shape of a module tree.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
#[path = "common/rust_lex.rs"]
mod rust_lex;
use rust_lex::{raw_string_at, skip_block_comment, skip_quoted, skip_raw_string};

/// Cycles known and being removed, as the sorted files of each (none
/// today). A
/// listed cycle that no longer exists fails the test too, so the list
/// cannot go stale: remove its entry when the fix lands.
const KNOWN: &[&[&str]] = &[];

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files = 0;
    for tree in module_trees(&root.join("crates")) {
        files += tree.files.len();
        let rel = tree.root.strip_prefix(&root).unwrap_or(&tree.root).to_path_buf();
        for (from, to) in tree.edges() {
            edges
                .entry(label(&rel, &from))
                .or_default()
                .insert(label(&rel, &to));
        }
    }
    assert!(
        files > 100,
        "found only {files} files: is the layout still crates/*/src?"
    );
    let found = cycles(&edges);
    let known: BTreeSet<Vec<String>> = KNOWN
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect();
    let new: Vec<&Vec<String>> = found.iter().filter(|c| !known.contains(*c)).collect();
    let gone: Vec<&Vec<String>> = known.iter().filter(|c| !found.contains(*c)).collect();
    assert!(
        new.is_empty(),
        "import cycles between modules (each line: the modules of one cycle); move what they share \
         into a module below both:\n{}",
        new.iter().map(|c| c.join(" <-> ")).collect::<Vec<_>>().join("\n")
    );
    assert!(
        gone.is_empty(),
        "these cycles are gone: remove them from KNOWN in {}:\n{}",
        file!(),
        gone.iter()
            .map(|c| c.join(" <-> "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_scanner_sees_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a; mod b;\n").unwrap();
    std::fs::write(
        src.join("a/mod.rs"),
        "// use crate::b; in a comment is no edge\nmod inner;\nuse crate::{b::{Thing}, c};\n",
    )
    .unwrap();
    std::fs::write(src.join("a/inner.rs"), "use super::X;\n").unwrap();
    std::fs::write(
        src.join("b.rs"),
        "fn f() { crate::a::inner::go(); }\n#[cfg(test)]\nmod tests { use super::*; }\n",
    )
    .unwrap();
    std::fs::write(src.join("c.rs"), "const S: &str = \"crate::b\";\n").unwrap();
    let tree = ModuleTree::read(&src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in tree.edges() {
        edges.entry(from.join("::")).or_default().insert(to.join("::"));
    }
    let want = |pairs: &[(&str, &[&str])]| -> BTreeMap<String, BTreeSet<String>> {
        pairs
            .iter()
            .map(|(f, d)| (f.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    };
    assert_eq!(edges, want(&[("a", &["b", "c"]), ("b", &["a"])]));
    assert_eq!(cycles(&edges), vec![vec!["a".to_string(), "b".into()]]);
}

/// `crates/x/src` and `[a, b]` as `crates/x/src/a/b`.
fn label(root: &Path, module: &[String]) -> String {
    let mut path = root.to_path_buf();
    path.extend(module);
    path.display().to_string()
}

/// The nodes of every cycle (strongly connected set of two or more), each
/// sorted, found with Tarjan's algorithm.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut set = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    set.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if set.len() > 1 {
                    set.sort();
                    self.out.push(set);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out.sort();
    walk.out
}

/// Every module tree under `crates`: each crate's `src/`, and each
/// integration test directory that has a `main.rs`.
fn module_trees(crates: &Path) -> Vec<ModuleTree> {
    let mut trees = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(crates)
        .expect("reading crates/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    for krate in dirs {
        if krate.join("src").is_dir() {
            trees.push(ModuleTree::read(&krate.join("src")));
        }
        for test in subdirs(&krate.join("tests")) {
            if test.join("main.rs").is_file() {
                trees.push(ModuleTree::read(&test));
            }
        }
    }
    trees
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}

/// The `.rs` files under one crate root, by module path.
struct ModuleTree {
    root: PathBuf,
    files: BTreeMap<Vec<String>, PathBuf>,
}

impl ModuleTree {
    fn read(root: &Path) -> ModuleTree {
        let mut files = BTreeMap::new();
        let mut todo = vec![root.to_path_buf()];
        while let Some(dir) = todo.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    todo.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.insert(module_path(root, &path), path);
                }
            }
        }
        ModuleTree {
            root: root.to_path_buf(),
            files,
        }
    }

    /// Every sibling edge (see the top of this file), once each.
    fn edges(&self) -> BTreeSet<(Vec<String>, Vec<String>)> {
        let mut out = BTreeSet::new();
        for (module, file) in &self.files {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            for path in paths(module, &tokens(&text)) {
                let Some(target) = self.module_of(&path) else {
                    continue;
                };
                let shared = module.iter().zip(target).take_while(|(a, b)| a == b).count();
                if shared < module.len() && shared < target.len() {
                    out.insert((module[..=shared].to_vec(), target[..=shared].to_vec()));
                }
            }
        }
        out
    }

    /// The deepest file module `path` names.
    fn module_of(&self, path: &[String]) -> Option<&Vec<String>> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.files.get_key_value(&path[..n]).map(|(k, _)| k))
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `[a, b]`; `lib.rs`/`main.rs` `[]`.
fn module_path(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
        parts.clear();
    }
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Identifiers, `::`, and single punctuation characters of `text`, with
/// comments, strings and character literals left out.
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = skip_block_comment(&chars, i);
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) && raw_string_at(&chars, i) {
            i = skip_raw_string(&chars, i);
        } else if c == '"' {
            i = skip_quoted(&chars, i, '"');
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || next == Some('\\')) {
            i = skip_quoted(&chars, i, '\'');
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else if c == ':' && next == Some(':') {
            out.push("::".into());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// Every absolute module path named by a `crate::` or `super::` path in
/// `tokens` of the file whose module is `module` (groups expanded).
fn paths(module: &[String], tokens: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // Inline modules open around the current token: (name, brace depth).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        let at_path_start = i == 0 || tokens[i - 1] != "::";
        match t {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if tokens.get(i + 2).is_some_and(|t| t == "{") => {
                inline.push((tokens[i + 1].clone(), depth));
            }
            "crate" | "super" if at_path_start && tokens.get(i + 1).is_some_and(|t| t == "::") => {
                let mut base: Vec<String> = module.to_vec();
                base.extend(inline.iter().map(|(n, _)| n.clone()));
                if t == "crate" {
                    base.clear();
                } else {
                    base.pop();
                }
                let mut j = i + 2;
                // `super::super::x`
                while tokens.get(j).is_some_and(|t| t == "super")
                    && tokens.get(j + 1).is_some_and(|t| t == "::")
                {
                    base.pop();
                    j += 2;
                }
                j = use_tree(tokens, j, base, &mut out);
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Reads one path or `{...}` group at `tokens[i]` under `prefix`, pushing
/// each full path; returns the index after it.
fn use_tree(tokens: &[String], mut i: usize, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    loop {
        match tokens.get(i).map(String::as_str) {
            Some("{") => {
                i += 1;
                while tokens.get(i).is_some_and(|t| t != "}") {
                    if tokens[i] == "," {
                        i += 1;
                        continue;
                    }
                    let before = i;
                    i = use_tree(tokens, i, prefix.clone(), out);
                    if i == before {
                        i += 1;
                    }
                }
                return i + 1;
            }
            Some(t) if t.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                if t != "self" {
                    prefix.push(t.to_string());
                }
                i += 1;
                if tokens.get(i).is_some_and(|t| t == "::") {
                    i += 1;
                    continue;
                }
                out.push(prefix);
                return i;
            }
            _ => {
                // `*` or the end: the prefix itself.
                out.push(prefix);
                return i + usize::from(tokens.get(i).is_some_and(|t| t == "*"));
            }
        }
    }
}
