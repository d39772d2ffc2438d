//! The Brillouin zone of a reciprocal cell as seekpath's `get_BZ` (1.9) returns it to the
//! REST translator of KpointsData, with qhull's order of everything.
//!
//! `get_BZ` takes the Voronoi cell of the origin among the lattice vectors `i·b1 + j·b2 + k·b3`
//! (|i|, |j|, |k| ≤ 3), triangulates it with `ConvexHull`, orients the triangles, and merges
//! coplanar triangles that share an edge into faces. Which vertex comes first, which triangle,
//! which face, and where each polygon starts is decided by qhull's facet lists after each run;
//! they depend on qhull's whole construction (initial simplex, order of added points, facet
//! merges), so the runs themselves are replayed: the same qhull release as the reference's
//! scipy, with the same options and the same input points bit for bit (`bz_qhull.c`). The rest
//! (the Python dictionaries' insertion order, numpy's arithmetic) is reproduced here.

use std::ffi::c_int;

use serde_json::{Map, Value};

use crate::model::linalg::{self, Kernels, Mat3, Vec3};
use crate::model::pyjson::float;

unsafe extern "C" {
    fn aiida_bz_voronoi_region(points: *const f64, n: c_int, central: c_int, out: *mut f64, cap: c_int) -> c_int;
    fn aiida_bz_convex_hull(
        points: *const f64,
        n: c_int,
        dim: c_int,
        out: *mut c_int,
        cap: c_int,
        extremes: *mut c_int,
        nextremes: *mut c_int,
    ) -> c_int;
}

/// At most this many Voronoi vertices (a Wigner-Seitz cell has at most 24).
const MAX_VERTICES: usize = 256;
/// At most this many hull triangles (2·V − 4 for V vertices).
const MAX_TRIANGLES: usize = 2 * MAX_VERTICES;

/// `scipy.spatial.Voronoi(points).vertices[regions[point_region[central]]]`.
fn voronoi_region(points: &[Vec3], central: usize) -> Option<Vec<Vec3>> {
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let mut out = vec![0.0f64; 3 * MAX_VERTICES];
    // SAFETY: `flat` holds `points.len()` rows of 3 doubles; `out` has room for MAX_VERTICES
    // rows, the `cap` passed; the C side reads and writes nothing else.
    let n = unsafe {
        aiida_bz_voronoi_region(
            flat.as_ptr(),
            c_int::try_from(points.len()).ok()?,
            c_int::try_from(central).ok()?,
            out.as_mut_ptr(),
            MAX_VERTICES as c_int,
        )
    };
    let n = usize::try_from(n).ok()?;
    Some(out.chunks_exact(3).take(n).map(|c| [c[0], c[1], c[2]]).collect())
}

/// `scipy.spatial.ConvexHull(points)`: its `simplices` (`dim` indices each) and, in 2-D, its
/// `vertices` (counterclockwise, as qhull walks its facets).
fn convex_hull(flat: &[f64], dim: usize) -> Option<(Vec<Vec<usize>>, Vec<usize>)> {
    let n = flat.len() / dim;
    let mut out = vec![0 as c_int; dim * MAX_TRIANGLES];
    let mut extremes = vec![0 as c_int; n];
    let mut nextremes: c_int = 0;
    // SAFETY: `flat` holds `n` rows of `dim` doubles; `out` has room for MAX_TRIANGLES rows of
    // `dim` ints (the `cap` passed) and `extremes` for `n` ints, as the C side expects.
    let count = unsafe {
        aiida_bz_convex_hull(
            flat.as_ptr(),
            c_int::try_from(n).ok()?,
            c_int::try_from(dim).ok()?,
            out.as_mut_ptr(),
            MAX_TRIANGLES as c_int,
            extremes.as_mut_ptr(),
            &mut nextremes,
        )
    };
    let count = usize::try_from(count).ok()?;
    let index = |i: &c_int| usize::try_from(*i).ok().filter(|&i| i < n);
    let simplices = out
        .chunks_exact(dim)
        .take(count)
        .map(|s| s.iter().map(index).collect::<Option<Vec<_>>>())
        .collect::<Option<_>>()?;
    let extremes = extremes[..usize::try_from(nextremes).ok()?.min(n)].iter().map(index).collect::<Option<_>>()?;
    Some((simplices, extremes))
}

