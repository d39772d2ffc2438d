//! BandsData: AiiDA's band-structure exporters (`BandsData._prepare_<format>` of aiida-core
//! 2.9.4) and the `/contents/derived_properties` of its REST translator.
//!
//! Every format starts from the same plot data (`_get_bandplot_data`): the bands with spins side
//! by side, and the x axis, i.e. the running length of the k-point path in Cartesian coordinates.
//! That length goes through `numpy.linalg.inv` (the reciprocal cell), a matrix product and vector
//! norms, all done by OpenBLAS in the reference, and its full `repr` appears in most formats, so
//! [`crate::model::linalg`] redoes those operations in the order and with the roundings of
//! OpenBLAS' kernels ([`Kernels::REFERENCE`]; the tests also check the AVX-512 family).

use serde_json::{Map, Value};

use super::array::{FILE_HEADER, Py, read_array};
use super::npy::NpyData;
use super::plot;
use super::{Export, ExportError, NodeFiles, NodeInfo};
use crate::model::linalg::{self, Kernels};
use crate::model::pyjson::python_float_str;
use crate::model::structure::mat3_of;

pub fn export(node: &NodeInfo, files: &dyn NodeFiles, format: &str) -> Result<Export, ExportError> {
    if matches!(format, "mpl_pdf" | "mpl_png") {
        let data = BandsPlot::load(node, files, Kernels::REFERENCE)?.plot_data()?;
        let content = if format == "mpl_png" { plot::png(&data)? } else { plot::pdf(&data)? };
        return Ok(Export { content, filename: None });
    }
    let text = render(node, files, format, Kernels::REFERENCE)?;
    Ok(Export { content: text.into_bytes(), filename: None })
}

/// `{"bands": <the json export without comments>}`, as `BandsDataTranslator` gives it.
pub fn derived_properties(node: &NodeInfo, files: &dyn NodeFiles) -> Result<Value, ExportError> {
    let plot = BandsPlot::load(node, files, Kernels::REFERENCE)?;
    let mut map = Map::new();
    map.insert("bands".to_string(), plot.json(false).to_value());
    Ok(Value::Object(map))
}

fn render(node: &NodeInfo, files: &dyn NodeFiles, format: &str, kernels: Kernels) -> Result<String, ExportError> {
    let plot = BandsPlot::load(node, files, kernels)?;
    match format {
        "json" => Ok(plot.json(true).dumps()),
        "dat_multicolumn" => Ok(plot.dat_multicolumn()),
        "dat_blocks" => Ok(plot.dat_blocks()),
        "agr" => plot.agr(),
        "agr_batch" => plot.agr_batch(),
        "gnuplot" => plot.gnuplot(),
        "mpl_singlefile" => plot.mpl(true),
        "mpl_withjson" => plot.mpl(false),
        _ => Err(ExportError::Unsupported(format.to_string())),
    }
}

fn invalid(msg: impl Into<String>) -> ExportError {
    ExportError::Invalid(msg.into())
}

/// `_get_bandplot_data(cartesian=True)` before prettifying: what every format is made of.
struct BandsPlot {
    uuid: String,
    label: String,
    /// `str(self.units)`.
    units: String,
    /// One row per k-point, the bands of all spins side by side (`plot_info['y']`).
    rows: Vec<Vec<f64>>,
    /// Columns of `rows` (its second dimension, also when there are no rows).
    ncols: usize,
    band_type_idx: Vec<i64>,
    two_band_types: bool,
    /// Path length at each k-point.
    x: Vec<f64>,
    /// `self.labels`: (k-point index, name).
    labels: Vec<(i64, String)>,
}

impl BandsPlot {
    fn load(node: &NodeInfo, files: &dyn NodeFiles, kernels: Kernels) -> Result<Self, ExportError> {
        let attrs = &node.attributes;
        let bands = read_array(files, "bands")?;
        let values = match &bands.data {
            NpyData::F64(v) => v,
            _ => return Err(invalid("the bands array is not an array of floats")),
        };
        let (rows, ncols, band_type_idx, two_band_types) = match *bands.shape.as_slice() {
            [nk, nb] => {
                let rows = (0..nk).map(|k| values[k * nb..(k + 1) * nb].to_vec()).collect();
                (rows, nb, vec![0; nb], false)
            }
            // numpy.concatenate(bands, axis=1): the spins side by side; the band types only ever
            // count two spins.
            [ns, nk, nb] => {
                let rows = (0..nk)
                    .map(|k| {
                        (0..ns).flat_map(|s| values[(s * nk + k) * nb..(s * nk + k + 1) * nb].iter().copied()).collect()
                    })
                    .collect();
                let types = std::iter::repeat_n(0, nb).chain(std::iter::repeat_n(1, nb)).collect();
                (rows, ns * nb, types, true)
            }
            _ => return Err(invalid("Unexpected shape of bands")),
        };

        let kpoints = read_array(files, "kpoints")?;
        let kpoints = match *kpoints.shape.as_slice() {
            [n, 3] => (0..n).map(|i| [0, 1, 2].map(|j| kpoints.get_f64(i * 3 + j))).collect::<Vec<_>>(),
            _ => return Err(invalid("the kpoints array is not a list of 3-vectors")),
        };
        // Without a `cell` attribute `get_kpoints(cartesian=True)` raises AttributeError, and
        // the reference measures the path in crystal coordinates instead; a cell that is there
        // but not a 3x3 matrix of numbers is refused.
        let cell = match attrs.get("cell") {
            None => None,
            Some(cell) => Some(mat3_of(cell).ok_or_else(|| invalid("the node has no valid cell"))?),
        };

        let labels: Vec<(i64, String)> = match (attrs.get("label_numbers"), attrs.get("labels")) {
            (Some(Value::Array(numbers)), Some(Value::Array(names))) => numbers
                .iter()
                .zip(names)
                .map(|(n, s)| {
                    let n = n.as_i64().filter(|&n| n >= 0 && (n as usize) < kpoints.len().max(1));
                    let n = n.ok_or_else(|| invalid("a label points outside the k-point list"))?;
                    Ok((n, s.as_str().map(str::to_string).unwrap_or_else(|| s.to_string())))
                })
                .collect::<Result<_, ExportError>>()?,
            _ => Vec::new(),
        };

        let x = path_lengths(cell.as_ref(), &kpoints, &labels, kernels)?;
        let units = match attrs.get("units") {
            Some(Value::String(s)) => s.clone(),
            None | Some(Value::Null) => "None".to_string(),
            Some(other) => other.to_string(),
        };
        Ok(BandsPlot {
            uuid: node.uuid.clone(),
            label: node.label.clone(),
            units,
            rows,
            ncols,
            band_type_idx,
            two_band_types,
            x,
            labels,
        })
    }

