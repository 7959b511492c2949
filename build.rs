//! Splits libphonenumber's rules (the `phonenumber` crate's own, at the version `Cargo.lock`
//! names) by country calling code, so that the daemon loads only the codes its numbers use
//! (`src/domain/phone_rules.rs`). Writes to `OUT_DIR`:
//! - `phone_rules.bin`: every code's rules, one after another (postcard);
//! - `phone_rules.rs`: where each code's rules are in it, and each region's calling code.

use std::fmt::Write as _;
use std::path::PathBuf;

#[path = "build/phone_rules.rs"]
mod phone_rules;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build/phone_rules.rs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let database = &*phonenumber::metadata::DATABASE;

    let mut bytes = Vec::new();
    let mut codes = String::new();
    let mut regions = Vec::new();
    for (code, rules) in phone_rules::by_code(database) {
        let start = bytes.len();
        bytes.extend_from_slice(&rules);
        writeln!(codes, "    ({code}, {start}, {}),", bytes.len()).expect("writes to a String");
        let ids = database.region(&code).unwrap_or_default();
        // "001" names every non-geographic entity (+800, +882, …): not a region.
        regions.extend(
            ids.into_iter()
                .filter(|id| *id != "001")
                .map(|id| (id.to_owned(), code)),
        );
    }
    regions.sort();
    let regions: String = regions
        .iter()
        .map(|(id, code)| format!("    (\"{id}\", {code}),\n"))
        .collect();

    let table = format!(
        "/// Each calling code's rules in [`RULES`]: (code, start, end), ascending by code.\n\
         static CODES: &[(u16, usize, usize)] = &[\n{codes}];\n\
         /// Each region's calling code: (ISO 3166 code, calling code), ascending by region.\n\
         static REGIONS: &[(&str, u16)] = &[\n{regions}];\n"
    );
    std::fs::write(out.join("phone_rules.bin"), bytes).expect("OUT_DIR is writable");
    std::fs::write(out.join("phone_rules.rs"), table).expect("OUT_DIR is writable");
}
