//! KpointsData: the derived properties of the REST translator and `get_description()` (which
//! BandsData inherits).
//!
//! The k-points are either a mesh (attributes `mesh`, `offset`) or an explicit list (the array
//! `kpoints`, with optional `labels`/`label_numbers`); an optional `cell` gives absolute
//! coordinates through the reciprocal cell.

use serde_json::{Map, Value};

use super::npy::{self, NpyArray};
use super::{ExportError, NodeFiles, NodeInfo};
use crate::model::linalg::{self, Kernels, Mat3, Vec3};
use crate::model::pyjson::float;
use crate::model::structure::mat3_of;

/// `KpointsDataTranslator.get_derived_properties`.
///
/// With a cell, `faces_data` (the Brillouin zone) is computed here geometrically, with the
/// faces grouped as seekpath's `get_BZ` groups them (see [`brillouin_zone`]); the order of the
/// vertices and faces (qhull's) and their last digits are not reproduced.
pub fn derived_properties(node: &NodeInfo, files: &dyn NodeFiles) -> Result<Value, ExportError> {
    derived_properties_with(node, files, Kernels::REFERENCE)
}

fn derived_properties_with(node: &NodeInfo, files: &dyn NodeFiles, k: Kernels) -> Result<Value, ExportError> {
    let attrs = &node.attributes;
    let reciprocal = match attrs.get("cell") {
        Some(cell) => Some(reciprocal_cell(cell, k)?),
        None => None,
    };
    let explicit = if has_array(node, "kpoints") {
        let bytes = files.read("kpoints.npy")?;
        let array = npy::parse(&bytes).map_err(|e| ExportError::Invalid(format!("array `kpoints`: {e}")))?;
        Some(rows3(&array)?)
    } else {
        None
    };
    let mesh = match (attrs.get("mesh"), attrs.get("offset")) {
        (Some(mesh), offset) => Some((mesh, offset.unwrap_or(&Value::Null))),
        _ => None,
    };

    // A mesh wins over an explicit list (the reference never stores both).
    let rel: Vec<[f64; 3]> = match (&mesh, &explicit) {
        (Some((m, o)), _) => mesh_points(m, o)?,
        (None, Some(points)) => points.clone(),
        (None, None) => {
            return Err(ExportError::Invalid(
                "cannot access local variable 'explicit_kpoints_rel' where it is not associated with a value".into(),
            ));
        }
    };

    let mut out = Map::new();
    out.insert("explicit_kpoints_rel".into(), points_value(&rel));
    let abs = reciprocal.as_ref().map(|r| linalg::matmul(&rel, r));
    if let Some(abs) = &abs {
        out.insert("explicit_kpoints_abs".into(), points_value(abs));
    }
    if let Some(r) = &reciprocal {
        out.insert("faces_data".into(), brillouin_zone(r, k).unwrap_or(Value::Null));
    }

    let mut has_labels = false;
    if explicit.is_some()
        && let Some(labels) = labels(node)
    {
        has_labels = true;
        let point = |points: &[[f64; 3]], idx: usize| -> Result<Value, ExportError> {
            points
                .get(idx)
                .map(|p| points_value(std::slice::from_ref(p))[0].clone())
                .ok_or_else(|| ExportError::Invalid(format!("index {idx} is out of bounds for the k-points")))
        };
        let mut rel_map = Map::new();
        let mut path = Vec::new();
        let mut previous: Option<&str> = None;
        for (idx, label) in &labels {
            rel_map.insert(label.to_string(), point(&rel, *idx)?);
            // The reference tests the k-point index, not the position in the list.
            if *idx > 0 {
                path.push(Value::Array(vec![previous.map_or(Value::Null, Value::from), Value::from(*label)]));
            }
            previous = Some(label);
        }
        out.insert("labelled_kpoints_rel".into(), Value::Object(rel_map));
        out.insert("labelled_path".into(), Value::Array(path));
        if let Some(abs) = &abs {
            let mut abs_map = Map::new();
            for (idx, label) in &labels {
                abs_map.insert(label.to_string(), point(abs, *idx)?);
            }
            out.insert("labelled_kpoints_abs".into(), Value::Object(abs_map));
        }
    }
    if let Some((m, o)) = mesh {
        out.insert("mesh".into(), m.clone());
        out.insert("offset".into(), o.clone());
    }
    out.insert("has_cell".into(), Value::Bool(reciprocal.is_some()));
    out.insert("has_mesh".into(), Value::Bool(mesh.is_some()));
    out.insert("has_labels".into(), Value::Bool(has_labels));
    Ok(Value::Object(out))
}