    fn all_values(&self) -> impl Iterator<Item = f64> + '_ {
        self.rows.iter().flatten().copied()
    }

    /// `bands.max()`/`bands.min()`: NaN wins; numpy refuses an empty array.
    fn bands_max_min(&self) -> Result<(f64, f64), ExportError> {
        let mut it = self.all_values();
        let first = it.next().ok_or_else(|| invalid("the bands array is empty"))?;
        Ok(it.fold((first, first), |(hi, lo), v| {
            if v.is_nan() || hi.is_nan() { (f64::NAN, f64::NAN) } else { (hi.max(v), lo.min(v)) }
        }))
    }

    /// `numpy.nanmax`/`numpy.nanmin` (NaN only when every value is NaN).
    fn bands_nanmax_nanmin(&self) -> Result<(f64, f64), ExportError> {
        if self.rows.iter().all(|r| r.is_empty()) {
            return Err(invalid("the bands array is empty"));
        }
        let finite_or_inf = self.all_values().filter(|v| !v.is_nan());
        Ok(finite_or_inf.fold((f64::NAN, f64::NAN), |(hi, lo), v| {
            (if hi.is_nan() { v } else { hi.max(v) }, if lo.is_nan() { v } else { lo.min(v) })
        }))
    }

    /// Python's `min(x)`, `max(x)` over the path lengths (never empty).
    fn x_min_max(&self) -> (f64, f64) {
        let mut it = self.x.iter().copied();
        let first = it.next().unwrap_or(0.0);
        it.fold((first, first), |(lo, hi), v| (if v < lo { v } else { lo }, if v > hi { v } else { hi }))
    }

    /// `prepare_header_comment`.
    fn header(&self, comment_char: &str) -> String {
        let mut lines: Vec<String> = FILE_HEADER.lines().map(str::to_string).collect();
        lines.push(String::new());
        lines.push(format!("Dumped from BandsData UUID={}", self.uuid));
        lines.push("\tpoints\tbands".to_string());
        lines.push(format!("\t{}\t{}", self.rows.len(), self.ncols));
        lines.push(String::new());
        lines.push("\tlabel\tpoint".to_string());
        for (pos, name) in self.raw_labels() {
            lines.push(format!("\t{name}\t{}", fmt8(pos)));
        }
        lines.iter().map(|l| format!("{comment_char} {l}")).collect::<Vec<_>>().join("\n")
    }

    /// The labels at their path length.
    fn raw_labels(&self) -> Vec<(f64, String)> {
        self.labels.iter().map(|(i, name)| (self.x[*i as usize], name.clone())).collect()
    }

    /// The tick labels of a plot format: prettified, and joined where they coincide.
    fn tick_labels(&self, style: Prettify) -> Vec<(f64, String)> {
        let pretty = self.raw_labels().into_iter().map(|(pos, name)| (pos, prettify(&name, style)));
        let mut joined: Vec<(f64, String)> = Vec::new();
        let mut previous: Option<f64> = None;
        for (pos, name) in pretty {
            match (previous, joined.last_mut()) {
                (Some(p), Some(last)) if (pos - p).abs() < 1.0e-6 => {
                    last.1.push('|');
                    last.1.push_str(&name);
                }
                _ => joined.push((pos, name)),
            }
            previous = Some(pos);
        }
        joined
    }

    /// The path split at the labels (`get_segments=True`): the `path` pairs and the `paths`.
    fn segments(&self) -> (Vec<Py>, Vec<Py>) {
        let mut path = Vec::new();
        let mut paths = Vec::new();
        let nk = self.rows.len() as i64;
        let mut segment = |from: i64, to: i64, from_label: &str, to_label: &str| {
            let rows = py_slice(self.rows.len(), from, to + 1);
            let values =
                (0..self.ncols).map(|c| Py::floats(&self.rows[rows.clone()].iter().map(|r| r[c]).collect::<Vec<_>>()));
            paths.push(Py::Dict(vec![
                ("length".into(), Py::Int(to - from)),
                ("from".into(), Py::str(from_label)),
                ("to".into(), Py::str(to_label)),
                ("values".into(), Py::List(values.collect())),
                ("x".into(), Py::floats(&self.x[py_slice(self.x.len(), from, to + 1)])),
                ("two_band_types".into(), Py::Bool(self.two_band_types)),
            ]));
        };
        if self.labels.len() > 1 {
            let mut labels = self.labels.clone();
            if labels[0].0 != 0 {
                labels.insert(0, (0, String::new()));
            }
            if labels[labels.len() - 1].0 != nk - 1 {
                labels.push((nk - 1, String::new()));
            }
            for pair in labels.windows(2) {
                let ((from, from_label), (to, to_label)) = (&pair[0], &pair[1]);
                // Two consecutive points are a jump in the path, not a segment to draw.
                if to - from > 1 {
                    path.push(Py::List(vec![Py::str(from_label), Py::str(to_label)]));
                }
                segment(*from, *to, from_label, to_label);
            }
        } else {
            segment(0, nk - 1, "0", "1");
            path.push(Py::List(vec![Py::str("0"), Py::str("1")]));
        }
        (path, paths)
    }

    /// `_prepare_json` (via `_get_band_segments`).
    fn json(&self, comments: bool) -> Py {
        let (path, paths) = self.segments();
        let mut dict = vec![
            ("label".to_string(), Py::str(&self.label)),
            ("path".to_string(), Py::List(path)),
            ("paths".to_string(), Py::List(paths)),
            ("original_uuid".to_string(), Py::str(&self.uuid)),
        ];
        if comments {
            dict.push(("comments".to_string(), Py::str(FILE_HEADER)));
        }
        Py::Dict(dict)
    }

    /// The (x, band) pairs of each band, as `zip(x, band)` pairs them.
    fn band_points(&self, column: usize) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.x.iter().zip(&self.rows).map(move |(&x, row)| (x, row[column]))
    }

    fn dat_multicolumn(&self) -> String {
        let mut lines = vec![self.header("#")];
        for (x, row) in self.x.iter().zip(&self.rows) {
            let fields: Vec<String> = std::iter::once(*x).chain(row.iter().copied()).map(fmt8).collect();
            lines.push(fields.join("\t"));
        }
        lines.join("\n") + "\n"
    }

    fn dat_blocks(&self) -> String {
        let mut lines = vec![self.header("#")];
        for c in 0..self.ncols {
            lines.extend(self.band_points(c).map(|(x, y)| format!("{}\t{}", fmt8(x), fmt8(y))));
            lines.extend([String::new(), String::new()]);
        }
        lines.join("\n")
    }

    /// `_prepare_agr_batch`: xmgrace batch commands reading the data from `_data.dat`.
    fn agr_batch(&self) -> Result<String, ExportError> {
        let (y_max, y_min) = self.bands_max_min()?;
        let (x_min, x_max) = self.x_min_max();
        let labels = self.tick_labels(Prettify::Agr);
        let mut lines = vec![
            self.header("#"),
            "READ XY \"_data.dat\"".to_string(),
            format!(
                "world {}, {}, {}, {}",
                python_float_str(x_min),
                python_float_str(y_min),
                python_float_str(x_max),
                python_float_str(y_max)
            ),
            "yaxis label \"Dispersion\"".to_string(),
            "xaxis  tick place both".to_string(),
            "xaxis  tick spec type both".to_string(),
            format!("xaxis  tick spec {}", labels.len()),
        ];
        for (i, (pos, name)) in labels.iter().enumerate() {
            lines.push(format!("xaxis  tick major {i}, {}", python_float_str(*pos)));
            lines.push(format!("xaxis  ticklabel {i}, \"{name}\""));
        }
        lines.extend(
            [
                "xaxis  tick major color 7",
                "xaxis  tick major grid on",
                "yaxis  tick minor ticks 3",
                "frame linewidth 1.0",
                "map font 4 to \"Helvetica\", \"Helvetica\"",
                "yaxis  label font 4",
                "xaxis  label font 4",
            ]
            .map(str::to_string),
        );
        for i in 0..self.ncols {
            lines.push(format!("s{i} line color 1"));
            lines.push(format!("s{i} linewidth 1"));
        }
        Ok(lines.join("\n") + "\n")
    }

    /// `_prepare_gnuplot`: a gnuplot script plotting `band_data.dat`.
    fn gnuplot(&self) -> Result<String, ExportError> {
        let (y_max, y_min) = self.bands_max_min()?;
        let (x_min, x_max) = self.x_min_max();
        let xtics: Vec<String> = self
            .tick_labels(Prettify::Gnuplot)
            .iter()
            .map(|(pos, name)| format!("\"{name}\" {}", python_float_str(*pos)))
            .collect();
        let mut lines = vec![
            self.header("# "),
            String::new(),
            GNUPLOT_PREAMBLE.to_string(),
            "set termopt enhanced".to_string(),
            "set encoding utf8".to_string(),
            format!("set xtics ({})", xtics.join(", ")),
            "unset key".to_string(),
            format!("set yrange [{}:{}]", python_float_str(y_min), python_float_str(y_max)),
            format!("set ylabel \"Dispersion ({})\"", self.units),
        ];
        if self.x.len() > 1 {
            lines.push(format!("set xrange [{}:{}]", python_float_str(x_min), python_float_str(x_max)));
            lines.push("set grid xtics lt 1 lc rgb \"#888888\"".to_string());
            lines.push("plot \"band_data.dat\" with l lc rgb \"#000000\"".to_string());
        } else {
            lines.push("set xrange [-1.0:1.0]".to_string());
            lines.push(
                "plot \"band_data.dat\" using ($1-0.25):($2):(0.5):(0) with vectors nohead lc rgb \"#000000\""
                    .to_string(),
            );
        }
        Ok(lines.join("\n") + "\n")
    }

    /// `_prepare_agr`: a complete xmgrace project.
    fn agr(&self) -> Result<String, ExportError> {
        let (y_max, y_min) = self.bands_max_min()?;
        let (x_min, x_max) = self.x_min_max();
        let span = y_max - y_min;
        // `10 ** int(math.log10(span))`: an int for exponents >= 0, a float below.
        if !(span > 0.0 && span.is_finite()) {
            return Err(invalid("cannot compute the y tick spacing: the bands span no finite range"));
        }
        let exponent = span.log10().trunc() as i32;
        let ytick_spacing = if exponent >= 0 {
            format!("1{}", "0".repeat(exponent as usize))
        } else {
            python_float_str(10f64.powf(f64::from(exponent)))
        };

        let labels = self.tick_labels(Prettify::Agr);
        let mut ticks = String::new();
        for (i, (pos, name)) in labels.iter().enumerate() {
            ticks.push_str(&agr_block([
                format!("@    xaxis  tick major {i}, {}", python_float_str(*pos)),
                format!("@    xaxis  ticklabel {i}, \"{name}\""),
            ]));
        }
        let xticks = agr_block([format!("@    xaxis  tick spec {}", labels.len()), ticks]);

        let sets: Vec<String> = (0..self.ncols)
            .map(|c| self.band_points(c).map(|(x, y)| format!("{}\t{}\n", fmt8(x), fmt8(y))).collect())
            .collect();
        let mut descriptions = String::new();
        for (i, (_, band_type)) in sets.iter().zip(&self.band_type_idx).enumerate() {
            let color = if band_type % 2 == 0 { "1" } else { "2" };
            descriptions.push_str(&agr_block(AGR_SET_LINES.iter().map(|l| {
                format!(
                    "@    s{i} {}",
                    l.replace("{color}", color).replace("{linewidth}", "2.0").replace("{legend}", "")
                )
            })));
        }

        let mut graph: Vec<String> = AGR_GRAPH_HEAD.iter().map(|l| l.to_string()).collect();
        graph[11] = format!(
            "@    world {}, {}, {}, {}",
            python_float_str(x_min),
            python_float_str(y_min),
            python_float_str(x_max),
            python_float_str(y_max)
        );
        graph[15] = "@    title \"\"".to_string();
        graph.extend(agr_axis("x", &AXIS_X));
        graph.push(xticks);
        let yaxis_label = format!("\"Dispersion ({})\"", self.units);
        let y_diffs = [yaxis_label.as_str(), "1.500000", &ytick_spacing, "1", "off", "1.250000", "none"];
        graph.extend(agr_axis("y", &y_diffs));
        graph.extend(AGR_GRAPH_TAIL.iter().map(|l| l.to_string()));
        graph.push(descriptions);
        let graphs = agr_block(graph);

        let blocks: Vec<String> = sets
            .iter()
            .enumerate()
            .map(|(i, set)| agr_block([format!("@target G0.S{i}"), "@type xy".into(), set.clone()]))
            .collect();

        let mut project = agr_project_head();
        project.push(graphs);
        project.push(blocks.join("&\n"));
        Ok(format!("{}\n{}", self.header("#"), agr_block(project)))
    }

    /// `_prepare_mpl_singlefile` (the plot data inline) and `_prepare_mpl_withjson` (the data in
    /// `_data.json`, a file the REST API does not return).
    /// What the `mpl_*` script plots (its `all_data`), for rendering here.
    fn plot_data(&self) -> Result<plot::PlotData, ExportError> {
        let (_, paths) = self.segments();
        let floats = |v: &Py| -> Vec<f64> {
            match v {
                Py::List(items) => items.iter().map(|i| if let Py::Float(x) = i { *x } else { f64::NAN }).collect(),
                _ => Vec::new(),
            }
        };
        let field = |path: &Py, key: &str| -> Option<Py> {
            match path {
                Py::Dict(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
                _ => None,
            }
        };
        let paths = paths
            .iter()
            .map(|path| {
                let x = field(path, "x").map(|v| floats(&v)).unwrap_or_default();
                let values = match field(path, "values") {
                    Some(Py::List(bands)) => bands.iter().map(floats).collect(),
                    _ => Vec::new(),
                };
                (x, values)
            })
            .collect();
        let (y_max, y_min) = self.bands_nanmax_nanmin()?;
        Ok(plot::PlotData {
            paths,
            band_type_idx: self.band_type_idx.clone(),
            ticks: self.tick_labels(Prettify::Latex),
            y_label: format!("Dispersion ({})", self.units),
            x_lim: self.x_min_max(),
            y_lim: (y_min, y_max),
        })
    }

    fn mpl(&self, inline: bool) -> Result<String, ExportError> {
        let (_, paths) = self.segments();
        let single_path = paths.len() == 1;
        let labels = self.tick_labels(Prettify::Latex);
        let (y_max, y_min) = self.bands_nanmax_nanmin()?;
        let (x_min, x_max) = self.x_min_max();
        let all_data = Py::Dict(vec![
            ("paths".into(), Py::List(paths)),
            ("band_type_idx".into(), Py::List(self.band_type_idx.iter().map(|&i| Py::Int(i)).collect())),
            ("tick_pos".into(), Py::List(labels.iter().map(|(pos, _)| Py::Float(*pos)).collect())),
            ("tick_labels".into(), Py::List(labels.iter().map(|(_, name)| Py::str(name)).collect())),
            ("legend_text".into(), Py::Null),
            ("legend_text2".into(), Py::Null),
            ("yaxis_label".into(), Py::Str(format!("Dispersion ({})", self.units))),
            ("title".into(), Py::str("")),
            ("comment".into(), Py::Str(self.header("#"))),
            ("x_min_lim".into(), Py::Float(x_min)),
            ("x_max_lim".into(), Py::Float(x_max)),
            ("y_min_lim".into(), Py::Float(y_min)),
            ("y_max_lim".into(), Py::Float(y_max)),
        ]);
        let mut script = String::from(MPL_HEADER);
        if inline {
            script.push_str("all_data_str = r\"\"\"");
            script.push_str(&all_data.dumps_indent(2));
            script.push_str("\"\"\"\n");
        } else {
            script.push_str("with open(\"_data.json\", encoding='utf8') as f:\n    all_data_str = f.read()\n");
        }
        script.push_str(MPL_BODY_START);
        script.push_str(if single_path { MPL_SINGLE_PATH } else { MPL_MULTI_PATH });
        script.push_str(MPL_BODY_END);
        script.push_str("pl.show()");
        Ok(script)
    }
}