fn sub(a: &Vec3, b: &Vec3) -> Vec3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `get_BZ(b1, b2, b3)` for the rows of `rec`: `triangles_vertices`, `triangles` (oriented) and
/// `faces`, in the reference's order. `None` where `get_BZ` would fail (a degenerate cell).
pub fn brillouin_zone(rec: &Mat3, kernels: Kernels) -> Option<Value> {
    let [b1, b2, b3] = *rec;
    // The G-vectors, in get_BZ's loop order; numpy adds `i*b1 + j*b2` first, then `k*b3`.
    let mut points: Vec<Vec3> = Vec::with_capacity(343);
    let mut central = 0;
    for i in -3i32..=3 {
        for j in -3i32..=3 {
            for k in -3i32..=3 {
                if (i, j, k) == (0, 0, 0) {
                    central = points.len();
                }
                let (i, j, k) = (f64::from(i), f64::from(j), f64::from(k));
                points.push([0, 1, 2].map(|c| i * b1[c] + j * b2[c] + k * b3[c]));
            }
        }
    }
    if points.iter().flatten().any(|x| !x.is_finite()) {
        return None;
    }
    let vertices = voronoi_region(&points, central)?;
    if vertices.len() < 4 {
        return None;
    }
    let flat: Vec<f64> = vertices.iter().flatten().copied().collect();
    let (simplices, _) = convex_hull(&flat, 3)?;
    let simplices: Vec<[usize; 3]> = simplices.into_iter().map(|s| [s[0], s[1], s[2]]).collect();

    // Orientation: get_BZ keeps a triangle whose normal `(c - p1) × (c - p0)` points into the
    // zone (a point just above its centre is inside, per a Delaunay triangulation of the
    // vertices) and reverses the others. The zone is convex around the origin, so "into" is
    // the side of the origin.
    let triangles: Vec<Value> = simplices
        .iter()
        .map(|s| {
            let p = s.map(|i| vertices[i]);
            let c = [0, 1, 2].map(|k| (p[0][k] + p[1][k] + p[2][k]) / 3.0);
            let normal = linalg::cross(&sub(&c, &p[1]), &sub(&c, &p[0]));
            let inward = kernels.dot(&normal, &c) < 0.0;
            let order = if inward { s.to_vec() } else { vec![s[2], s[1], s[0]] };
            Value::from(order)
        })
        .collect();

    let faces = merged_faces(&vertices, &simplices, kernels)?;
    let mut out = Map::new();
    out.insert("triangles_vertices".into(), points_value(&vertices));
    out.insert("triangles".into(), Value::Array(triangles));
    out.insert("faces".into(), Value::Array(faces.iter().map(|f| points_value(f)).collect()));
    Some(Value::Object(out))
}

/// get_BZ's faces. Two triangles sharing an edge are merged when `are_coplanar` (the triple
/// product of the edge and the two third vertices below 1e-6), transitively. The faces come in
/// the order in which a member of each group first appears among the edges (a dict keyed by
/// edge, in the order of the triangles and their edges 01, 12, 20); a lone triangle is its
/// three vertices in qhull's order, a group the 2-D `ConvexHull` of its vertices (ascending
/// index) projected on the plane of the first three, in qhull's order.
fn merged_faces(vertices: &[Vec3], simplices: &[[usize; 3]], kernels: Kernels) -> Option<Vec<Vec<Vec3>>> {
    // Edges in dict insertion order, each with its triangles.
    let mut edges: Vec<((usize, usize), Vec<usize>)> = Vec::new();
    for (t, s) in simplices.iter().enumerate() {
        for (a, b) in [(s[0], s[1]), (s[1], s[2]), (s[2], s[0])] {
            let key = (a.min(b), a.max(b));
            match edges.iter_mut().find(|(k, _)| *k == key) {
                Some((_, ts)) => ts.push(t),
                None => edges.push((key, vec![t])),
            }
        }
    }
    let mut parent: Vec<usize> = (0..simplices.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    // `merge_with`'s keys in insertion order.
    let mut key_order: Vec<usize> = Vec::new();
    let mut seen = vec![false; simplices.len()];
    for ((p1, p2), ts) in &edges {
        // get_BZ indexes `triangles[0]` and `[1]`: a hull edge has exactly two.
        let [t0, t1] = ts.as_slice() else { return None };
        for &t in [t0, t1] {
            if !seen[t] {
                seen[t] = true;
                key_order.push(t);
            }
        }
        let third = |t: usize| simplices[t].iter().copied().find(|v| v != p1 && v != p2);
        let (o0, o1) = (third(*t0)?, third(*t1)?);
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
    // Every triangle has edges, so every one is a key; a group is listed where its first key is.
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for &t in &key_order {
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
                return Some(simplices[*t].iter().map(|&i| vertices[i]).collect());
            }
            let mut ids: Vec<usize> = members.iter().flat_map(|&t| simplices[t]).collect();
            ids.sort_unstable();
            ids.dedup();
            let pts: Vec<Vec3> = ids.iter().map(|&i| vertices[i]).collect();
            let v1 = sub(&pts[1], &pts[0]);
            let b = linalg::cross(&v1, &sub(&pts[2], &pts[0]));
            let v2 = linalg::cross(&v1, &b);
            let (n1, n2) = (kernels.norm(&v1), kernels.norm(&v2));
            let (v1, v2) = (v1.map(|x| x / n1), v2.map(|x| x / n2));
            let xy: Vec<f64> = pts.iter().flat_map(|p| [kernels.dot(p, &v1), kernels.dot(p, &v2)]).collect();
            let (_, extremes) = convex_hull(&xy, 2)?;
            Some(extremes.into_iter().map(|i| pts[i]).collect())
        })
        .collect()
}

fn points_value(points: &[Vec3]) -> Value {
    Value::Array(points.iter().map(|p| Value::Array(p.iter().map(|&x| float(x)).collect())).collect())
}
