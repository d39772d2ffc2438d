//! The 3×3 linear algebra of numpy as the reference runs it (numpy 2.4 with OpenBLAS 0.3.31),
//! operation for operation, so that the last digits agree too: cell volumes, vector norms,
//! reciprocal cells, fractional coordinates and Cartesian k-points all end up spelled in full
//! (`repr`) in downloads and derived properties.
//!
//! The reference's arithmetic depends on the CPU OpenBLAS picks at run time: the C kernels
//! (`ddot`, the `dgemv` tails, `daxpy`, the `trsm` solve step) are built without FMA contraction
//! for Haswell/Zen and with it for SkylakeX, while the assembly GEMM kernels always use FMA. The
//! family is therefore an explicit [`Kernels`] value; every exporter uses
//! [`Kernels::REFERENCE`], and tests pass [`Kernels::SkylakeX`] to compare with answers recorded
//! on an AVX-512 host.
//!
//! What numpy calls: `dot` of two vectors is `ddot` (a sum from 0.0, in order); `norm` is
//! `sqrt(dot(x, x))`; `inv` and `solve` are LAPACK `dgesv`: `getf2` (left-looking LU with
//! partial pivoting, the pivot column scaled by the reciprocal of the pivot), then `getrs`,
//! which goes through the blocked `trsm` kernels for several right-hand sides and through `trsv`
//! (axpy updates, true division) for a single one. The SkylakeX variant was checked against
//! numpy on thousands of random matrices, bit for bit; the Haswell variant reproduces every
//! recorded BandsData download (whose path lengths go through `inv`, a GEMM and norms).

/// A 3-vector.
pub type Vec3 = [f64; 3];
/// A 3×3 matrix, row-major (`m[row][column]`, a cell's rows are its lattice vectors).
pub type Mat3 = [[f64; 3]; 3];

/// Which OpenBLAS kernel family's roundings to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// AVX2 machines (Haswell, Zen): C kernels without FMA contraction.
    Haswell,
    /// AVX-512 machines (the reference running on this development host, for instance): C
    /// kernels with FMA contraction.
    SkylakeX,
}

impl Kernels {
    /// The one family every exporter reproduces: the recorded reference answers
    /// (`tests/fixtures/v4.jsonl`) were made on an AVX2 machine. Its BandsData downloads, whose
    /// path lengths go through `inv`, a GEMM and norms of a non-orthogonal cell, match only with
    /// these kernels; no recorded StructureData or KpointsData answer tells the families apart.
    pub const REFERENCE: Kernels = Kernels::Haswell;

    /// Whether the C kernels fuse `a*b + c`.
    fn fused_c(self) -> bool {
        self == Kernels::SkylakeX
    }

    /// `acc + a*b` as a C kernel of this family computes it.
    fn madd(self, a: f64, b: f64, acc: f64) -> f64 {
        if self.fused_c() { a.mul_add(b, acc) } else { acc + a * b }
    }

    /// `c - a*b` (the `trsm` solve step).
    fn msub(self, c: f64, a: f64, b: f64) -> f64 {
        if self.fused_c() { (-a).mul_add(b, c) } else { c - a * b }
    }

    /// `numpy.dot` of two 3-vectors (`ddot`: a sum from 0.0, in index order).
    pub fn dot(self, a: &Vec3, b: &Vec3) -> f64 {
        (0..3).fold(0.0, |acc, i| self.madd(a[i], b[i], acc))
    }

    /// `numpy.linalg.norm` of a 3-vector.
    pub fn norm(self, a: &Vec3) -> f64 {
        self.dot(a, a).sqrt()
    }