/// Python's `seq[start:stop]` bounds for a sequence of `len` items.
fn py_slice(len: usize, start: i64, stop: i64) -> std::ops::Range<usize> {
    let clamp = |i: i64| {
        if i < 0 { (i + len as i64).max(0) as usize } else { (i as usize).min(len) }
    };
    let (a, b) = (clamp(start), clamp(stop));
    a..b.max(a)
}

/// Python's `'%.8f' % x`.
fn fmt8(x: f64) -> String {
    if x.is_finite() { format!("{x:.8}") } else { python_float_str(x) }
}

/// The label prettifiers of `aiida.common.utils.Prettifier` used by the exporters
/// (`agr_seekpath`, `gnuplot_seekpath`, `latex_seekpath`).
#[derive(Clone, Copy)]
enum Prettify {
    Agr,
    Gnuplot,
    Latex,
}

fn prettify(label: &str, style: Prettify) -> String {
    let (greek, before, after): ([&str; 4], &str, &str) = match style {
        Prettify::Agr => ([r"\xG\f{}", r"\xD\f{}", r"\xL\f{}", r"\xS\f{}"], r"\s", r"\N"),
        Prettify::Gnuplot => (["Γ", "Δ", "Λ", "Σ"], "_{", "}"),
        Prettify::Latex => ([r"$\Gamma$", r"$\Delta$", r"$\Lambda$", r"$\Sigma$"], "$_{", "}$"),
    };
    let mut label = label.to_string();
    for (name, symbol) in ["GAMMA", "DELTA", "LAMBDA", "SIGMA"].iter().zip(greek) {
        label = label.replace(name, symbol);
    }
    // re.sub(r'_(.?)', ...): the underscore and the character after it, unless a newline.
    let mut out = String::with_capacity(label.len());
    let mut chars = label.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '_' {
            out.push(c);
            continue;
        }
        out.push_str(before);
        if let Some(&next) = chars.peek()
            && next != '\n'
        {
            out.push(next);
            chars.next();
        }
        out.push_str(after);
    }
    out
}

