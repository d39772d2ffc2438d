//! TrajectoryData: the `xsf` (an XCrySDen animation, one frame per step) and `cif` (one CIF
//! block per step, each the CIF of that step's StructureData, written via ASE and PyCifRW as
//! for a structure) downloads, and `json` (the arrays, as every ArrayData).
//!
//! The REST API exports every step: `_prepare_xsf`/`_prepare_cif` take an index, but the
//! download endpoint passes none.

use serde_json::Value;

use super::array::{self, read_array};
use super::npy::NpyArray;
use super::structure;
use super::{Export, ExportError, NodeFiles, NodeInfo};
use crate::model::linalg::{Mat3, Vec3};
use crate::model::structure::{Kind, Site, Structure, atomic_number};

pub fn export(node: &NodeInfo, files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    let content = match format {
        "json" => return array::export(node, files, format),
        "xsf" => xsf(&Trajectory::read(node, files)?)?,
        "cif" => cif(&Trajectory::read(node, files)?)?,
        _ => return Err(ExportError::Unsupported(format.to_string())),
    };
    Ok(Export { content: content.into_bytes(), filename: None })
}

fn invalid(msg: impl Into<String>) -> ExportError {
    ExportError::Invalid(msg.into())
}

/// What the exporters read of a trajectory.
struct Trajectory {
    /// `numsteps`: the length of the `steps` array (0 without one).
    numsteps: usize,
    /// One chemical symbol per site.
    symbols: Vec<String>,
    /// `pbc` (the structures of the steps default to periodic when it is missing, as in the
    /// reference for trajectories stored before aiida-core 2.8).
    pbc: [bool; 3],
    /// Per step, the sites' positions.
    positions: Vec<Vec<Vec3>>,
    /// Per step, the cell (rows are lattice vectors), if the trajectory has cells.
    cells: Option<Vec<Mat3>>,
}

impl Trajectory {
    fn read(node: &NodeInfo, files: &dyn NodeFiles) -> Result<Trajectory, ExportError> {
        let attrs = &node.attributes;
        let numsteps =
            attrs.get("array|steps").and_then(|s| s.get(0)).and_then(Value::as_u64).map_or(0, |n| n as usize);
        let symbols: Vec<String> = attrs
            .get("symbols")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("the trajectory has no `symbols` attribute"))?
            .iter()
            .map(|s| s.as_str().map(str::to_string).ok_or_else(|| invalid(format!("invalid symbol {s}"))))
            .collect::<Result<_, _>>()?;
        let pbc = match attrs.get("pbc").and_then(Value::as_array) {
            Some(p) if p.len() == 3 => [0, 1, 2].map(|i| p[i].as_bool().unwrap_or(false)),
            _ => [true; 3],
        };
        let positions = frames(&read_array(files, "positions")?, "positions", symbols.len())?
            .into_iter()
            .map(|rows| rows.into_iter().map(|r| [r[0], r[1], r[2]]).collect())
            .collect();
        let cells = if attrs.get("array|cells").is_some() {
            Some(
                frames(&read_array(files, "cells")?, "cells", 3)?
                    .into_iter()
                    .map(|rows| [rows[0], rows[1], rows[2]])
                    .collect(),
            )
        } else {
            None
        };
        Ok(Trajectory { numsteps, symbols, pbc, positions, cells })
    }

    /// `get_step_structure(index)`: the step as a StructureData (kinds named by their symbol).
    fn step_structure(&self, index: usize) -> Result<Structure, ExportError> {
        let positions = self.positions.get(index).ok_or_else(|| step_out_of_range("positions", index))?;
        let cell = match &self.cells {
            Some(cells) => *cells.get(index).ok_or_else(|| step_out_of_range("cells", index))?,
            // StructureData's default cell (`_DEFAULT_CELL`): all zeros, so the CIF has zero
            // lengths, NaN angles, and positions in the basis ASE completes it to.
            None => [[0.0; 3]; 3],
        };
        let mut kinds: Vec<Kind> = Vec::new();
        let mut sites = Vec::with_capacity(self.symbols.len());
        for (symbol, position) in self.symbols.iter().zip(positions) {
            if atomic_number(symbol).is_none() {
                return Err(invalid(format!("Unknown symbol: {symbol}")));
            }
            if !kinds.iter().any(|k| &k.name == symbol) {
                kinds.push(Kind {
                    name: symbol.clone(),
                    symbols: vec![symbol.clone()],
                    weights: vec![1.0],
                    mass: None,
                });
            }
            sites.push(Site { kind_name: symbol.clone(), position: *position });
        }
        Ok(Structure { cell, pbc: self.pbc, kinds, sites })
    }
}

fn step_out_of_range(array: &str, index: usize) -> ExportError {
    invalid(format!("index {index} is out of bounds for the `{array}` array of the trajectory"))
}