/// `get_description()`: `Kpoints mesh: 4x4x4 (+0.0,0.0,0.0)` for a mesh, `(Path of N kpts)`
/// for an explicit list (N from the stored array shape).
pub fn description(node: &NodeInfo) -> String {
    let attrs = &node.attributes;
    if let Some(mesh) = attrs.get("mesh") {
        let item = |v: &Value, i: usize| v.get(i).cloned().unwrap_or(Value::Null);
        let offset = attrs.get("offset").cloned().unwrap_or(Value::Null);
        let o = |i: usize| item(&offset, i).as_f64().map_or_else(|| "None".to_string(), |x| format!("{x:.1}"));
        return format!(
            "Kpoints mesh: {}x{}x{} (+{},{},{})",
            py_str(&item(mesh, 0)),
            py_str(&item(mesh, 1)),
            py_str(&item(mesh, 2)),
            o(0),
            o(1),
            o(2)
        );
    }
    match attrs.get("array|kpoints").and_then(|s| s.get(0)).and_then(Value::as_u64) {
        Some(n) => format!("(Path of {n} kpts)"),
        // No k-points at all: the reference raises; `/links/tree` then shows the class name.
        None => crate::model::node_class::class_name(&node.node_type).to_string(),
    }
}

fn has_array(node: &NodeInfo, name: &str) -> bool {
    node.attributes.get(format!("array|{name}")).is_some()
}

/// `[(label_number, label), ...]` when both attributes are set.
fn labels(node: &NodeInfo) -> Option<Vec<(usize, &str)>> {
    let numbers = node.attributes.get("label_numbers")?.as_array()?;
    let labels = node.attributes.get("labels")?.as_array()?;
    Some(
        numbers
            .iter()
            .zip(labels)
            .filter_map(|(n, l)| Some((usize::try_from(n.as_i64()?).ok()?, l.as_str()?)))
            .collect(),
    )
}

/// `2π · inv(cell)ᵀ`, rows are the reciprocal vectors.
fn reciprocal_cell(cell: &Value, k: Kernels) -> Result<Mat3, ExportError> {
    let m = mat3_of(cell).ok_or_else(|| ExportError::Invalid("invalid cell".into()))?;
    k.reciprocal_cell(&m).ok_or_else(|| ExportError::Invalid("Singular matrix".into()))
}

/// Largest mesh expanded into explicit points.
const MAX_MESH_POINTS: u64 = 1_000_000;

/// `get_kpoints_mesh(print_list=True)`: `(i + offset) / n` along each axis, last axis fastest.
fn mesh_points(mesh: &Value, offset: &Value) -> Result<Vec<[f64; 3]>, ExportError> {
    let bad = || ExportError::Invalid("invalid k-points mesh".into());
    let n: Vec<i64> = (0..3).map(|i| mesh.get(i).and_then(Value::as_i64).ok_or_else(bad)).collect::<Result<_, _>>()?;
    let o: Vec<f64> =
        (0..3).map(|i| offset.get(i).and_then(Value::as_f64).ok_or_else(bad)).collect::<Result<_, _>>()?;
    // A mesh is a few thousand points in practice; a damaged or crafted one must not make the
    // server allocate without bound.
    let total = n.iter().try_fold(1u64, |acc, &x| acc.checked_mul(x.max(0) as u64));
    if total.is_none_or(|t| t > MAX_MESH_POINTS) {
        return Err(ExportError::Invalid(format!("the k-points mesh {n:?} has more than {MAX_MESH_POINTS} points")));
    }
    let mut points = Vec::with_capacity(total.unwrap_or(0) as usize);
    for i in 0..n[0] {
        for j in 0..n[1] {
            for k in 0..n[2] {
                points.push([
                    (i as f64 + o[0]) / n[0] as f64,
                    (j as f64 + o[1]) / n[1] as f64,
                    (k as f64 + o[2]) / n[2] as f64,
                ]);
            }
        }
    }
    Ok(points)
}