/// The x axis: the running length of the path through the Cartesian k-points, restarting nowhere
/// but adding nothing between two consecutive labelled points (a jump in the path). Without a
/// cell, the path through the k-points as stored (crystal coordinates), as the reference does.
fn path_lengths(
    cell: Option<&[[f64; 3]; 3]>,
    kpoints: &[[f64; 3]],
    labels: &[(i64, String)],
    k: Kernels,
) -> Result<Vec<f64>, ExportError> {
    let cartesian = match cell {
        Some(cell) => {
            let rec = k.reciprocal_cell(cell).ok_or_else(|| invalid("the cell is singular: Singular matrix"))?;
            linalg::matmul(kpoints, &rec)
        }
        None => kpoints.to_vec(),
    };
    let labelled = |i: usize| labels.iter().any(|(n, _)| *n == i as i64);
    let mut x = vec![0.0];
    let mut total = 0.0;
    for i in 1..cartesian.len() {
        let d = if labelled(i) && labelled(i - 1) {
            0.0
        } else {
            let v: [f64; 3] = std::array::from_fn(|c| cartesian[i][c] - cartesian[i - 1][c]);
            k.norm(&v)
        };
        total += d;
        x.push(total);
    }
    Ok(x)
}

/// A `string.Template` body of the xmgrace templates: a newline, each line indented by four
/// spaces, and four trailing spaces (a substituted block carries its own indentation).
fn agr_block<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> String {
    let mut out = String::from("\n");
    for line in lines {
        out.push_str("    ");
        out.push_str(line.as_ref());
        out.push('\n');
    }
    out.push_str("    ");
    out
}

/// The project lines before the graph: page setup, font and colour maps, defaults, regions.
fn agr_project_head() -> Vec<String> {
    let mut lines: Vec<String> = [
        "# Grace project file",
        "#",
        "@version 50122",
        "@page size 792, 612",
        "@page scroll 5%",
        "@page inout 5%",
        "@link page off",
    ]
    .map(str::to_string)
    .to_vec();
    lines.extend(AGR_FONTS.iter().map(|(n, name)| format!("@map font {n} to \"{name}\", \"{name}\"")));
    lines.extend(
        AGR_COLORS
            .iter()
            .enumerate()
            .map(|(n, (rgb, name))| format!("@map color {n} to ({}, {}, {}), \"{name}\"", rgb[0], rgb[1], rgb[2])),
    );
    lines.extend(AGR_DEFAULTS.iter().map(|l| l.to_string()));
    for r in 0..5 {
        lines.extend([
            format!("@r{r} off"),
            format!("@link r{r} to g0"),
            format!("@r{r} type above"),
            format!("@r{r} linestyle 1"),
            format!("@r{r} linewidth 1.0"),
            format!("@r{r} color 1"),
            format!("@r{r} line 0, 0, 0, 0"),
        ]);
    }
    lines
}

/// The axis section of the graph; `diffs` fills the `{0}`..`{6}` slots of [`AGR_AXIS_LINES`].
fn agr_axis(axis: &str, diffs: &[&str; 7]) -> Vec<String> {
    AGR_AXIS_LINES
        .iter()
        .map(|l| {
            let mut l = format!("@    {axis}axis  {l}");
            for (i, d) in diffs.iter().enumerate() {
                l = l.replace(&format!("{{{i}}}"), d);
            }
            l
        })
        .collect()
}

const AGR_FONTS: [(u8, &str); 44] = [
    (8, "Courier"),
    (10, "Courier-Bold"),
    (11, "Courier-BoldOblique"),
    (9, "Courier-Oblique"),
    (4, "Helvetica"),
    (6, "Helvetica-Bold"),
    (7, "Helvetica-BoldOblique"),
    (5, "Helvetica-Oblique"),
    (14, "NimbusMonoL-BoldOblique"),
    (15, "NimbusMonoL-Regular"),
    (16, "NimbusMonoL-RegularOblique"),
    (17, "NimbusRomanNo9L-Medium"),
    (18, "NimbusRomanNo9L-MediumItalic"),
    (19, "NimbusRomanNo9L-Regular"),
    (20, "NimbusRomanNo9L-RegularItalic"),
    (21, "NimbusSansL-Bold"),
    (22, "NimbusSansL-BoldCondensed"),
    (23, "NimbusSansL-BoldCondensedItalic"),
    (24, "NimbusSansL-BoldItalic"),
    (25, "NimbusSansL-Regular"),
    (26, "NimbusSansL-RegularCondensed"),
    (27, "NimbusSansL-RegularCondensedItalic"),
    (28, "NimbusSansL-RegularItalic"),
    (29, "StandardSymbolsL-Regular"),
    (12, "Symbol"),
    (31, "Symbol-Regular"),
    (2, "Times-Bold"),
    (3, "Times-BoldItalic"),
    (1, "Times-Italic"),
    (0, "Times-Roman"),
    (36, "URWBookmanL-DemiBold"),
    (37, "URWBookmanL-DemiBoldItalic"),
    (38, "URWBookmanL-Light"),
    (39, "URWBookmanL-LightItalic"),
    (40, "URWChanceryL-MediumItalic"),
    (41, "URWGothicL-Book"),
    (42, "URWGothicL-BookOblique"),
    (43, "URWGothicL-Demi"),
    (44, "URWGothicL-DemiOblique"),
    (45, "URWPalladioL-Bold"),
    (46, "URWPalladioL-BoldItalic"),
    (47, "URWPalladioL-Italic"),
    (48, "URWPalladioL-Roman"),
    (13, "ZapfDingbats"),
];

