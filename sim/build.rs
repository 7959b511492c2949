//! Compiles the SFDX object metadata into the binary, so the Salesforce simulator's schema is the
//! package's schema wherever `sfwa` runs from. The package lives at the workspace root
//! (`../salesforce`), beside this crate.

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let objects = root.join("../salesforce/force-app/main/default/objects");
    println!("cargo:rerun-if-changed={}", objects.display());
    let mut files = Vec::new();
    collect(&objects, &objects, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for (relative, absolute) in files {
        println!("cargo:rerun-if-changed={}", absolute.display());
        out.push_str(&format!(
            "    ({relative:?}, include_str!({:?})),\n",
            absolute.display().to_string()
        ));
    }
    out.push_str("]\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("metadata_files.rs");
    fs::write(dest, out).unwrap();
}

fn collect(base: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            println!("cargo:rerun-if-changed={}", path.display());
            collect(base, &path, files);
        } else if path.extension().is_some_and(|e| e == "xml") {
            let relative = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            files.push((relative, path));
        }
    }
}