/// An N×3 array as rows.
fn rows3(array: &NpyArray) -> Result<Vec<[f64; 3]>, ExportError> {
    match array.shape.as_slice() {
        [n, 3] if array.element_count() == 3 * n => {
            Ok((0..*n).map(|r| [0, 1, 2].map(|c| array.get_f64(3 * r + c))).collect())
        }
        shape => Err(ExportError::Invalid(format!("expected an N×3 k-point array, found shape {shape:?}"))),
    }
}

/// The Brillouin zone (Wigner-Seitz cell of the reciprocal lattice) in seekpath's `get_BZ`
/// layout: `triangles_vertices` (the vertices), `triangles` (vertex indices, counterclockwise
/// seen from outside) and `faces` (polygons, each its vertices in order around it).
///
/// The polytope is computed directly (half-spaces of the nearest lattice vectors), then its
/// faces are grouped as `get_BZ` groups qhull's triangles: two triangles sharing an edge are
/// merged when the triple product of the edge and the two third vertices is below 1e-6 (an
/// absolute threshold), transitively, and a group of several triangles becomes the 2-D
/// convex hull of its points projected on the plane of the first three. On an undistorted
/// lattice the groups are the geometric faces; on a slightly distorted one, vertices split
/// by a tiny edge make `get_BZ` merge the faces around it, and so does this. The vertices,
/// the faces and their polygons are the reference's; their order (qhull's) is not.
fn brillouin_zone(rec: &Mat3, kernels: Kernels) -> Option<Value> {
    let [b1, b2, b3] = *rec;
    let lattice = |n: i32| {
        let mut gs = Vec::new();
        for i in -n..=n {
            for j in -n..=n {
                for k in -n..=n {
                    if (i, j, k) != (0, 0, 0) {
                        let (i, j, k) = (i as f64, j as f64, k as f64);
                        gs.push([0, 1, 2].map(|c| i * b1[c] + j * b2[c] + k * b3[c]));
                    }
                }
            }
        }
        gs
    };
    let scale = rec.iter().map(|v| kernels.norm(v)).fold(0.0, f64::max);
    if scale.is_nan() || scale <= 0.0 {
        return None;
    }
    // Vertices closer than this are one (qhull keeps vertices split by a slight distortion of
    // the lattice apart, down to its rounding).
    let tol = 1e-11 * scale;
    // The cell bounded by the nearest neighbours contains the zone; its farthest vertex bounds
    // which lattice vectors can contribute a face.
    let near = polytope_vertices(&lattice(1), tol, kernels)?;
    let reach = near.iter().map(|v| kernels.norm(v)).fold(0.0, f64::max);
    let mut planes: Vec<[f64; 3]> =
        lattice(3).into_iter().filter(|g| kernels.norm(g) / 2.0 <= reach + 1e-9 * scale).collect();
    // Nearest planes first: they reject most candidate vertices at once.
    planes.sort_by(|a, b| kernels.norm(a).total_cmp(&kernels.norm(b)));
    let vertices = polytope_vertices(&planes, tol, kernels)?;

    // The geometric faces, each ordered counterclockwise seen from outside, cut into fans.
    let mut triangles: Vec<[usize; 3]> = Vec::new();
    for g in &planes {
        let gn = kernels.norm(g);
        let on_plane: Vec<usize> = (0..vertices.len())
            .filter(|&i| (kernels.dot(&vertices[i], g) / gn - gn / 2.0).abs() <= tol * 10.0)
            .collect();
        if on_plane.len() < 3 {
            continue;
        }
        let n = on_plane.len() as f64;
        let c = [0, 1, 2].map(|k| on_plane.iter().map(|&i| vertices[i][k]).sum::<f64>() / n);
        let rel = |i: usize| [0, 1, 2].map(|k| vertices[i][k] - c[k]);
        let u = rel(on_plane[0]);
        let w = linalg::cross(&g.map(|x| x / gn), &u);
        let mut ordered: Vec<(f64, usize)> =
            on_plane.iter().map(|&i| (kernels.dot(&rel(i), &w).atan2(kernels.dot(&rel(i), &u)), i)).collect();
        ordered.sort_by(|a, b| a.0.total_cmp(&b.0));
        let ids: Vec<usize> = ordered.into_iter().map(|(_, i)| i).collect();
        for t in 1..ids.len() - 1 {
            triangles.push([ids[0], ids[t], ids[t + 1]]);
        }
    }
    let faces = merged_faces(&vertices, &triangles, kernels);

    let mut out = Map::new();
    out.insert("faces".into(), Value::Array(faces.iter().map(|f| points_value(f)).collect()));
    out.insert("triangles".into(), Value::Array(triangles.iter().map(|t| Value::from(t.to_vec())).collect()));
    out.insert("triangles_vertices".into(), points_value(&vertices));
    Some(Value::Object(out))
}