const AGR_COLORS: [([u8; 3], &str); 16] = [
    ([255, 255, 255], "white"),
    ([0, 0, 0], "black"),
    ([255, 0, 0], "red"),
    ([0, 255, 0], "green"),
    ([0, 0, 255], "blue"),
    ([255, 215, 0], "yellow"),
    ([188, 143, 143], "brown"),
    ([220, 220, 220], "grey"),
    ([148, 0, 211], "violet"),
    ([0, 255, 255], "cyan"),
    ([255, 0, 255], "magenta"),
    ([255, 165, 0], "orange"),
    ([114, 33, 188], "indigo"),
    ([103, 7, 72], "maroon"),
    ([64, 224, 208], "turquoise"),
    ([0, 139, 0], "green4"),
];

const AGR_DEFAULTS: [&str; 20] = [
    "@reference date 0",
    "@date wrap off",
    "@date wrap year 1950",
    "@default linewidth 1.0",
    "@default linestyle 1",
    "@default color 1",
    "@default pattern 1",
    "@default font 0",
    "@default char size 1.000000",
    "@default symbol size 1.000000",
    "@default sformat \"%.8g\"",
    "@background color 0",
    "@page background fill on",
    "@timestamp off",
    "@timestamp 0.03, 0.03",
    "@timestamp color 1",
    "@timestamp rot 0",
    "@timestamp font 0",
    "@timestamp char size 1.000000",
    "@timestamp def \"Wed Jul 30 16:44:34 2014\"",
];

/// Graph lines up to the axes; `world` (11) and `title` (15) are filled in.
const AGR_GRAPH_HEAD: [&str; 27] = [
    "@g0 on",
    "@g0 hidden false",
    "@g0 type XY",
    "@g0 stacked false",
    "@g0 bar hgap 0.000000",
    "@g0 fixedpoint off",
    "@g0 fixedpoint type 0",
    "@g0 fixedpoint xy 0.000000, 0.000000",
    "@g0 fixedpoint format general general",
    "@g0 fixedpoint prec 6, 6",
    "@with g0",
    "world",
    "@    stack world 0, 0, 0, 0",
    "@    znorm 1",
    "@    view 0.150000, 0.150000, 1.150000, 0.850000",
    "title",
    "@    title font 0",
    "@    title size 1.500000",
    "@    title color 1",
    "@    subtitle \"\"",
    "@    subtitle font 0",
    "@    subtitle size 1.000000",
    "@    subtitle color 1",
    "@    xaxes scale Normal",
    "@    yaxes scale Normal",
    "@    xaxes invert off",
    "@    yaxes invert off",
];

/// One axis; the x and y axes differ in the numbered slots (label, label size, major tick,
/// minor ticks, grid, tick label size, tick spec type).
const AGR_AXIS_LINES: [&str; 51] = [
    "on",
    "type zero false",
    "offset 0.000000 , 0.000000",
    "bar on",
    "bar color 1",
    "bar linestyle 1",
    "bar linewidth 1.0",
    "label {0}",
    "label layout para",
    "label place auto",
    "label char size {1}",
    "label font 4",
    "label color 1",
    "label place normal",
    "tick on",
    "tick major {2}",
    "tick minor ticks {3}",
    "tick default 6",
    "tick place rounded true",
    "tick in",
    "tick major size 1.000000",
    "tick major color 1",
    "tick major linewidth 1.0",
    "tick major linestyle 1",
    "tick major grid {4}",
    "tick minor color 1",
    "tick minor linewidth 1.0",
    "tick minor linestyle 1",
    "tick minor grid off",
    "tick minor size 0.500000",
    "ticklabel on",
    "ticklabel format general",
    "ticklabel prec 5",
    "ticklabel formula \"\"",
    "ticklabel append \"\"",
    "ticklabel prepend \"\"",
    "ticklabel angle 0",
    "ticklabel skip 0",
    "ticklabel stagger 0",
    "ticklabel place normal",
    "ticklabel offset auto",
    "ticklabel offset 0.000000 , 0.010000",
    "ticklabel start type auto",
    "ticklabel start 0.000000",
    "ticklabel stop type auto",
    "ticklabel stop 0.000000",
    "ticklabel char size {5}",
    "ticklabel font 4",
    "ticklabel color 1",
    "tick place both",
    "tick spec type {6}",
];

const AXIS_X: [&str; 7] = ["\"\"", "1.000000", "5", "0", "on", "1.500000", "both"];

const AGR_GRAPH_TAIL: [&str; 25] = [
    "@    altxaxis  off",
    "@    altyaxis  off",
    "@    legend on",
    "@    legend loctype view",
    "@    legend 0.85, 0.8",
    "@    legend box color 1",
    "@    legend box pattern 1",
    "@    legend box linewidth 1.0",
    "@    legend box linestyle 1",
    "@    legend box fill color 0",
    "@    legend box fill pattern 1",
    "@    legend font 0",
    "@    legend char size 1.000000",
    "@    legend color 1",
    "@    legend length 4",
    "@    legend vgap 1",
    "@    legend hgap 1",
    "@    legend invert false",
    "@    frame type 0",
    "@    frame linestyle 1",
    "@    frame linewidth 1.0",
    "@    frame color 1",
    "@    frame pattern 1",
    "@    frame background color 0",
    "@    frame background pattern 0",
];

/// The description of one data set, after `@    s<n> `.
const AGR_SET_LINES: [&str; 49] = [
    "hidden false",
    "type xy",
    "symbol 0",
    "symbol size 1.000000",
    "symbol color {color}",
    "symbol pattern 1",
    "symbol fill color {color}",
    "symbol fill pattern 0",
    "symbol linewidth 1.0",
    "symbol linestyle 1",
    "symbol char 65",
    "symbol char font 0",
    "symbol skip 0",
    "line type 1",
    "line linestyle 1",
    "line linewidth {linewidth}",
    "line color {color}",
    "line pattern 1",
    "baseline type 0",
    "baseline off",
    "dropline off",
    "fill type 0",
    "fill rule 0",
    "fill color {color}",
    "fill pattern 1",
    "avalue off",
    "avalue type 2",
    "avalue char size 1.000000",
    "avalue font 0",
    "avalue color 1",
    "avalue rot 0",
    "avalue format general",
    "avalue prec 3",
    "avalue prepend \"\"",
    "avalue append \"\"",
    "avalue offset 0.000000 , 0.000000",
    "errorbar on",
    "errorbar place both",
    "errorbar color {color}",
    "errorbar pattern 1",
    "errorbar size 1.000000",
    "errorbar linewidth 1.0",
    "errorbar linestyle 1",
    "errorbar riser linewidth 1.0",
    "errorbar riser linestyle 1",
    "errorbar riser clip off",
    "errorbar riser clip length 0.100000",
    "comment \"Cols 1:2\"",
    "legend \"{legend}\"",
];

