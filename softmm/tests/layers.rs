//! The library's layers point downward: a top-level module imports only the modules in the
//! rows below its own in the layer diagram of `src/lib.rs` (or, within its own row, the
//! modules to its right). The diagram is the `text` block after the line `Layers`; each
//! row starts with module names (a trailing `/` marks a directory module), then two or
//! more spaces and a description. Every top-level module must appear exactly once.
//!
//! Imports are found as `crate::NAME` and `crate::{NAME, ...}` paths anywhere in a
//! module's files (comments excluded), so a fully qualified path counts as much as a
//! `use`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::{Path, PathBuf},
};

/// The diagram's rows, top first: each a list of module names.
fn diagram(lib_rs: &str) -> Vec<Vec<String>> {
    let doc: Vec<&str> = lib_rs
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let start = doc
        .iter()
        .position(|l| l.starts_with("Layers"))
        .expect("lib.rs has a `Layers` paragraph");
    let open = start
        + doc[start..]
            .iter()
            .position(|l| l.starts_with("```text"))
            .expect("a text block follows `Layers`");
    doc[open + 1..]
        .iter()
        .take_while(|l| !l.starts_with("```"))
        .map(|l| {
            let names = l.split("  ").next().unwrap_or("");
            names
                .split_whitespace()
                .map(|n| n.trim_end_matches('/').to_string())
                .collect()
        })
        .filter(|row: &Vec<String>| !row.is_empty())
        .collect()
}

/// Source with `//` comments removed (string literals here hold no `//`).
fn strip_comments(src: &str) -> String {
    src.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> Option<String> {
    let id: String = s
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!id.is_empty()).then_some(id)
}

/// The first path segments after `crate::` in `src`.
fn crate_imports(src: &str) -> BTreeSet<String> {
    let src = strip_comments(src);
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices("crate::") {
        let rest = &src[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.extend(ident_at(&group[item_start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(ident_at(&group[item_start..j]));
                        item_start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.extend(ident_at(rest));
        }
    }
    out
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).expect("readable source dir") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module → the other top-level names its files import.
fn imports(src_dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rs_files(src_dir, &mut files);
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(src_dir).expect("under src");
        let first = rel.components().next().expect("a component");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let text = fs::read_to_string(&f).expect("readable source");
        let deps = map.entry(module.clone()).or_default();
        deps.extend(crate_imports(&text).into_iter().filter(|d| *d != module));
    }
    map
}

/// Every import that does not point down the diagram, as "from -> to" lines.
fn violations(rows: &[Vec<String>], imports: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    // A module's rank: (row, column); it may import anything of a greater rank.
    let rank: BTreeMap<&str, (usize, usize)> = rows
        .iter()
        .enumerate()
        .flat_map(|(r, row)| {
            row.iter()
                .enumerate()
                .map(move |(c, m)| (m.as_str(), (r, c)))
        })
        .collect();
    let mut bad = Vec::new();
    for (from, deps) in imports {
        let Some(&(fr, fc)) = rank.get(from.as_str()) else {
            bad.push(format!("{from}: not in the layer diagram"));
            continue;
        };
        for to in deps {
            match rank.get(to.as_str()) {
                None => bad.push(format!(
                    "{from} -> crate::{to}: not a module of the diagram (use the module path, \
                     not a root re-export)"
                )),
                Some(&(tr, tc)) if tr < fr || (tr == fr && tc <= fc) => {
                    bad.push(format!("{from} -> {to}: imports a module above it"))
                }
                Some(_) => {}
            }
        }
    }
    bad
}

#[test]
fn top_level_modules_import_only_downward() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = fs::read_to_string(root.join("src/lib.rs")).expect("lib.rs");
    let rows = diagram(&lib);
    let named: Vec<&String> = rows.iter().flatten().collect();
    let unique: BTreeSet<&String> = named.iter().copied().collect();
    assert_eq!(
        named.len(),
        unique.len(),
        "a module is named twice: {rows:?}"
    );
    let imports = imports(&root.join("src"));
    for m in &unique {
        assert!(
            imports.contains_key(m.as_str()),
            "diagram names `{m}`, which is no module"
        );
    }
    let bad = violations(&rows, &imports);
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn the_check_catches_an_upward_import_and_a_cycle() {
    let lib = "//! Layers\n//!\n//! ```text\n//! mm/   top\n//! file pagecache  x\n//! frame/  bottom\n//! ```\n";
    let rows = diagram(lib);
    assert_eq!(rows, [vec!["mm"], vec!["file", "pagecache"], vec!["frame"]]);
    let parse = |s: &str| crate_imports(s);
    assert_eq!(
        parse("use crate::{a::b, c::{d, e}, f};\nlet x = crate::g::h; // crate::i"),
        ["a", "c", "f", "g"].map(String::from).into()
    );
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    imports.insert("mm".into(), parse("use crate::{file, frame};"));
    imports.insert("file".into(), parse("use crate::pagecache::X;"));
    imports.insert("pagecache".into(), parse("use crate::{frame, file::Y};"));
    imports.insert("frame".into(), parse("use crate::mm::AddressSpace;"));
    let bad = violations(&rows, &imports);
    assert_eq!(
        bad,
        [
            "frame -> mm: imports a module above it",
            "pagecache -> file: imports a module above it"
        ]
    );
}