    /// `numpy.linalg.inv(m)`; `None` if `m` is singular.
    pub fn inv(self, m: &Mat3) -> Option<Mat3> {
        let lu = self.getrf(m)?;
        let cols = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]].map(|e| self.getrs_multi(&lu, e));
        Some([0, 1, 2].map(|i| [cols[0][i], cols[1][i], cols[2][i]]))
    }

    /// `numpy.linalg.solve(m.T, points.T).T`, i.e. the coordinates of each point in the basis
    /// of the rows of `m` (ASE's `scaled_positions`); `None` if `m` is singular.
    pub fn solve_transposed(self, m: &Mat3, points: &[Vec3]) -> Option<Vec<Vec3>> {
        let lu = self.getrf(&transpose(m))?;
        Some(if points.len() == 1 {
            vec![self.getrs_single(&lu, points[0])]
        } else {
            points.iter().map(|p| self.getrs_multi(&lu, *p)).collect()
        })
    }

    /// `2π · inv(cell)ᵀ`: the reciprocal vectors as rows (AiiDA's `reciprocal_cell`); `None`
    /// if the cell is singular.
    pub fn reciprocal_cell(self, cell: &Mat3) -> Option<Mat3> {
        let inv = self.inv(cell)?;
        let two_pi = 2.0 * std::f64::consts::PI;
        Some([0, 1, 2].map(|i| [0, 1, 2].map(|j| two_pi * inv[j][i])))
    }

    /// `getf2`: for each column, the pivots of the earlier columns applied, the U part above
    /// the diagonal (`ddot`), the rest of the column minus L times that part (`dgemv`, whose
    /// sum starts from 0.0 and is then subtracted), the first row of largest magnitude as
    /// pivot, and the column below it scaled by the pivot's reciprocal.
    fn getrf(self, m: &Mat3) -> Option<Lu> {
        let mut a = *m;
        let mut piv = [0usize; 3];
        for j in 0..3 {
            for (i, &p) in piv.iter().enumerate().take(j) {
                if p != i {
                    let t = a[i][j];
                    a[i][j] = a[p][j];
                    a[p][j] = t;
                }
            }
            // Only row 1 of column 2 has a product to subtract.
            for i in 1..j {
                let dot = (0..i).fold(0.0, |acc, l| self.madd(a[i][l], a[l][j], acc));
                a[i][j] -= dot;
            }
            if j > 0 {
                for r in j..3 {
                    let t = (0..j).fold(0.0, |acc, l| self.madd(a[r][l], a[l][j], acc));
                    a[r][j] -= t;
                }
            }
            let p = (j..3).fold(j, |best, r| if a[r][j].abs() > a[best][j].abs() { r } else { best });
            piv[j] = p;
            let pivot = a[p][j];
            if pivot == 0.0 {
                return None;
            }
            if p != j {
                // Rows are swapped in the columns done so far; later columns are permuted when
                // their turn comes.
                let (lo, hi) = a.split_at_mut(p);
                lo[j][..=j].swap_with_slice(&mut hi[0][..=j]);
            }
            let r = 1.0 / pivot;
            for row in a.iter_mut().skip(j + 1) {
                row[j] *= r;
            }
        }
        Some(Lu { a, piv })
    }

    /// `getrs` for one of several right-hand sides (the `trsm` kernels): forward with the unit
    /// lower factor (rows 0-1 in the C solve step, row 2 through a GEMM kernel, always fused),
    /// backward with the upper one (row 2 solved, rows 0-1 updated by a GEMM kernel, then
    /// solved; the kernels multiply by reciprocals of the diagonal).
    fn getrs_multi(self, lu: &Lu, mut b: Vec3) -> Vec3 {
        let a = &lu.a;
        lu.permute(&mut b);
        let x0 = b[0];
        let x1 = self.msub(b[1], x0, a[1][0]);
        let x2 = b[2] - a[2][1].mul_add(x1, a[2][0] * x0);
        let y2 = x2 * (1.0 / a[2][2]);
        let c0 = x0 - a[0][2] * y2;
        let c1 = x1 - a[1][2] * y2;
        let y1 = c1 * (1.0 / a[1][1]);
        let y0 = self.msub(c0, y1, a[0][1]) * (1.0 / a[0][0]);
        [y0, y1, y2]
    }

    /// `getrs` for a single right-hand side (`trsv`: `daxpy` updates, true division).
    fn getrs_single(self, lu: &Lu, mut b: Vec3) -> Vec3 {
        let a = &lu.a;
        lu.permute(&mut b);
        for i in 0..3 {
            for k in i + 1..3 {
                b[k] = self.madd(-b[i], a[k][i], b[k]);
            }
        }
        for i in (0..3).rev() {
            b[i] /= a[i][i];
            for k in 0..i {
                b[k] = self.madd(-b[i], a[k][i], b[k]);
            }
        }
        b
    }
}