const GNUPLOT_PREAMBLE: &str = "## Uncomment the next two lines to write directly to PDF
## Note: You need to have gnuplot installed with pdfcairo support!
#set term pdfcairo
#set output 'out.pdf'

### Uncomment one of the options below to change font
### For the LaTeX fonts, you can download them from here:
### https://sourceforge.net/projects/cm-unicode/
### And then install them in your system
## LaTeX Serif font, if installed
#set termopt font \"CMU Serif, 12\"
## LaTeX Sans Serif font, if installed
#set termopt font \"CMU Sans Serif, 12\"
## Classical Times New Roman
#set termopt font \"Times New Roman, 12\"
";

const MPL_HEADER: &str = r#"# -*- coding: utf-8 -*-

from matplotlib import rc
# Uncomment to change default font
#rc('font',**{'family':'sans-serif','sans-serif':['Helvetica']})
rc('font', **{'family': 'serif', 'serif': ['Computer Modern', 'CMU Serif', 'Times New Roman', 'DejaVu Serif']})
# To use proper font for, e.g., Gamma if usetex is set to False
rc('mathtext', fontset='cm')

rc('text', usetex=True)

import pylab as pl

# I use json to make sure the input is sanitized
import json

print_comment = False
"#;

const MPL_BODY_START: &str = r#"all_data = json.loads(all_data_str)

if not all_data.get('use_latex', False):
    rc('text', usetex=False)

#x = all_data['x']
#bands = all_data['bands']
paths = all_data['paths']
tick_pos = all_data['tick_pos']
tick_labels = all_data['tick_labels']

# Option for bands (all, or those of type 1 if there are two spins)
further_plot_options1 = {}
further_plot_options1['color'] = all_data.get('bands_color', 'k')
further_plot_options1['linewidth'] = all_data.get('bands_linewidth', 0.5)
further_plot_options1['linestyle'] = all_data.get('bands_linestyle', None)
further_plot_options1['marker'] = all_data.get('bands_marker', None)
further_plot_options1['markersize'] = all_data.get('bands_markersize', None)
further_plot_options1['markeredgecolor'] = all_data.get('bands_markeredgecolor', None)
further_plot_options1['markeredgewidth'] = all_data.get('bands_markeredgewidth', None)
further_plot_options1['markerfacecolor'] = all_data.get('bands_markerfacecolor', None)

# Options for second-type of bands if present (e.g. spin up vs. spin down)
further_plot_options2 = {}
further_plot_options2['color'] = all_data.get('bands_color2', 'r')
# Use the values of further_plot_options1 by default
further_plot_options2['linewidth'] = all_data.get('bands_linewidth2',
    further_plot_options1['linewidth']
    )
further_plot_options2['linestyle'] = all_data.get('bands_linestyle2',
    further_plot_options1['linestyle']
    )
further_plot_options2['marker'] = all_data.get('bands_marker2',
    further_plot_options1['marker']
    )
further_plot_options2['markersize'] = all_data.get('bands_markersize2',
    further_plot_options1['markersize']
    )
further_plot_options2['markeredgecolor'] = all_data.get('bands_markeredgecolor2',
    further_plot_options1['markeredgecolor']
    )
further_plot_options2['markeredgewidth'] = all_data.get('bands_markeredgewidth2',
    further_plot_options1['markeredgewidth']
    )
further_plot_options2['markerfacecolor'] = all_data.get('bands_markerfacecolor2',
    further_plot_options1['markerfacecolor']
    )

fig = pl.figure()
p = fig.add_subplot(1,1,1)

first_band_1 = True
first_band_2 = True

"#;

const MPL_BODY_END: &str = r#"

p.set_xticks(tick_pos)
p.set_xticklabels(tick_labels)
p.set_xlim([all_data['x_min_lim'], all_data['x_max_lim']])
p.set_ylim([all_data['y_min_lim'], all_data['y_max_lim']])
p.xaxis.grid(True, which='major', color='#888888', linestyle='-', linewidth=0.5)

if all_data.get('plot_zero_axis', False):
    p.axhline(
        0.,
        color=all_data.get('zero_axis_color', '#888888'),
        linestyle=all_data.get('zero_axis_linestyle', '--'),
        linewidth=all_data.get('zero_axis_linewidth', 0.5),
        )
if all_data['title']:
    p.set_title(all_data['title'])
if all_data['legend_text']:
    p.legend(loc='best')
p.set_ylabel(all_data['yaxis_label'])

try:
    if print_comment:
        print(all_data['comment'])
except KeyError:
    pass
"#;

const MPL_MULTI_PATH: &str = r#"
for path in paths:
    if path['length'] <= 1:
        # Avoid printing empty lines
        continue
    x = path['x']
    #for band in bands:
    for band, band_type in zip(path['values'], all_data['band_type_idx']):

        # For now we support only two colors
        if band_type % 2 == 0:
            further_plot_options = further_plot_options1
        else:
            further_plot_options = further_plot_options2

        # Put the legend text only once
        label = None
        if first_band_1 and band_type % 2 == 0:
            first_band_1 = False
            label = all_data.get('legend_text', None)
        elif first_band_2 and band_type % 2 == 1:
            first_band_2 = False
            label = all_data.get('legend_text2', None)

        p.plot(x, band, label=label,
               **further_plot_options
        )
"#;

const MPL_SINGLE_PATH: &str = r#"
path = paths[0]
values = path['values']
x = [path['x'] for _ in values]
p.scatter(x, values, marker="_")
"#;

#[cfg(test)]
mod tests {
    use super::super::array::testutil::{golden, golden_json, load, sha256_hex};
    use super::*;

    const C4C6: &str = "c4c6fd47-c05d-4fcc-bbd0-ecdc6eee6a52";
    const N401: &str = "401e895d-aa4e-49b2-bd5b-b4705e405f14";

    fn download_path(uuid: &str, format: &str) -> String {
        format!("/api/v4/nodes/{uuid}/download?download_format={format}")
    }

    #[test]
    fn downloads_match_the_recorded_answers() {
        for uuid in [C4C6, N401] {
            let (node, files) = load(uuid);
            for format in ["json", "dat_multicolumn", "dat_blocks", "agr", "agr_batch", "gnuplot"] {
                let out = export(&node, &files, format).unwrap();
                assert_eq!(out.filename, None);
                let (raw, sha) = golden(&download_path(uuid, format));
                if let Some(raw) = raw {
                    assert_eq!(
                        String::from_utf8(out.content.clone()).unwrap(),
                        String::from_utf8(raw).unwrap(),
                        "{uuid} {format}"
                    );
                }
                assert_eq!(sha256_hex(&out.content), sha, "{uuid} {format}");
            }
        }
    }

    #[test]
    fn derived_properties_match_the_recorded_answers() {
        for uuid in [C4C6, N401] {
            let (node, files) = load(uuid);
            let ours = derived_properties(&node, &files).unwrap();
            let theirs = golden_json(&format!("/api/v4/nodes/{uuid}/contents/derived_properties"));
            let theirs = &theirs["data"]["derived_properties"];
            assert_eq!(crate::model::pyjson::to_string(&ours), crate::model::pyjson::to_string(theirs), "{uuid}");
        }
    }

