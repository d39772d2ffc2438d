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
