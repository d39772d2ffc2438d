//! Compiles the bundled qhull library (third_party/qhull_r) and the Brillouin-zone shim over it
//! (src/export/bz_qhull.c) into a static library linked into the crate.

fn main() {
    let dir = "third_party/qhull_r/libqhull_r";
    let mut sources: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .expect("third_party/qhull_r/libqhull_r")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    println!("cargo:rerun-if-changed={dir}");
    println!("cargo:rerun-if-changed=src/export/bz_qhull.c");
    cc::Build::new()
        .files(&sources)
        .file("src/export/bz_qhull.c")
        .include("third_party/qhull_r")
        // qhull's own sources are not ours to clean up.
        .warnings(false)
        .compile("aiida_bz_qhull");
}