    /// The matplotlib scripts are not in the recorded answers. These hashes come from the
    /// reference (aiida-core 2.9.4) run with its OpenBLAS products replaced by a pure-Python
    /// emulation of the Haswell kernels, the same emulation that reproduces every recorded
    /// download above byte for byte.
    #[test]
    fn matplotlib_scripts_match_the_reference() {
        let expected = [
            (C4C6, "mpl_singlefile", "2df74c4f4d484a2a8a99deacba1e7f4f566f6ef5802c67991b4291a68d13406b"),
            (N401, "mpl_singlefile", "ed603d8bef1ddf8d1859060d3b2ed82b151e72c3bcd6be22cb43e778ec8fa227"),
            (C4C6, "mpl_withjson", "ed4d2f8d2a067e8f37917e7b1d1d413b4203cbbd3cf5d5ed04c421ada281f9f9"),
            (N401, "mpl_withjson", "ed4d2f8d2a067e8f37917e7b1d1d413b4203cbbd3cf5d5ed04c421ada281f9f9"),
        ];
        for (uuid, format, sha) in expected {
            let (node, files) = load(uuid);
            let out = export(&node, &files, format).unwrap();
            assert_eq!(sha256_hex(&out.content), sha, "{uuid} {format}");
        }
    }

    /// sha256 of the answers of the reference running on an AVX-512 host (OpenBLAS SkylakeX
    /// kernels): every format, with the other rounding of the path lengths.
    #[test]
    fn skylakex_kernels_match_the_reference_on_avx512() {
        let expected = [
            (C4C6, "json", "c926d99057c68a86a19551b167341155f50a71b8b26698d81cba8f9ba0d87382"),
            (N401, "json", "79079d654eca68d6bbbd69e83e149229a926975f254c2559c482cd0675660cd6"),
            (C4C6, "agr", "490a38a7a102aed8ba5443eb74736b751285a99adf1835456f53f3d8946d0664"),
            (N401, "agr", "a43cc05306471208685f54b19f89d83785940532af358666dd65a540755313b6"),
            (C4C6, "agr_batch", "cab08f22f58029b995f6f18d12a1f0f115227ec2210824b4fc1ce79a458fcc97"),
            (N401, "agr_batch", "3db42760b5ab1adbeda5b4f69fe94551bddcd37a813773225bb50f3774d9d501"),
            (C4C6, "gnuplot", "2d60588bd84bd1d06be4f3a42c153a3c2cdfcc65e00e9f5ae521459887083df7"),
            (N401, "gnuplot", "076aeddfd453817898925d05fff5c5a10164620a4669db730b8d670e79de94c2"),
            (C4C6, "mpl_singlefile", "f96d58ad1b3f659691513259a4299990c020ce4c4ed15099cfebd4a5ca879b37"),
            (N401, "mpl_singlefile", "5b3d3f0d65303f1c7644f2af6acdb08ff1304221ecee28c2d32aa257f3cd247f"),
            (N401, "dat_multicolumn", "cbcef95596d4101f8d39e30f5aea5bc6b36e5ba2eb00bac57027dd316e6d5928"),
            (N401, "dat_blocks", "bdf93ac34d14aeb2e91cf8b79a8129f26d1c21c82245f3e06e7eede3b93a0965"),
        ];
        for (uuid, format, sha) in expected {
            let (node, files) = load(uuid);
            let out = render(&node, &files, format, Kernels::SkylakeX).unwrap();
            assert_eq!(sha256_hex(out.as_bytes()), sha, "{uuid} {format}");
        }
    }

    /// A node built in memory, with its arrays as .npy files.
    struct MemFiles(Vec<(String, Vec<u8>)>);

    impl NodeFiles for MemFiles {
        fn read(&self, path: &str) -> Result<Vec<u8>, crate::storage::repository::RepoError> {
            let found = self.0.iter().find(|(p, _)| p == path);
            found.map(|(_, b)| b.clone()).ok_or_else(|| crate::storage::repository::RepoError::NotFound(path.into()))
        }
    }

