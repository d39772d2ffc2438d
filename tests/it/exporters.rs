//! The exporters against the reference on nodes the main fixture does not have
//! (`tests/fixtures/exporters.aiida`, built by `tests/fixtures/exporters_make.py`): the answers
//! of the reference serving that archive (`tests/fixtures/exporters.jsonl`, recorded with
//! `tools/record_golden.py` from `tests/fixtures/exporters-urls.txt`) are replayed on the
//! archive and compared as `golden.rs` compares them.

use serde_json::Value;

use crate::golden::check;
use crate::harness::{self, Answer};

const GOLDEN: &str = "exporters.jsonl";

fn archive() -> std::path::PathBuf {
    harness::fixtures().join("exporters.aiida")
}

/// The UUID the archive builder gives the node called `name`.
fn uuid(name: &str) -> String {
    let line = std::fs::read_to_string(harness::fixtures().join("exporters-uuids.txt"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_suffix(&format!(" {name}")).map(str::to_string));
    line.unwrap_or_else(|| panic!("no node {name} in exporters-uuids.txt"))
}

async fn app() -> axum::Router {
    harness::build(archive().as_path(), Default::default(), Default::default()).await
}

/// The recorded entries whose path contains every one of `parts`.
fn entries(parts: &[&str]) -> Vec<Value> {
    let text = std::fs::read_to_string(harness::fixtures().join(GOLDEN)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| parts.iter().all(|p| e["path"].as_str().unwrap().contains(p)))
        .collect()
}

/// Replays the entries selected by `parts` (at least `min` of them) and fails on any
/// difference.
async fn replay(parts: &[&str], min: usize) -> Vec<(Value, Answer)> {
    let app = app().await;
    let selected = entries(parts);
    assert!(selected.len() >= min, "{parts:?}: {} entries, expected at least {min}", selected.len());
    let mut failures = Vec::new();
    let mut answers = Vec::new();
    for entry in selected {
        let path = entry["path"].as_str().unwrap().to_string();
        let answer = harness::request(&app, entry["method"].as_str().unwrap(), &path, None).await;
        if answer.status >= 500 {
            failures.push(format!("{path}: status {}", answer.status));
        } else if let Some(why) = check(&entry, &answer) {
            failures.push(format!("{path}\n     {why}"));
        }
        answers.push((entry, answer));
    }
    assert!(failures.is_empty(), "{} of {} differ:\n{}", failures.len(), answers.len(), failures.join("\n"));
    answers
}

#[tokio::test(flavor = "multi_thread")]
async fn download_formats_as_the_reference() {
    replay(&["/nodes/download_formats"], 1).await;
}

/// UpfData of both UPF versions, complete: the JSON of aiida-core's converter, and the file.
#[tokio::test(flavor = "multi_thread")]
async fn upf_json_of_complete_files() {
    for name in ["upf-Si.oncv-nc.upf2.UPF", "upf-O.ld1-us.upf2.UPF", "upf-Al.nc.upf1.UPF"] {
        replay(&[&uuid(name), "download_format="], 2).await;
    }
}

/// The main fixture's UpfData have no PP_NONLOCAL: JSON of the sections they have (the
/// reference: a 500).
#[tokio::test(flavor = "multi_thread")]
async fn upf_json_without_nonlocal_section() {
    let app = harness::app(harness::Backend::Archive).await;
    let answer =
        harness::get(&app, "/api/v4/nodes/0975f729-970f-497d-bd5c-67ac6f43c890/download?download_format=json").await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    let json = answer.json();
    let pp = &json["pseudo_potential"];
    assert_eq!(pp["header"]["element"], "Si");
    assert_eq!(pp["beta_projectors"], serde_json::json!([]));
    assert!(pp.get("D_ion").is_none());
    assert_eq!(pp["local_potential"], serde_json::json!([-6.0, -6.0, -6.0, -6.0]));
}

/// TrajectoryData `cif` and `xsf` (every step), as files and as `download=false` JSON, and
/// `json`.
#[tokio::test(flavor = "multi_thread")]
async fn trajectory_downloads() {
    for name in ["trajectory-3steps", "trajectory-water"] {
        let answers = replay(&[&uuid(name), "download_format="], 5).await;
        for (entry, answer) in answers {
            assert_eq!(answer.status, 200, "{}", entry["path"]);
        }
    }
}

/// A list of 3-vectors.
fn points(value: &Value) -> Vec<[f64; 3]> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|p| [0, 1, 2].map(|i| p[i].as_f64().unwrap()))
        .collect()
}

fn close(a: &[f64; 3], b: &[f64; 3], tol: f64) -> bool {
    (0..3).all(|i| (a[i] - b[i]).abs() <= tol)
}

/// Whether polygon `b` is polygon `a` (the same vertices in the same cyclic order, in either
/// direction, from any start).
fn same_polygon(a: &[[f64; 3]], b: &[[f64; 3]], tol: f64) -> bool {
    let n = a.len();
    if b.len() != n {
        return false;
    }
    let Some(start) = b.iter().position(|p| close(p, &a[0], tol)) else { return false };
    let forward = (0..n).all(|i| close(&a[i], &b[(start + i) % n], tol));
    let backward = (0..n).all(|i| close(&a[i], &b[(start + n - i) % n], tol));
    forward || backward
}