/// `get_BZ`'s faces: triangles sharing an edge are merged when `are_coplanar` (the triple
/// product of the edge and the two third vertices below 1e-6), transitively; a lone triangle
/// stays itself, a group becomes the 2-D convex hull of its points (in vertex order)
/// projected on the plane of the first three.
fn merged_faces(vertices: &[Vec3], triangles: &[[usize; 3]], kernels: Kernels) -> Vec<Vec<Vec3>> {
    let sub = |a: &Vec3, b: &Vec3| [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    let mut parent: Vec<usize> = (0..triangles.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut edges: std::collections::BTreeMap<(usize, usize), Vec<usize>> = Default::default();
    for (t, tri) in triangles.iter().enumerate() {
        for (a, b) in [(tri[0], tri[1]), (tri[1], tri[2]), (tri[2], tri[0])] {
            edges.entry((a.min(b), a.max(b))).or_default().push(t);
        }
    }
    for ((p1, p2), ts) in &edges {
        let [t0, t1] = ts.as_slice() else { continue };
        let third = |t: usize| triangles[t].iter().copied().find(|v| v != p1 && v != p2);
        let (Some(o0), Some(o1)) = (third(*t0), third(*t1)) else { continue };
        let (e, a, b) = (
            sub(&vertices[*p2], &vertices[*p1]),
            sub(&vertices[o0], &vertices[*p1]),
            sub(&vertices[o1], &vertices[*p1]),
        );
        if kernels.dot(&linalg::cross(&e, &a), &b).abs() < 1e-6 {
            let (r0, r1) = (root(&mut parent, *t0), root(&mut parent, *t1));
            parent[r0.max(r1)] = r0.min(r1);
        }
    }
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for t in 0..triangles.len() {
        let r = root(&mut parent, t);
        match groups.iter_mut().find(|(g, _)| *g == r) {
            Some((_, members)) => members.push(t),
            None => groups.push((r, vec![t])),
        }
    }
    groups
        .into_iter()
        .map(|(_, members)| {
            if let [t] = members.as_slice() {
                return triangles[*t].iter().map(|&i| vertices[i]).collect();
            }
            let mut ids: Vec<usize> = members.iter().flat_map(|&t| triangles[t]).collect();
            ids.sort_unstable();
            ids.dedup();
            let pts: Vec<Vec3> = ids.iter().map(|&i| vertices[i]).collect();
            let v1 = sub(&pts[1], &pts[0]);
            let b = linalg::cross(&v1, &sub(&pts[2], &pts[0]));
            let v2 = linalg::cross(&v1, &b);
            let (n1, n2) = (kernels.norm(&v1), kernels.norm(&v2));
            let (v1, v2) = (v1.map(|x| x / n1), v2.map(|x| x / n2));
            let xy: Vec<[f64; 2]> = pts.iter().map(|p| [kernels.dot(p, &v1), kernels.dot(p, &v2)]).collect();
            convex_hull_2d(&xy).into_iter().map(|i| pts[i]).collect()
        })
        .collect()
}

/// The indices of the extreme points of `points`, counterclockwise (Andrew's monotone chain;
/// points on an edge are not vertices).
fn convex_hull_2d(points: &[[f64; 2]]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[a][0].total_cmp(&points[b][0]).then(points[a][1].total_cmp(&points[b][1])));
    let cross = |o: usize, a: usize, b: usize| {
        let (o, a, b) = (points[o], points[a], points[b]);
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<usize> = Vec::new();
    for pass in [order.clone(), order.into_iter().rev().collect::<Vec<_>>()] {
        let start = hull.len();
        for i in pass {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], i) <= 0.0 {
                hull.pop();
            }
            hull.push(i);
        }
        hull.pop();
    }
    hull
}