    fn npy_f8(shape: &[usize], values: &[f64]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let dims = if dims.len() == 1 { format!("{},", dims[0]) } else { dims.join(", ") };
        let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({dims}), }}");
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.bytes());
        out.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        out
    }

    fn synthetic(
        uuid: &str,
        label: &str,
        attrs: Value,
        kpoints: &[f64],
        bands_shape: &[usize],
        bands: &[f64],
    ) -> (NodeInfo, MemFiles) {
        let node = NodeInfo {
            id: 1,
            uuid: uuid.into(),
            node_type: "data.core.array.bands.BandsData.".into(),
            process_type: None,
            label: label.into(),
            description: String::new(),
            attributes: attrs,
            attribute_keys: Vec::new(),
            computer_label: None,
        };
        let files = MemFiles(vec![
            ("kpoints.npy".into(), npy_f8(&[kpoints.len() / 3, 3], kpoints)),
            ("bands.npy".into(), npy_f8(bands_shape, bands)),
        ]);
        (node, files)
    }

    /// Nodes exercising the other branches (no labels, a single k-point, labels off the ends and
    /// on consecutive points), checked against the reference on an AVX-512 host: sha256 of
    /// `BandsData._exportcontent(format)[0]` for the same data built in aiida-core 2.9.4.
    #[test]
    fn synthetic_nodes_match_the_reference() {
        use serde_json::json;
        let formats =
            ["json", "dat_multicolumn", "dat_blocks", "agr", "agr_batch", "gnuplot", "mpl_singlefile", "mpl_withjson"];
        let a = synthetic(
            "ee7ba3d4-81d3-423b-9044-8d18687adf21",
            "synthetic A",
            json!({"cell": [[3.1, 0.2, 0.0], [0.4, 2.9, 0.1], [0.0, -0.3, 5.2]], "units": "eV"}),
            &[0.0, 0.0, 0.0, 0.1, 0.05, 0.0, 0.2, 0.1, 0.05, 0.3, 0.1, 0.1],
            &[4, 3],
            &[-1.5, 0.25, 3.75, -1.25, 0.5, 3.5, -1.0, 0.75, 3.0, -0.5, 1.0, 2.5],
        );
        let b = synthetic(
            "29e955c2-478e-45e4-b83b-5caa30c954b2",
            "synthetic B",
            json!({"cell": [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]], "units": "Ry",
                   "label_numbers": [0], "labels": ["GAMMA"]}),
            &[0.0, 0.0, 0.0],
            &[1, 2],
            &[-0.125, 0.0625],
        );
        let c = synthetic(
            "32ca8d37-5f09-41ee-9f99-6d03ceca73b9",
            "synthetic C",
            json!({"cell": [[0.0, 2.5, 2.5], [2.5, 0.0, 2.5], [2.5, 2.5, 0.1]], "units": "eV",
                   "label_numbers": [1, 2, 2, 3], "labels": ["X_1", "DELTA", "Y", "SIGMA_"]}),
            &[0.0, 0.0, 0.0, 0.25, 0.0, 0.0, 0.5, 0.0, 0.0, 0.5, 0.25, 0.0, 0.5, 0.5, 0.0],
            &[2, 5, 2],
            &[1.0, 2.0, 1.5, 2.5, 1.75, 2.25, 1.0, 2.0, 0.5, 3.0, 1.1, 2.1, 1.6, 2.6, 1.85, 2.35, 1.1, 2.1, 0.6, 3.1],
        );
        let expected: [(&(NodeInfo, MemFiles), [&str; 8]); 3] = [
            (
                &a,
                [
                    "f09bebfd69038a83e42421f7fd103a8697deab7bf143eb46c2adb9a2ccddd85c",
                    "3dd89aff2ad4030063a5b4bde3e3fcd4f660ef1c01c91d735832db355d7aad8c",
                    "3ffbe8bf478379d55c37c58c9eb8086f58e66d61b9bb30e66f49c18ceca4921d",
                    "c35de0677ab404f823eb55e487cfb13cf2918d3a57d061c7a3c193403623fd4b",
                    "a2d38544f5fcb05f2b1609666e93fc17efec49496d1bf8b41abb3d4f09a95e0c",
                    "46dea061bffbe868b6750ec4f1336c76ec6aae4b74538df2886052d8467b5e33",
                    "160c4337deb2e9c463457c25156424a700fbbb413421bcb8e435f09d6f728d36",
                    "00ad296ca3c6832e9422356c9dfc7f52ddb68bbeaf2c3fc61ccebbe78d021ad8",
                ],
            ),
            (
                &b,
                [
                    "305d76c24060f0e65367a087136ab0ec5e09d2ac02b4f078de895b11dbc22e79",
                    "a2323e959f7c5ec5c96f7b85d6db43890ad324bed6c97b51d2bb7a501e508d9f",
                    "68c62b32113b301e6cf02f49915a3ca7c49ee05fc91f6ea9809ef2f017ebe6c6",
                    "73b4e9665e725f87c7aa5bfb4998bc1696cecfb02e4ac311e1f7fe94a2065870",
                    "d5edf5dd4990348ba1b4a7e090056d5c8df95b23e253d3ffb2b1465c430ebeb2",
                    "4201d5a0feb88600ae97e33e0184a031f4d46aba32e8528a8b47ceef214c32fa",
                    "b9ca2f1c85cc4ca16c369772cf99f103effc1383b42af70e8db5551de3af507f",
                    "00ad296ca3c6832e9422356c9dfc7f52ddb68bbeaf2c3fc61ccebbe78d021ad8",
                ],
            ),
            (
                &c,
                [
                    "d7f0db78012fc6fa01e87c46133683d06d3280375b5fbbe6c09130fc7f3349bd",
                    "d6ab9a3bb7f2806d5c2b325e16a7817054afb1acc05bf0ce7a316db72dbbbd9c",
                    "0c364bcf3cc09a4d2acc3b1242d2e0902efee32ea2181b8b930e6ba907b1a81a",
                    "386d3696460e9f9515f0ff3426fcb5b07262496a0535e41bf78a79279b3c0d04",
                    "e0d99822a4499d1a262089af462271851aaa172f70e92c3b1174f81f70a46b70",
                    "16d7aaf8efbda50c4dbe865ac4633862ec3059c5159fd91e84ac835492487e31",
                    "9d2cdd24dc368e7f9059dc91daa076549c534ca02743bdc6fca57dae6fe1f2ae",
                    "ed4d2f8d2a067e8f37917e7b1d1d413b4203cbbd3cf5d5ed04c421ada281f9f9",
                ],
            ),
        ];
        for ((node, files), hashes) in expected {
            for (format, sha) in formats.iter().zip(hashes) {
                let out = render(node, files, format, Kernels::SkylakeX).unwrap();
                assert_eq!(sha256_hex(out.as_bytes()), sha, "{} {format}:\n{out}", node.label);
            }
        }
    }

    #[test]
    fn rendered_plots() {
        let (node, files) = load(C4C6);
        let png = export(&node, &files, "mpl_png").unwrap().content;
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        let pdf = export(&node, &files, "mpl_pdf").unwrap().content;
        assert!(pdf.starts_with(b"%PDF-"));
    }

    /// Without a `cell` attribute the path is measured through the k-points as stored (the
    /// reference falls back to crystal coordinates); a `cell` that is there but null is refused.
    #[test]
    fn bands_without_a_cell_measure_the_path_in_crystal_coordinates() {
        use serde_json::json;
        let (node, files) = synthetic(
            "7d1c3a6e-2b8f-4c5d-9e0a-1f2b3c4d5e6f",
            "no cell",
            json!({"units": "eV", "label_numbers": [0, 2], "labels": ["G", "X"]}),
            &[0.0, 0.0, 0.0, 0.3, 0.4, 0.0, 0.3, 0.4, 1.2],
            &[3, 2],
            &[-1.0, 1.0, -0.5, 1.5, 0.0, 2.0],
        );
        let plot = BandsPlot::load(&node, &files, Kernels::REFERENCE).unwrap();
        assert_eq!(plot.x, vec![0.0, 0.5, 1.7]);
        assert_eq!(plot.raw_labels(), vec![(0.0, "G".to_string()), (1.7, "X".to_string())]);
        let json = render(&node, &files, "json", Kernels::REFERENCE).unwrap();
        assert!(json.contains("\"x\": [0.0, 0.5, 1.7]"), "{json}");
        for format in ["dat_multicolumn", "dat_blocks", "agr", "agr_batch", "gnuplot", "mpl_singlefile", "mpl_withjson"]
        {
            render(&node, &files, format, Kernels::REFERENCE).unwrap();
        }
        assert!(export(&node, &files, "mpl_png").unwrap().content.starts_with(b"\x89PNG"));
        assert!(export(&node, &files, "mpl_pdf").unwrap().content.starts_with(b"%PDF-"));
        assert!(derived_properties(&node, &files).is_ok());

        let (null_cell, files) = synthetic(
            "7d1c3a6e-2b8f-4c5d-9e0a-1f2b3c4d5e70",
            "null cell",
            json!({"cell": null}),
            &[0.0, 0.0, 0.0, 0.3, 0.4, 0.0],
            &[2, 1],
            &[-1.0, 1.0],
        );
        assert!(matches!(render(&null_cell, &files, "json", Kernels::REFERENCE), Err(ExportError::Invalid(_))));
    }

    #[test]
    fn prettifiers() {
        assert_eq!(prettify("GAMMA", Prettify::Agr), r"\xG\f{}");
        assert_eq!(prettify("SIGMA_0", Prettify::Agr), r"\xS\f{}\s0\N");
        assert_eq!(prettify("F_2", Prettify::Gnuplot), "F_{2}");
        assert_eq!(prettify("LAMBDA_", Prettify::Latex), r"$\Lambda$$_{}$");
        assert_eq!(prettify("A__b\n_\nc", Prettify::Gnuplot), "A_{_}b\n_{}\nc");
    }

    #[test]
    fn python_number_spelling() {
        assert_eq!(fmt8(-1e-10), "-0.00000000");
        assert_eq!(fmt8(-0.0), "-0.00000000");
        assert_eq!(fmt8(2.5e-9), "0.00000000");
        assert_eq!(fmt8(1.000000005), "1.00000000");
        assert_eq!(fmt8(f64::NAN), "nan");
        assert_eq!(fmt8(f64::NEG_INFINITY), "-inf");
        assert_eq!(python_float_str(1e16), "1e+16");
        assert_eq!(python_float_str(10f64.powf(-5.0)), "1e-05");
        assert_eq!(py_slice(5, 2, 10), 2..5);
        assert_eq!(py_slice(5, 4, 1), 4..4);
        assert_eq!(py_slice(0, -1, 0), 0..0);
    }
}