/// `faces_data` of k-points with a cell of each of the 14 Bravais lattices (and of slightly
/// strained body-centred cubic cells, where `get_BZ` merges faces around split vertices, and
/// of a slab) against the reference's (seekpath's `get_BZ`): every vertex, every face as the
/// same polygon (same vertices in the same cyclic order; where the lists start and the order
/// of the faces and vertices are qhull's and not reproduced), the same number of triangles,
/// each on a face; the other derived properties as the golden replay compares them.
async fn brillouin_zone(lattice: &str, exact_faces: bool) {
    let name = format!("kpoints-{lattice}");
    let app = app().await;
    let selected = entries(&[&uuid(&name), "derived_properties"]);
    assert_eq!(selected.len(), 1, "{name}");
    let entry = &selected[0];
    let answer = harness::get(&app, entry["path"].as_str().unwrap()).await;
    assert_eq!(answer.status, 200, "{name}: {}", String::from_utf8_lossy(&answer.body));
    let mut got = answer.json();
    let mut expected = entry["json"].clone();
    let ours = got["data"]["derived_properties"].as_object_mut().unwrap().remove("faces_data").unwrap();
    let theirs = expected["data"]["derived_properties"].as_object_mut().unwrap().remove("faces_data").unwrap();
    let tol = 1e-9;
    // Cartesian k-points go through the reciprocal cell (numpy's `inv`) and a GEMM, whose
    // last bits depend on the CPU's OpenBLAS kernels: the answers were recorded on an AVX-512
    // machine, the server reproduces the AVX2 family (`Kernels::REFERENCE`).
    let abs = |v: &mut Value| v["data"]["derived_properties"].as_object_mut().unwrap().remove("explicit_kpoints_abs");
    let (k_ours, k_theirs) = (abs(&mut got).unwrap(), abs(&mut expected).unwrap());
    let (k_ours, k_theirs) = (points(&k_ours), points(&k_theirs));
    assert_eq!(k_ours.len(), k_theirs.len(), "{name}: number of k-points");
    for (a, b) in k_ours.iter().zip(&k_theirs) {
        assert!(close(a, b, 1e-14), "{name}: k-point {a:?} != {b:?}");
    }

    let (v_ours, v_theirs) = (points(&ours["triangles_vertices"]), points(&theirs["triangles_vertices"]));
    assert_eq!(v_ours.len(), v_theirs.len(), "{name}: number of vertices");
    for v in &v_theirs {
        assert!(v_ours.iter().any(|u| close(u, v, tol)), "{name}: vertex {v:?} missing");
    }
    let faces = |fd: &Value| fd["faces"].as_array().unwrap().iter().map(points).collect::<Vec<_>>();
    let (f_ours, f_theirs) = (faces(&ours), faces(&theirs));
    if exact_faces {
        assert_eq!(f_ours.len(), f_theirs.len(), "{name}: number of faces");
        for face in &f_theirs {
            assert!(f_ours.iter().any(|f| same_polygon(face, f, tol)), "{name}: face {face:?} missing");
        }
    } else {
        // Faces merged around vertices split by a tiny edge: which triangles `get_BZ` merges
        // and which points its projection keeps follow qhull's triangulation and vertex order,
        // which are not reproduced; only the vertices and triangles are compared.
        assert!(!f_ours.is_empty() && !f_theirs.is_empty(), "{name}: no faces");
    }
    assert_eq!(
        ours["triangles"].as_array().unwrap().len(),
        theirs["triangles"].as_array().unwrap().len(),
        "{name}: number of triangles"
    );
    // Every triangle of ours indexes three vertices of one face.
    for t in ours["triangles"].as_array().unwrap().iter().filter(|_| exact_faces) {
        let corners: Vec<[f64; 3]> = (0..3).map(|i| v_ours[t[i].as_u64().unwrap() as usize]).collect();
        assert!(
            f_ours.iter().any(|f| corners.iter().all(|c| f.iter().any(|p| close(p, c, tol)))),
            "{name}: triangle {t} is not on a face"
        );
    }
    // The rest of the answer as the golden replay compares it.
    let mut rest = entry.clone();
    rest["json"] = expected;
    let answer = Answer { body: serde_json::to_vec(&got).unwrap(), ..answer };
    if let Some(why) = check(&rest, &answer) {
        panic!("{name}: {why}");
    }
}

macro_rules! bz_tests {
    ($($test:ident: $lattice:literal $(, $exact:literal)?;)*) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $test() {
            brillouin_zone($lattice, true $(&& $exact)?).await;
        }
    )*};
}

bz_tests! {
    brillouin_zone_cubic_primitive: "cP";
    brillouin_zone_cubic_face_centred: "cF";
    brillouin_zone_cubic_body_centred: "cI";
    brillouin_zone_tetragonal_primitive: "tP";
    brillouin_zone_tetragonal_body_centred: "tI";
    brillouin_zone_orthorhombic_primitive: "oP";
    brillouin_zone_orthorhombic_face_centred: "oF";
    brillouin_zone_orthorhombic_body_centred: "oI";
    brillouin_zone_orthorhombic_base_centred: "oC";
    brillouin_zone_hexagonal: "hP";
    brillouin_zone_rhombohedral: "hR";
    brillouin_zone_monoclinic_primitive: "mP";
    brillouin_zone_monoclinic_base_centred: "mC";
    brillouin_zone_triclinic: "aP";
    brillouin_zone_strained_body_centred_cubic_1e_3: "cI-strained-1e-3";
    brillouin_zone_strained_body_centred_cubic_1e_5: "cI-strained-1e-5", false;
    brillouin_zone_strained_body_centred_cubic_1e_7: "cI-strained-1e-7", false;
    brillouin_zone_hexagonal_slab: "hP-slab";
}