/// An array of shape `(steps, rows, 3)` as per-step lists of rows.
fn frames(array: &NpyArray, name: &str, rows: usize) -> Result<Vec<Vec<[f64; 3]>>, ExportError> {
    match array.shape.as_slice() {
        [steps, r, 3] if *r == rows && array.element_count() == steps * r * 3 => Ok((0..*steps)
            .map(|s| (0..rows).map(|i| [0, 1, 2].map(|c| array.get_f64((s * rows + i) * 3 + c))).collect())
            .collect()),
        shape => Err(invalid(format!("the `{name}` array has shape {shape:?}, expected (steps, {rows}, 3)"))),
    }
}

/// `_prepare_xsf()`: `ANIMSTEPS`, then per step its cell (`%18.5f`) and its atoms (atomic
/// number, `%18.10f` coordinates).
fn xsf(t: &Trajectory) -> Result<String, ExportError> {
    // The reference checks the first step's structure once.
    let first = t.step_structure(0)?;
    if first.has_alloys_or_vacancies() {
        return Err(invalid("XSF for alloys or systems with vacancies not implemented."));
    }
    let cells = t.cells.as_ref().ok_or_else(|| invalid("No cell parameters have been supplied for TrajectoryData"))?;
    let numbers: Vec<usize> = t
        .symbols
        .iter()
        .map(|s| atomic_number(s).ok_or_else(|| invalid(format!("'{s}'"))))
        .collect::<Result<_, _>>()?;
    let mut out = format!("ANIMSTEPS {}\nCRYSTAL\n", t.numsteps);
    for idx in 0..t.numsteps {
        out.push_str(&format!("PRIMVEC {}\n", idx + 1));
        for row in cells.get(idx).ok_or_else(|| step_out_of_range("cells", idx))? {
            out.push_str(&format!("{:18.5} {:18.5} {:18.5}\n", row[0], row[1], row[2]));
        }
        out.push_str(&format!("PRIMCOORD {}\n{} 1\n", idx + 1, t.symbols.len()));
        let positions = t.positions.get(idx).ok_or_else(|| step_out_of_range("positions", idx))?;
        for (z, p) in numbers.iter().zip(positions) {
            out.push_str(&format!("{z} {:18.10} {:18.10} {:18.10}\n", p[0], p[1], p[2]));
        }
    }
    Ok(out)
}

/// `_prepare_cif()`: the CIF of each step's structure, one after the other.
fn cif(t: &Trajectory) -> Result<String, ExportError> {
    let mut out = String::new();
    for idx in 0..t.numsteps {
        out.push_str(&structure::cif(&t.step_structure(idx)?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn water(cells: bool) -> Trajectory {
        let box_ = [[10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]];
        Trajectory {
            numsteps: 2,
            symbols: vec!["O".into(), "H".into(), "H".into()],
            pbc: [cells; 3],
            positions: vec![
                vec![[5.0, 5.0, 5.0], [5.757, 5.586, 5.0], [4.243, 5.586, 5.0]],
                vec![[5.0, 5.01, 5.0], [-0.0, 5.58, 5.02], [4.24, 5.59, 4.98]],
            ],
            cells: cells.then(|| vec![box_, box_]),
        }
    }

    #[test]
    fn xsf_frames() {
        let out = xsf(&water(true)).unwrap();
        assert!(out.starts_with(
            "ANIMSTEPS 2\nCRYSTAL\nPRIMVEC 1\n          10.00000            0.00000            0.00000\n"
        ));
        assert!(out.contains(
            "PRIMCOORD 2\n3 1\n8       5.0000000000       5.0100000000       5.0000000000\n1      -0.0000000000"
        ));
        assert_eq!(out.lines().count(), 2 + 2 * (1 + 3 + 2 + 3));
    }

    #[test]
    fn xsf_needs_cells_and_known_symbols() {
        let e = xsf(&water(false)).unwrap_err().to_string();
        assert_eq!(e, "No cell parameters have been supplied for TrajectoryData");
        let mut t = water(true);
        t.symbols[1] = "Hx".into();
        assert_eq!(xsf(&t).unwrap_err().to_string(), "Unknown symbol: Hx");
        let mut t = water(true);
        t.numsteps = 3;
        assert!(xsf(&t).unwrap_err().to_string().contains("index 2 is out of bounds"));
    }

    #[test]
    fn cif_blocks_per_step_without_cells_are_not_periodic() {
        let out = cif(&water(false)).unwrap();
        assert_eq!(out.matches("data_0").count(), 2);
        assert!(!out.contains("_symmetry_space_group_name_H-M"));
        assert!(out.contains("_cell_length_a                          0.0"));
        assert!(out.contains("_cell_angle_alpha                       nan"));
        // The completed zero cell is the identity: fractional equals Cartesian.
        assert!(out.contains("\n         O1        5.0       5.0       5.0       O "), "{out}");
        assert!(out.contains("\n         H1        5.757     5.586     5.0       H "), "{out}");
    }
}