/// LU factors (L unit lower, below the diagonal; U on and above) and row pivots.
struct Lu {
    a: Mat3,
    piv: [usize; 3],
}

impl Lu {
    fn permute(&self, b: &mut Vec3) {
        for (i, &p) in self.piv.iter().enumerate() {
            b.swap(i, p);
        }
    }
}

/// `numpy.cross` (plain products and differences, no fusing, on every CPU).
pub fn cross(a: &Vec3, b: &Vec3) -> Vec3 {
    [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
}

/// `numpy.dot(points, m)` for an N×3 array and a 3×3 matrix: a GEMM, fused in row order of `m`
/// on every kernel family.
pub fn matmul(points: &[Vec3], m: &Mat3) -> Vec<Vec3> {
    points
        .iter()
        .map(|p| {
            let col = |j: usize| p[2].mul_add(m[2][j], p[1].mul_add(m[1][j], p[0] * m[0][j]));
            [col(0), col(1), col(2)]
        })
        .collect()
}

/// The transposed matrix.
pub fn transpose(m: &Mat3) -> Mat3 {
    [0, 1, 2].map(|i| [m[0][i], m[1][i], m[2][i]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_follows_openblas() {
        // numpy.linalg.inv as numpy 2.4 prints it; both families agree on this fcc cell.
        let cell = [[0.0, 2.7155, 2.7155], [2.7155, 0.0, 2.7155], [2.7155, 2.7155, 0.0]];
        for k in [Kernels::Haswell, Kernels::SkylakeX] {
            let inv = k.inv(&cell).unwrap();
            assert_eq!(inv[0], [-0.18412815319462342, 0.18412815319462345, 0.18412815319462345]);
            assert_eq!(inv[2], [0.18412815319462345, 0.18412815319462345, -0.18412815319462347]);
        }
        // The fixture's bct cell, on an AVX-512 host (SkylakeX kernels).
        let cell = [
            [-1.9201484643121, 1.9201484643121, 2.7155],
            [1.9201484643121, -1.9201484643121, 2.7155],
            [1.9201484643121, 1.9201484643121, -2.7155],
        ];
        let inv = Kernels::SkylakeX.inv(&cell).unwrap();
        assert_eq!(inv[0][0], 5.9109683121775405e-18, "{inv:?}");
    }

    #[test]
    fn singular_matrices() {
        let m = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]];
        for k in [Kernels::Haswell, Kernels::SkylakeX] {
            assert!(k.inv(&m).is_none());
            assert!(k.solve_transposed(&m, &[[1.0, 0.0, 0.0]]).is_none());
            assert!(k.reciprocal_cell(&m).is_none());
        }
    }

    #[test]
    fn vectors() {
        for k in [Kernels::Haswell, Kernels::SkylakeX] {
            assert_eq!(k.norm(&[1.0, 2.0, 2.0]), 3.0);
            assert_eq!(k.dot(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 32.0);
        }
        assert_eq!(cross(&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0]), [0.0, 0.0, 1.0]);
        assert_eq!(matmul(&[[1.0, 2.0, 3.0]], &[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]), [[1.0, 4.0, 9.0]]);
        assert_eq!(transpose(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])[0], [1.0, 4.0, 7.0]);
    }

    #[test]
    fn solve_agrees_with_the_inverse_on_exact_cases() {
        let cell = [[2.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 8.0]];
        for k in [Kernels::Haswell, Kernels::SkylakeX] {
            assert_eq!(k.solve_transposed(&cell, &[[1.0, 1.0, 1.0]]).unwrap(), [[0.5, 0.25, 0.125]]);
            assert_eq!(
                k.solve_transposed(&cell, &[[1.0, 1.0, 1.0], [2.0, 0.0, 4.0]]).unwrap(),
                [[0.5, 0.25, 0.125], [1.0, 0.0, 0.5]]
            );
        }
    }
}