/// Vertices of `{k : k·g <= |g|²/2 for every g}`: intersections of three planes that satisfy
/// all the others, merged within `tol`.
fn polytope_vertices(planes: &[Vec3], tol: f64, kernels: Kernels) -> Option<Vec<Vec3>> {
    let half: Vec<f64> = planes.iter().map(|g| kernels.dot(g, g) / 2.0).collect();
    let mut vertices: Vec<[f64; 3]> = Vec::new();
    for a in 0..planes.len() {
        for b in a + 1..planes.len() {
            let ab = linalg::cross(&planes[a], &planes[b]);
            for c in b + 1..planes.len() {
                let det = kernels.dot(&ab, &planes[c]);
                let size = kernels.norm(&planes[a]) * kernels.norm(&planes[b]) * kernels.norm(&planes[c]);
                if det.abs() <= 1e-10 * size {
                    continue;
                }
                // Cramer's rule for g_a·v = h_a, g_b·v = h_b, g_c·v = h_c.
                let bc = linalg::cross(&planes[b], &planes[c]);
                let ca = linalg::cross(&planes[c], &planes[a]);
                let v = [0, 1, 2].map(|k| (half[a] * bc[k] + half[b] * ca[k] + half[c] * ab[k]) / det);
                let inside = planes.iter().zip(&half).all(|(g, h)| kernels.dot(g, &v) <= h + tol * kernels.norm(g));
                if inside && !vertices.iter().any(|u| (0..3).all(|k| (u[k] - v[k]).abs() <= tol * 10.0)) {
                    vertices.push(v);
                }
            }
        }
    }
    (vertices.len() >= 4).then_some(vertices)
}

fn points_value(points: &[[f64; 3]]) -> Value {
    Value::Array(points.iter().map(|p| Value::Array(p.iter().map(|&x| float(x)).collect())).collect())
}

