//! Rebuilds this crate when anything under the top-level `assets/` or
//! `templates/` changes. rust-embed and askama track the files they read,
//! but not a file *added* to the folder; a directory here makes Cargo watch
//! the whole tree.

fn main() {
    println!("cargo::rerun-if-changed=../../assets");
    println!("cargo::rerun-if-changed=../../templates");
}
