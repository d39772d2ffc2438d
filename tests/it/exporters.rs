//! The exporters against the reference on nodes the main fixture does not have
//! (`tests/fixtures/exporters.aiida`, built by `tests/fixtures/exporters_make.py`): the answers
//! of the reference serving that archive (`tests/fixtures/exporters.jsonl`, recorded with
//! `tools/record_golden.py` from `tests/fixtures/exporters-urls.txt`) are replayed on the
//! archive and compared as `golden.rs` compares them.

use aiida_rest::model::linalg::Kernels;
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

async fn app() -> aiida_rest::http::Responder {
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

/// The same Brillouin zone: the same vertices, triangles and faces in the same order, each face
/// starting at the same vertex and going the same way, every coordinate to the last bit.
fn assert_same_zone(what: &str, ours: &Value, theirs: &Value) {
    let (v_ours, v_theirs) = (points(&ours["triangles_vertices"]), points(&theirs["triangles_vertices"]));
    assert_eq!(v_ours, v_theirs, "{what}: vertices");
    assert_eq!(ours["triangles"], theirs["triangles"], "{what}: triangles");
    let faces = |fd: &Value| fd["faces"].as_array().unwrap().iter().map(points).collect::<Vec<_>>();
    let (f_ours, f_theirs) = (faces(ours), faces(theirs));
    assert_eq!(f_ours.len(), f_theirs.len(), "{what}: number of faces");
    for (i, (a, b)) in f_ours.iter().zip(&f_theirs).enumerate() {
        assert_eq!(a, b, "{what}: face {i}");
    }
}

/// `faces_data` of k-points with a cell of each of the 14 Bravais lattices (and of slightly
/// strained body-centred cubic cells, where `get_BZ` merges faces around split vertices, and
/// of a slab) against seekpath's `get_BZ` on scipy's qhull, order included.
///
/// That order follows the last bits of numpy's reciprocal cell and projections, so it depends
/// on the OpenBLAS kernels of the reference's CPU: `exporters.jsonl` was recorded on an AVX-512
/// host (`Kernels::SkylakeX`), the server reproduces the AVX2 family (`Kernels::REFERENCE`),
/// whose `get_BZ` answers `bz-haswell.jsonl` holds (`bz_kernels.py` under
/// `OPENBLAS_CORETYPE=Haswell`). The server's answer must be the latter exactly, the same code
/// with the AVX-512 kernels the recorded one; the other derived properties are compared as the
/// golden replay compares them.
async fn brillouin_zone(lattice: &str) {
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

    let haswell = std::fs::read_to_string(harness::fixtures().join("bz-haswell.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in bz-haswell.jsonl"));
    assert_same_zone(&format!("{name} (server, AVX2 kernels)"), &ours, &haswell["faces_data"]);

    let attributes = harness::get(&app, &format!("/api/v4/nodes/{}/contents/attributes", uuid(&name))).await.json();
    let cell: Vec<[f64; 3]> = points(&attributes["data"]["attributes"]["cell"]);
    let rec = Kernels::SkylakeX.reciprocal_cell(&[cell[0], cell[1], cell[2]]).unwrap();
    let skylake = aiida_rest::export::bz::brillouin_zone(&rec, Kernels::SkylakeX).unwrap();
    assert_same_zone(&format!("{name} (AVX-512 kernels)"), &skylake, &theirs);

    // Cartesian k-points go through the reciprocal cell (numpy's `inv`) and a GEMM, whose
    // last bits depend on the kernels too.
    let abs = |v: &mut Value| v["data"]["derived_properties"].as_object_mut().unwrap().remove("explicit_kpoints_abs");
    let (k_ours, k_theirs) = (abs(&mut got).unwrap(), abs(&mut expected).unwrap());
    let (k_ours, k_theirs) = (points(&k_ours), points(&k_theirs));
    assert_eq!(k_ours.len(), k_theirs.len(), "{name}: number of k-points");
    for (a, b) in k_ours.iter().zip(&k_theirs) {
        assert!(close(a, b, 1e-14), "{name}: k-point {a:?} != {b:?}");
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
    ($($test:ident: $lattice:literal;)*) => {$(
        #[tokio::test(flavor = "multi_thread")]
        async fn $test() {
            brillouin_zone($lattice).await;
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
    brillouin_zone_strained_body_centred_cubic_1e_5: "cI-strained-1e-5";
    brillouin_zone_strained_body_centred_cubic_1e_7: "cI-strained-1e-7";
    brillouin_zone_hexagonal_slab: "hP-slab";
}

/// The plot of the fcc bands, rendered here and by the reference (`exporters-bands-fcc.png`
/// and `.pdf`, downloaded once from the reference serving the archive).
async fn bands_plot(format: &str) -> Vec<u8> {
    let app = app().await;
    let path = format!("/api/v4/nodes/{}/download?download_format={format}", uuid("bands-fcc"));
    let answer = harness::get(&app, &path).await;
    assert_eq!(answer.status, 200, "{format}: {}", String::from_utf8_lossy(&answer.body));
    if let Ok(dir) = std::env::var("AIIDA_REST_PLOT_OUT") {
        std::fs::write(std::path::Path::new(&dir).join(format!("bands-fcc.{format}")), &answer.body).unwrap();
    }
    answer.body
}

/// A decoded image as grey levels (0 black, 1 white), row by row.
struct Grey {
    width: usize,
    height: usize,
    pixels: Vec<f64>,
}

impl Grey {
    fn decode(png: &[u8]) -> Grey {
        let pixmap = tiny_skia::Pixmap::decode_png(png).expect("a PNG");
        let pixels = pixmap
            .pixels()
            .iter()
            .map(|p| {
                let c = p.demultiply();
                // Composited on white, as a viewer shows it.
                let a = c.alpha() as f64 / 255.0;
                let grey = (0.299 * c.red() as f64 + 0.587 * c.green() as f64 + 0.114 * c.blue() as f64) / 255.0;
                grey * a + (1.0 - a)
            })
            .collect();
        Grey { width: pixmap.width() as usize, height: pixmap.height() as usize, pixels }
    }

    fn dark(&self, x: usize, y: usize) -> bool {
        self.pixels[y * self.width + x] < 0.6
    }

    /// Rows (or columns, `columns`) more than half dark: the axes' spines.
    fn lines(&self, columns: bool) -> Vec<usize> {
        let (n, m) = if columns { (self.width, self.height) } else { (self.height, self.width) };
        (0..n)
            .filter(|&i| {
                let count = (0..m).filter(|&j| if columns { self.dark(i, j) } else { self.dark(j, i) }).count();
                count * 2 > m
            })
            .collect()
    }

    /// The runs of columns (or rows) holding dark pixels inside a rectangle: the extents of the
    /// labels along a side of the axes.
    fn runs(&self, x: std::ops::Range<usize>, y: std::ops::Range<usize>, along_x: bool) -> Vec<(usize, usize)> {
        let hit = |i: usize| {
            if along_x { y.clone().any(|yy| self.dark(i, yy)) } else { x.clone().any(|xx| self.dark(xx, i)) }
        };
        let range = if along_x { x.clone() } else { y.clone() };
        let mut out: Vec<(usize, usize)> = Vec::new();
        for i in range {
            if hit(i) {
                match out.last_mut() {
                    // Gaps narrower than a letter's spacing belong to the same label.
                    Some(last) if i <= last.1 + 12 => last.1 = i,
                    _ => out.push((i, i)),
                }
            }
        }
        out
    }

    /// The image averaged over blocks of `n` × `n` pixels (a blur that forgives sub-pixel
    /// differences of anti-aliasing and glyph shapes).
    fn blocks(&self, n: usize) -> Vec<f64> {
        let (bw, bh) = (self.width / n, self.height / n);
        let mut out = vec![0.0; bw * bh];
        for by in 0..bh {
            for bx in 0..bw {
                let mut sum = 0.0;
                for y in by * n..(by + 1) * n {
                    for x in bx * n..(bx + 1) * n {
                        sum += self.pixels[y * self.width + x];
                    }
                }
                out[by * bw + bx] = sum / (n * n) as f64;
            }
        }
        out
    }
}

fn close_runs(ours: &[(usize, usize)], theirs: &[(usize, usize)], tol: usize, what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}: {ours:?} vs the reference's {theirs:?}");
    for (a, b) in ours.iter().zip(theirs) {
        assert!(a.0.abs_diff(b.0) <= tol && a.1.abs_diff(b.1) <= tol, "{what}: {ours:?} vs the reference's {theirs:?}");
    }
}

/// `mpl_png`: the same pixel size as matplotlib's, the axes (spines) at the same pixels, the
/// tick labels and the y label at the same places (within 4 pixels), and, blurred over 8 × 8
/// pixel blocks, grey levels within [`MEAN_LIMIT`] on average and [`MAX_LIMIT`] everywhere.
#[tokio::test(flavor = "multi_thread")]
async fn bands_png_like_the_reference() {
    let ours = Grey::decode(&bands_plot("mpl_png").await);
    let theirs = Grey::decode(&std::fs::read(harness::fixtures().join("exporters-bands-fcc.png")).unwrap());
    assert_eq!((ours.width, ours.height), (theirs.width, theirs.height));
    assert_eq!((ours.width, ours.height), (1920, 1440));
    for columns in [false, true] {
        let (a, b) = (ours.lines(columns), theirs.lines(columns));
        assert!(!b.is_empty());
        assert!(
            a.first().unwrap().abs_diff(*b.first().unwrap()) <= 1
                && a.last().unwrap().abs_diff(*b.last().unwrap()) <= 1,
            "spines: {a:?} vs the reference's {b:?}"
        );
    }
    let (left, right) = (*theirs.lines(true).first().unwrap(), *theirs.lines(true).last().unwrap());
    let (top, bottom) = (*theirs.lines(false).first().unwrap(), *theirs.lines(false).last().unwrap());
    // x tick labels below the ticks; y tick labels left of them; the y label further left.
    let below = bottom + 20..(bottom + 90).min(theirs.height);
    close_runs(
        &ours.runs(0..theirs.width, below.clone(), true),
        &theirs.runs(0..theirs.width, below.clone(), true),
        4,
        "x labels",
    );
    close_runs(
        &ours.runs(0..theirs.width, below.clone(), false),
        &theirs.runs(0..theirs.width, below, false),
        4,
        "x label rows",
    );
    let beside = left - 130..left - 20;
    close_runs(
        &ours.runs(beside.clone(), top - 30..bottom + 30, false),
        &theirs.runs(beside.clone(), top - 30..bottom + 30, false),
        4,
        "y labels",
    );
    let far = 0..left - 110;
    close_runs(
        &ours.runs(far.clone(), top..bottom, true),
        &theirs.runs(far.clone(), top..bottom, true),
        4,
        "y label columns",
    );
    close_runs(&ours.runs(far.clone(), top..bottom, false), &theirs.runs(far, top..bottom, false), 4, "y label rows");
    assert!(right > left && bottom > top);

    let difference = |a: &Grey, b: &Grey| {
        let (a, b) = (a.blocks(8), b.blocks(8));
        let diffs: Vec<f64> = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).collect();
        (diffs.iter().sum::<f64>() / diffs.len() as f64, diffs.iter().cloned().fold(0.0, f64::max))
    };
    let (mean, max) = difference(&ours, &theirs);
    eprintln!("mpl_png blurred difference: mean {mean:.5}, max {max:.4}");
    assert!(mean < MEAN_LIMIT && max < MAX_LIMIT, "blurred difference: mean {mean}, max {max}");
    // The measure tells a plot from the same plot moved by 6 pixels.
    let mut moved = Grey { width: theirs.width, height: theirs.height, pixels: vec![1.0; theirs.pixels.len()] };
    for y in 0..theirs.height {
        for x in 6..theirs.width {
            moved.pixels[y * theirs.width + x] = theirs.pixels[y * theirs.width + x - 6];
        }
    }
    let (mean, max) = difference(&moved, &theirs);
    eprintln!("moved by 6 pixels: mean {mean:.5}, max {max:.4}");
    assert!(mean >= MEAN_LIMIT || max >= MAX_LIMIT, "a moved plot passes: mean {mean}, max {max}");
}

/// The limits of the blurred (8 × 8 pixel blocks) grey-level difference of `mpl_png` to the
/// reference's rendering: on average, and in any block.
const MEAN_LIMIT: f64 = 0.005;
const MAX_LIMIT: f64 = 0.4;

/// The page size (`/MediaBox`) of a PDF.
fn media_box(pdf: &[u8]) -> Vec<f64> {
    let text = String::from_utf8_lossy(pdf);
    let start = text.find("/MediaBox").expect("a /MediaBox") + "/MediaBox".len();
    let inner = &text[start..];
    let (open, close) = (inner.find('[').unwrap(), inner.find(']').unwrap());
    inner[open + 1..close].split_whitespace().map(|v| v.parse().unwrap()).collect()
}

/// `mpl_pdf`: a PDF of one page of matplotlib's page size, with the labels as text (the
/// high-symmetry points, Γ by its glyph name, the y label).
#[tokio::test(flavor = "multi_thread")]
async fn bands_pdf_like_the_reference() {
    let ours = bands_plot("mpl_pdf").await;
    let theirs = std::fs::read(harness::fixtures().join("exporters-bands-fcc.pdf")).unwrap();
    assert!(ours.starts_with(b"%PDF-1."), "not a PDF");
    assert!(ours.trim_ascii_end().ends_with(b"%%EOF"));
    let text = String::from_utf8_lossy(&ours);
    assert!(text.contains("xref") && text.contains("trailer") && text.contains("/Root"));
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    assert_eq!(pages, 1);
    assert!(text.contains("/Count 1"));
    assert_eq!(media_box(&ours), media_box(&theirs));
    assert_eq!(media_box(&ours), vec![0.0, 0.0, 460.8, 345.6]);
    // Text strings as the content stream shows them: −4 is codes 0x84 (the minus) and "4".
    for shown in ["(X) Tj", "(W) Tj", "(L) Tj", "(Dispersion (eV)) Tj", "<8434> Tj"] {
        assert!(text.contains(shown), "{shown} is not shown");
    }
    // Γ is code 128 of the font's encoding, named /Gamma.
    assert!(text.contains("/Differences [128 /Gamma"), "no Γ in the font encoding");
    assert!(text.contains("<80> Tj"), "Γ is not shown");
}