/// Python's `str()` of a stored scalar.
fn py_str(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => crate::model::pyjson::python_float_repr(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::array::testutil::{golden_json, load, sha256_hex};
    use super::*;

    const EXPLICIT: &str = "e8d9b133-c9af-4d52-b09c-c0c5eac19319";
    const MESH: &str = "26a805a6-28b0-4041-bf3a-d99e01ee8760";
    const MESH_CELL: &str = "b0dd8ff4-fd2b-4269-a70d-6363d5cca8e1";
    const PATH_CELL: &str = "74028fec-5939-4473-a777-a6169efc8f5f";

    fn ours(uuid: &str) -> String {
        let (node, files) = load(uuid);
        crate::model::pyjson::to_string(&derived_properties(&node, &files).unwrap())
    }

    #[test]
    fn derived_properties_match_golden() {
        for uuid in [EXPLICIT, MESH] {
            let expected = golden_json(&format!("/api/v4/nodes/{uuid}/contents/derived_properties"));
            assert_eq!(ours(uuid), crate::model::pyjson::to_string(&expected["data"]["derived_properties"]), "{uuid}");
        }
    }

    #[test]
    fn brillouin_zone_of_fcc_is_a_truncated_octahedron() {
        let (node, files) = load(MESH_CELL);
        let props = derived_properties(&node, &files).unwrap();
        let bz = &props["faces_data"];
        let faces = bz["faces"].as_array().unwrap();
        let mut sizes: Vec<usize> = faces.iter().map(|f| f.as_array().unwrap().len()).collect();
        sizes.sort();
        assert_eq!(sizes, [vec![4; 6], vec![6; 8]].concat());
        assert_eq!(bz["triangles_vertices"].as_array().unwrap().len(), 24);
        assert_eq!(bz["triangles"].as_array().unwrap().len(), 44);
        // The reference's vertices (from seekpath), as a set, to 1e-12.
        let theirs = [[-1.15691130679057, 0.0, 0.5784556533952854], [-1.1569113067905699, -0.5784556533952853, 0.0]];
        let ours: Vec<Vec<f64>> = bz["triangles_vertices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect())
            .collect();
        for t in theirs {
            assert!(ours.iter().any(|o| (0..3).all(|k| (o[k] - t[k]).abs() < 1e-12)), "{t:?}");
        }
        // Every triangle is counterclockwise seen from outside.
        for t in bz["triangles"].as_array().unwrap() {
            let p: Vec<[f64; 3]> = t
                .as_array()
                .unwrap()
                .iter()
                .map(|i| {
                    let v = &ours[i.as_u64().unwrap() as usize];
                    [v[0], v[1], v[2]]
                })
                .collect();
            let n = linalg::cross(&[0, 1, 2].map(|k| p[1][k] - p[0][k]), &[0, 1, 2].map(|k| p[2][k] - p[0][k]));
            assert!(Kernels::REFERENCE.dot(&n, &p[0]) > 0.0);
        }
    }

    /// The output without `faces_data`, which is not spelled like the reference's.
    fn ours_without_faces(uuid: &str, k: Kernels) -> String {
        let (node, files) = load(uuid);
        let mut v = derived_properties_with(&node, &files, k).unwrap();
        v.as_object_mut().unwrap().remove("faces_data");
        crate::model::pyjson::to_string(&v)
    }

    #[test]
    fn with_cell_matches_reference_except_faces() {
        // sha256 of the reference's `derived_properties` (jsonify'd) with `faces_data` removed,
        // recorded from the live reference server on an AVX-512 host (SkylakeX kernels; with the
        // Haswell ones of the recorded answers, the absolute coordinates of 74028fec differ in
        // the last digit).
        for (uuid, sha) in [
            (MESH_CELL, "f415f6ef8e05f08dcd74ebf13c0f0b3a6d568dda83c435d92b59038fbc93db68"),
            (PATH_CELL, "5f429f2f6e4e4a6d84e89b7b5dfa98ecaabee8fc4fca660430e0a38f369dbf68"),
            (
                "94f3527e-0793-4ef0-b192-c03b0036184b",
                "4b4c88de5d22ef3f44cc7beb20901f0ff78447d433de71c09eb61f0241d3f975",
            ),
        ] {
            assert_eq!(sha256_hex(ours_without_faces(uuid, Kernels::SkylakeX).as_bytes()), sha, "{uuid}");
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(description(&load(EXPLICIT).0), "(Path of 4 kpts)");
        assert_eq!(description(&load(MESH).0), "Kpoints mesh: 4x4x4 (+0.5,0.5,0.5)");
        assert_eq!(description(&load(MESH_CELL).0), "Kpoints mesh: 6x6x1 (+0.0,0.0,0.0)");
        assert_eq!(description(&load("401e895d-aa4e-49b2-bd5b-b4705e405f14").0), "(Path of 88 kpts)");
    }

    #[test]
    fn fixture_npy_files_parse() {
        let (_, files) = load(EXPLICIT);
        let k = npy::parse(&files.read("kpoints.npy").unwrap()).unwrap();
        assert_eq!(k.shape, vec![4, 3]);
        assert_eq!(k.data, npy::NpyData::F64(vec![0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.25, 0.0]));
        let w = npy::parse(&files.read("weights.npy").unwrap()).unwrap();
        assert_eq!(w.shape, vec![4]);
        assert_eq!(w.data, npy::NpyData::F64(vec![0.1, 0.3, 0.3, 0.3]));
    }
}
