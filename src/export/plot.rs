//! The band-structure plot of the `mpl_png` and `mpl_pdf` downloads, drawn as aiida-core's
//! matplotlib script (`mpl_singlefile`) draws it with matplotlib's defaults: a 6.4 × 4.8 inch
//! figure (1920 × 1440 pixels at the 300 dpi of `mpl_png`), one axes at the default subplot
//! margins, the bands as black 0.5 pt lines (the second spin in red), grey 0.5 pt vertical grid
//! lines at the high-symmetry points, their labels as x tick labels, y ticks chosen as
//! matplotlib's `MaxNLocator` chooses them, and the y label with the units.
//!
//! The layout is computed once in points ([`Scene`]) and drawn twice: rasterized with
//! `tiny-skia` (lines) and `ab_glyph` (text) for PNG, and written as vector PDF with
//! `pdf-writer`. Text uses DejaVu Serif, the serif font matplotlib falls back to (the script
//! asks for Computer Modern first, which matplotlib does not ship), embedded in the binary as a
//! subset (Latin, Greek, the minus sign); no system font is looked up.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

use super::ExportError;

/// DejaVu Serif (Bitstream Vera license, `fonts/LICENSE_DEJAVU`), subset to Latin-1, Greek and
/// U+2212.
const FONT_DATA: &[u8] = include_bytes!("fonts/DejaVuSerif-subset.ttf");

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_DATA).expect("the embedded font parses")
}

/// The figure size in points (6.4 × 4.8 inches).
const WIDTH: f64 = 460.8;
const HEIGHT: f64 = 345.6;
/// The PNG resolution.
pub const DPI: f64 = 300.0;
/// matplotlib's default subplot margins (fractions of the figure).
const LEFT: f64 = 0.125;
const RIGHT: f64 = 0.9;
const BOTTOM: f64 = 0.11;
const TOP: f64 = 0.88;
const FONT_SIZE: f64 = 10.0;
const TICK_LENGTH: f64 = 3.5;
const TICK_WIDTH: f64 = 0.8;
const TICK_PAD: f64 = 3.5;
const LABEL_PAD: f64 = 4.0;
const SPINE_WIDTH: f64 = 0.8;
const GRID_GREY: [u8; 3] = [0x88, 0x88, 0x88];

/// What the plot shows: the data of the `mpl_singlefile` script.
pub struct PlotData {
    /// Per path segment: its x values and its bands (one list of values per band).
    pub paths: Vec<(Vec<f64>, Vec<Vec<f64>>)>,
    /// Per band, its type (even: first spin, odd: second spin).
    pub band_type_idx: Vec<i64>,
    /// The high-symmetry points: position and label (matplotlib mathtext, e.g. `$\Gamma$`).
    pub ticks: Vec<(f64, String)>,
    pub y_label: String,
    pub x_lim: (f64, f64),
    pub y_lim: (f64, f64),
}

/// A piece of text in one font size, raised (negative) or lowered (positive) from the baseline.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    text: String,
    size: f64,
    shift: f64,
}

#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// A polyline in points (origin top left), optionally clipped to the axes.
    Line { points: Vec<(f64, f64)>, width: f64, color: [u8; 3], clip: bool, butt: bool },
    /// Text whose baseline starts at `(x, y)`, running right, or upwards when `vertical`.
    Text { x: f64, y: f64, runs: Vec<Run>, vertical: bool },
}

/// The plot laid out in points.
struct Scene {
    items: Vec<Item>,
    /// The axes rectangle: left, top, right, bottom.
    axes: (f64, f64, f64, f64),
}

/// The PNG of the plot (`mpl_png`).
pub fn png(data: &PlotData) -> Result<Vec<u8>, ExportError> {
    let scene = layout(data)?;
    raster(&scene, DPI / 72.0)
}

/// The PDF of the plot (`mpl_pdf`).
pub fn pdf(data: &PlotData) -> Result<Vec<u8>, ExportError> {
    Ok(vector(&layout(data)?))
}

fn invalid(msg: impl Into<String>) -> ExportError {
    ExportError::Invalid(msg.into())
}

/// mathtext as the labels use it: `$\Gamma$`-style Greek capitals and `$_{x}$` subscripts,
/// `|` between coinciding labels; anything else is written as it is.
fn runs(label: &str, size: f64) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    let mut push = |text: &str, size: f64, shift: f64| {
        if text.is_empty() {
            return;
        }
        match out.last_mut() {
            Some(last) if last.size == size && last.shift == shift => last.text.push_str(text),
            _ => out.push(Run { text: text.to_string(), size, shift }),
        }
    };
    for (i, part) in label.split('$').enumerate() {
        if i % 2 == 0 {
            push(part, size, 0.0);
            continue;
        }
        let mut math = part.to_string();
        for (name, symbol) in [(r"\Gamma", "Γ"), (r"\Delta", "Δ"), (r"\Lambda", "Λ"), (r"\Sigma", "Σ")] {
            math = math.replace(name, symbol);
        }
        let mut rest = math.as_str();
        while let Some(start) = rest.find("_{") {
            push(&rest[..start], size, 0.0);
            let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
            push(&rest[start + 2..end], size * 0.7, size * 0.2);
            rest = rest.get(end + 1..).unwrap_or("");
        }
        push(rest, size, 0.0);
    }
    out
}

/// The width of text in points.
fn text_width(runs: &[Run]) -> f64 {
    let font = font();
    let upm = font.units_per_em().unwrap_or(2048.0) as f64;
    runs.iter()
        .map(|r| r.text.chars().map(|c| font.h_advance_unscaled(font.glyph_id(c)) as f64).sum::<f64>() * r.size / upm)
        .sum()
}

/// The height of the letter `l` above the baseline (matplotlib aligns text by the extent of
/// "lp"), in points.
fn ascent(size: f64) -> f64 {
    let font = font();
    let upm = font.units_per_em().unwrap_or(2048.0) as f64;
    let bounds =
        font.outline(font.glyph_id('l')).map(|o| o.bounds.min.y.max(o.bounds.max.y) as f64).unwrap_or(upm * 0.76);
    bounds * size / upm
}

/// The depth of the letter `p` below the baseline, in points.
fn descent(size: f64) -> f64 {
    let font = font();
    let upm = font.units_per_em().unwrap_or(2048.0) as f64;
    let bounds =
        font.outline(font.glyph_id('p')).map(|o| -(o.bounds.min.y.min(o.bounds.max.y)) as f64).unwrap_or(upm * 0.22);
    bounds * size / upm
}

/// `MaxNLocator(nbins=9, steps=[1, 2, 2.5, 5, 10])` (matplotlib's `AutoLocator` on an axes of
/// this height): the ticks inside `[lo, hi]`.
fn y_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi <= lo {
        return Vec::new();
    }
    let raw = (hi - lo) / 9.0;
    let scale = 10f64.powf(raw.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0, 20.0].map(|s| s * scale) {
        if step < raw * (1.0 - 1e-10) {
            continue;
        }
        let first = (lo / step - 1e-10).ceil() as i64;
        let last = (hi / step + 1e-10).floor() as i64;
        if last - first + 1 >= 2 {
            return (first..=last).map(|i| i as f64 * step).map(|v| if v == 0.0 { 0.0 } else { v }).collect();
        }
    }
    vec![lo, hi]
}

/// `ScalarFormatter`: as few decimals as tell the ticks apart, a Unicode minus.
fn tick_text(values: &[f64]) -> Vec<String> {
    let decimals = (0..=10)
        .find(|&d| {
            let f = 10f64.powi(d);
            values.iter().all(|v| ((v * f).round() / f - v).abs() <= 1e-9 * v.abs().max(1.0))
        })
        .unwrap_or(10) as usize;
    values
        .iter()
        .map(|v| {
            let s = format!("{:.*}", decimals, v);
            let s = if s.trim_start_matches(['-', '0', '.']).is_empty() {
                s.trim_start_matches('-').to_string()
            } else {
                s
            };
            s.replace('-', "\u{2212}")
        })
        .collect()
}

/// matplotlib's `nonsingular` for equal limits (one flat band, one k-point): widened by 5 %
/// (±0.05 around 0).
fn nonsingular((lo, hi): (f64, f64)) -> (f64, f64) {
    if lo != hi {
        (lo, hi)
    } else if lo == 0.0 {
        (-0.05, 0.05)
    } else {
        (lo - 0.05 * lo.abs(), hi + 0.05 * hi.abs())
    }
}

fn layout(data: &PlotData) -> Result<Scene, ExportError> {
    let (x0, x1) = (LEFT * WIDTH, RIGHT * WIDTH);
    let (top, bottom) = ((1.0 - TOP) * HEIGHT, (1.0 - BOTTOM) * HEIGHT);
    let (xmin, xmax) = nonsingular(data.x_lim);
    let (ymin, ymax) = nonsingular(data.y_lim);
    if ![xmin, xmax, ymin, ymax].iter().all(|v| v.is_finite()) || xmax <= xmin || ymax <= ymin {
        return Err(invalid(format!("cannot plot the range x {xmin}..{xmax}, y {ymin}..{ymax}")));
    }
    let px = |x: f64| x0 + (x - xmin) / (xmax - xmin) * (x1 - x0);
    let py = |y: f64| bottom - (y - ymin) / (ymax - ymin) * (bottom - top);
    let mut items = Vec::new();

    // Grid lines at the high-symmetry points (below the bands).
    for (pos, _) in &data.ticks {
        if (xmin..=xmax).contains(pos) {
            let x = px(*pos);
            items.push(Item::Line {
                points: vec![(x, top), (x, bottom)],
                width: 0.5,
                color: GRID_GREY,
                clip: true,
                butt: true,
            });
        }
    }
    // The bands: with one path (no labels) the script scatters `_` markers (6 pt wide, 1.5 pt
    // thick, matplotlib's first colour) at every point; otherwise it draws lines.
    if let [(xs, bands)] = data.paths.as_slice() {
        for band in bands {
            for (&x, &y) in xs.iter().zip(band).filter(|(x, y)| x.is_finite() && y.is_finite()) {
                let (cx, cy) = (px(x), py(y));
                items.push(Item::Line {
                    points: vec![(cx - 3.0, cy), (cx + 3.0, cy)],
                    width: 1.5,
                    color: [0x1f, 0x77, 0xb4],
                    clip: true,
                    butt: true,
                });
            }
        }
    }
    for (xs, bands) in data.paths.iter().filter(|_| data.paths.len() > 1) {
        // The script skips segments of one step (`length <= 1`): jumps between two labels.
        if xs.len() <= 2 {
            continue;
        }
        for (band, kind) in bands.iter().zip(data.band_type_idx.iter().chain(std::iter::repeat(&0))) {
            let color = if kind % 2 == 0 { [0, 0, 0] } else { [255, 0, 0] };
            // A NaN breaks the line, as in matplotlib.
            let mut points: Vec<(f64, f64)> = Vec::new();
            for (&x, &y) in xs.iter().zip(band).chain(std::iter::once((&f64::NAN, &f64::NAN))) {
                if x.is_finite() && y.is_finite() {
                    points.push((px(x), py(y)));
                } else if points.len() >= 2 {
                    items.push(Item::Line {
                        points: std::mem::take(&mut points),
                        width: 0.5,
                        color,
                        clip: true,
                        butt: false,
                    });
                } else {
                    points.clear();
                }
            }
        }
    }
    // Spines.
    for points in
        [[(x0, top), (x0, bottom)], [(x1, top), (x1, bottom)], [(x0, top), (x1, top)], [(x0, bottom), (x1, bottom)]]
    {
        items.push(Item::Line {
            points: points.to_vec(),
            width: SPINE_WIDTH,
            color: [0, 0, 0],
            clip: false,
            butt: false,
        });
    }
    // x ticks and their labels.
    let label_top = bottom + TICK_LENGTH + TICK_PAD;
    for (pos, label) in &data.ticks {
        if !(xmin..=xmax).contains(pos) {
            continue;
        }
        let x = px(*pos);
        items.push(Item::Line {
            points: vec![(x, bottom), (x, bottom + TICK_LENGTH)],
            width: TICK_WIDTH,
            color: [0, 0, 0],
            clip: false,
            butt: true,
        });
        let r = runs(label, FONT_SIZE);
        let w = text_width(&r);
        items.push(Item::Text { x: x - w / 2.0, y: label_top + ascent(FONT_SIZE), runs: r, vertical: false });
    }
    // y ticks and their labels.
    let ys = y_ticks(ymin, ymax);
    let mut labels_left = x0 - TICK_LENGTH;
    for (y, text) in ys.iter().zip(tick_text(&ys)) {
        let yy = py(*y);
        items.push(Item::Line {
            points: vec![(x0 - TICK_LENGTH, yy), (x0, yy)],
            width: TICK_WIDTH,
            color: [0, 0, 0],
            clip: false,
            butt: true,
        });
        let r = runs(&text, FONT_SIZE);
        let w = text_width(&r);
        let right = x0 - TICK_LENGTH - TICK_PAD;
        labels_left = labels_left.min(right - w);
        items.push(Item::Text { x: right - w, y: yy + ascent(FONT_SIZE) / 2.0, runs: r, vertical: false });
    }
    // The y label, rotated, its descent side `LABEL_PAD` left of the tick labels.
    let r = runs(&data.y_label, FONT_SIZE);
    let w = text_width(&r);
    let baseline = labels_left - LABEL_PAD - descent(FONT_SIZE);
    items.push(Item::Text { x: baseline, y: (top + bottom) / 2.0 + w / 2.0, runs: r, vertical: true });
    Ok(Scene { items, axes: (x0, top, x1, bottom) })
}

fn raster(scene: &Scene, scale: f64) -> Result<Vec<u8>, ExportError> {
    use tiny_skia::{FillRule, LineCap, LineJoin, Mask, Paint, PathBuilder, Pixmap, Rect, Stroke, Transform};
    let (w, h) = ((WIDTH * scale).round() as u32, (HEIGHT * scale).round() as u32);
    let mut pixmap = Pixmap::new(w, h).ok_or_else(|| invalid("cannot allocate the image"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    let (ax0, atop, ax1, abottom) = scene.axes;
    let mut clip = Mask::new(w, h).ok_or_else(|| invalid("cannot allocate the image"))?;
    if let Some(rect) =
        Rect::from_ltrb((ax0 * scale) as f32, (atop * scale) as f32, (ax1 * scale) as f32, (abottom * scale) as f32)
    {
        clip.fill_path(&PathBuilder::from_rect(rect), FillRule::Winding, false, Transform::identity());
    }
    let font = font();
    let upm = font.units_per_em().unwrap_or(2048.0) as f64;
    let height_units = font.height_unscaled() as f64;
    for item in &scene.items {
        match item {
            Item::Line { points, width, color, clip: clipped, butt } => {
                let mut pb = PathBuilder::new();
                pb.move_to((points[0].0 * scale) as f32, (points[0].1 * scale) as f32);
                for p in &points[1..] {
                    pb.line_to((p.0 * scale) as f32, (p.1 * scale) as f32);
                }
                let Some(path) = pb.finish() else { continue };
                let mut paint = Paint::default();
                paint.set_color_rgba8(color[0], color[1], color[2], 255);
                paint.anti_alias = true;
                let stroke = Stroke {
                    width: (width * scale) as f32,
                    line_cap: if *butt { LineCap::Butt } else { LineCap::Square },
                    line_join: LineJoin::Round,
                    ..Stroke::default()
                };
                pixmap.stroke_path(&path, &paint, &stroke, Transform::identity(), clipped.then_some(&clip));
            }
            Item::Text { x, y, runs, vertical } => {
                // Rasterize the line of text unrotated (baseline at `base` in a buffer), then
                // copy it onto the image, turned a quarter left when vertical.
                let size_px = runs.iter().map(|r| r.size).fold(0.0, f64::max) * scale;
                let pad = (size_px * 0.6).ceil() as i64;
                let base = (size_px * 1.1).ceil() as i64 + pad;
                let width_px = (text_width(runs) * scale).ceil() as i64 + 2 * pad;
                let height_px = base + pad * 2;
                let mut cover = vec![0f32; (width_px * height_px) as usize];
                let mut pen = pad as f64;
                for run in runs {
                    let px_scale = PxScale::from((run.size * scale * height_units / upm) as f32);
                    let scaled = font.as_scaled(px_scale);
                    for c in run.text.chars() {
                        let id = font.glyph_id(c);
                        let glyph = id.with_scale_and_position(
                            px_scale,
                            ab_glyph::point(pen as f32, (base as f64 + run.shift * scale) as f32),
                        );
                        if let Some(outlined) = font.outline_glyph(glyph) {
                            let b = outlined.px_bounds();
                            outlined.draw(|gx, gy, c| {
                                let (cx, cy) = (b.min.x as i64 + gx as i64, b.min.y as i64 + gy as i64);
                                if (0..width_px).contains(&cx) && (0..height_px).contains(&cy) {
                                    let cell = &mut cover[(cy * width_px + cx) as usize];
                                    *cell = (*cell + c).min(1.0);
                                }
                            });
                        }
                        pen += scaled.h_advance(id) as f64;
                    }
                }
                let (ox, oy) = ((x * scale).round() as i64, (y * scale).round() as i64);
                let pixels = pixmap.pixels_mut();
                for cy in 0..height_px {
                    for cx in 0..width_px {
                        let c = cover[(cy * width_px + cx) as usize];
                        if c <= 0.0 {
                            continue;
                        }
                        let (u, v) = (cx - pad, cy - base);
                        let (tx, ty) = if *vertical { (ox + v, oy - u) } else { (ox + u, oy + v) };
                        if !(0..w as i64).contains(&tx) || !(0..h as i64).contains(&ty) {
                            continue;
                        }
                        let p = &mut pixels[(ty * w as i64 + tx) as usize];
                        let mix = |old: u8| (old as f32 * (1.0 - c)).round() as u8;
                        *p = tiny_skia::PremultipliedColorU8::from_rgba(
                            mix(p.red()),
                            mix(p.green()),
                            mix(p.blue()),
                            255,
                        )
                        .unwrap_or(*p);
                    }
                }
            }
        }
    }
    pixmap.encode_png().map_err(|e| invalid(format!("PNG encoding failed: {e}")))
}

/// The byte of `c` in the PDF font's encoding (WinAnsi, plus the Greek capitals and the minus
/// sign at 128..=132).
fn pdf_code(c: char) -> u8 {
    match c {
        'Γ' => 128,
        'Δ' => 129,
        'Λ' => 130,
        'Σ' => 131,
        '\u{2212}' => 132,
        c if (' '..='~').contains(&c) => c as u8,
        _ => b'?',
    }
}

const PDF_EXTRA: [(u8, &str, char); 5] =
    [(128, "Gamma", 'Γ'), (129, "Delta", 'Δ'), (130, "Lambda", 'Λ'), (131, "Sigma", 'Σ'), (132, "minus", '\u{2212}')];

fn vector(scene: &Scene) -> Vec<u8> {
    use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, Str};
    let font = font();
    let upm = font.units_per_em().unwrap_or(2048.0);
    let (catalog, pages, page, content_id, font_id, descriptor_id, file_id) =
        (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5), Ref::new(6), Ref::new(7));
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    {
        let mut p = pdf.page(page);
        p.media_box(Rect::new(0.0, 0.0, WIDTH as f32, HEIGHT as f32)).parent(pages).contents(content_id);
        p.resources().fonts().pair(Name(b"F1"), font_id);
    }

    let y = |v: f64| (HEIGHT - v) as f32;
    let mut c = Content::new();
    let (ax0, atop, ax1, abottom) = scene.axes;
    for item in &scene.items {
        match item {
            Item::Line { points, width, color, clip, butt } => {
                c.save_state();
                if *clip {
                    c.rect(ax0 as f32, y(abottom), (ax1 - ax0) as f32, (abottom - atop) as f32);
                    c.clip_nonzero();
                    c.end_path();
                }
                c.set_line_width(*width as f32);
                c.set_line_cap(if *butt {
                    pdf_writer::types::LineCapStyle::ButtCap
                } else {
                    pdf_writer::types::LineCapStyle::ProjectingSquareCap
                });
                c.set_line_join(pdf_writer::types::LineJoinStyle::RoundJoin);
                c.set_stroke_rgb(color[0] as f32 / 255.0, color[1] as f32 / 255.0, color[2] as f32 / 255.0);
                c.move_to(points[0].0 as f32, y(points[0].1));
                for p in &points[1..] {
                    c.line_to(p.0 as f32, y(p.1));
                }
                c.stroke();
                c.restore_state();
            }
            Item::Text { x, y: base, runs, vertical } => {
                c.begin_text();
                c.set_fill_gray(0.0);
                let mut pen = 0.0;
                for run in runs {
                    let (dx, dy) = (pen, -run.shift);
                    let m = if *vertical {
                        [0.0, 1.0, -1.0, 0.0, (*x - dy) as f32, y(*base) + dx as f32]
                    } else {
                        [1.0, 0.0, 0.0, 1.0, (*x + dx) as f32, y(*base) + dy as f32]
                    };
                    c.set_text_matrix(m);
                    c.set_font(Name(b"F1"), run.size as f32);
                    let bytes: Vec<u8> = run.text.chars().map(pdf_code).collect();
                    c.show(Str(&bytes));
                    pen += text_width(std::slice::from_ref(run));
                }
                c.end_text();
            }
        }
    }
    pdf.stream(content_id, &c.finish());

    let width = |ch: char| font.h_advance_unscaled(font.glyph_id(ch)) / upm * 1000.0;
    let widths: Vec<f32> = (32u8..=132)
        .map(|code| match PDF_EXTRA.iter().find(|(k, _, _)| *k == code) {
            Some((_, _, ch)) => width(*ch),
            None if code <= 126 => width(code as char),
            None => 0.0,
        })
        .collect();
    {
        let mut f = pdf.indirect(font_id).dict();
        f.pair(Name(b"Type"), Name(b"Font"));
        f.pair(Name(b"Subtype"), Name(b"TrueType"));
        f.pair(Name(b"BaseFont"), Name(b"DejaVuSerif"));
        f.pair(Name(b"FirstChar"), 32);
        f.pair(Name(b"LastChar"), 132);
        f.insert(Name(b"Widths")).array().items(widths);
        f.pair(Name(b"FontDescriptor"), descriptor_id);
        let mut enc = f.insert(Name(b"Encoding")).dict();
        enc.pair(Name(b"Type"), Name(b"Encoding"));
        enc.pair(Name(b"BaseEncoding"), Name(b"WinAnsiEncoding"));
        let mut diff = enc.insert(Name(b"Differences")).array();
        diff.item(128);
        for (_, name, _) in PDF_EXTRA {
            diff.item(Name(name.as_bytes()));
        }
        diff.finish();
        enc.finish();
        f.finish();
    }
    let scale = |v: f32| v / upm * 1000.0;
    {
        let mut d = pdf.font_descriptor(descriptor_id);
        d.name(Name(b"DejaVuSerif"))
            .flags(pdf_writer::types::FontFlags::SERIF | pdf_writer::types::FontFlags::NON_SYMBOLIC)
            .bbox(Rect::new(-770.0, -347.0, 2105.0, 1109.0))
            .italic_angle(0.0)
            .ascent(scale(font.ascent_unscaled()))
            .descent(scale(font.descent_unscaled()))
            .cap_height(729.0)
            .stem_v(80.0)
            .font_file2(file_id);
    }
    let compressed = zlib_stored(FONT_DATA);
    let mut stream = pdf.stream(file_id, &compressed);
    stream.filter(Filter::FlateDecode);
    stream.pair(Name(b"Length1"), FONT_DATA.len() as i32);
    stream.finish();
    pdf.finish()
}

/// The font file as a zlib stream (stored blocks: no compressor needed, still valid Flate).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = data.chunks(65535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    // Adler-32 of the data.
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + byte as u32) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn y_ticks_as_matplotlib() {
        assert_eq!(y_ticks(-5.5, 4.0), vec![-4.0, -2.0, 0.0, 2.0, 4.0]);
        assert_eq!(y_ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(tick_text(&[-4.0, -2.0, 0.0, 2.0]), vec!["\u{2212}4", "\u{2212}2", "0", "2"]);
        assert_eq!(tick_text(&[-0.5, 0.0, 0.5]), vec!["\u{2212}0.5", "0.0", "0.5"]);
    }

    fn lines(data: &PlotData) -> Vec<Vec<(f64, f64)>> {
        layout(data)
            .unwrap()
            .items
            .into_iter()
            .filter_map(|i| match i {
                Item::Line { points, width: 0.5, clip: true, butt: false, .. } => Some(points),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn bands_break_at_nan_and_single_paths_scatter() {
        let two_paths = |band: Vec<f64>| PlotData {
            paths: vec![(vec![0.0, 1.0, 2.0, 3.0, 4.0], vec![band.clone()]), (vec![4.0, 5.0, 6.0], vec![vec![1.0; 3]])],
            band_type_idx: vec![0],
            ticks: vec![(0.0, "X".into())],
            y_label: "Dispersion (eV)".into(),
            x_lim: (0.0, 6.0),
            y_lim: (0.0, 2.0),
        };
        assert_eq!(lines(&two_paths(vec![0.0, 1.0, 2.0, 1.0, 0.0])).len(), 2);
        let broken = lines(&two_paths(vec![0.0, 1.0, f64::NAN, 1.0, 0.0]));
        assert_eq!(broken.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 3]);
        // One path: `_` markers (1.5 pt thick), no lines.
        let mut one = two_paths(vec![0.0, 1.0, 2.0, 1.0, 0.0]);
        one.paths.truncate(1);
        let scene = layout(&one).unwrap();
        assert!(lines(&one).is_empty());
        let markers = scene.items.iter().filter(|i| matches!(i, Item::Line { width, .. } if *width == 1.5)).count();
        assert_eq!(markers, 5);
        // Equal limits are widened as matplotlib does.
        assert_eq!(nonsingular((2.0, 2.0)), (1.9, 2.1));
        assert_eq!(nonsingular((0.0, 0.0)), (-0.05, 0.05));
    }

    #[test]
    fn mathtext_runs() {
        assert_eq!(runs(r"$\Gamma$", 10.0), vec![Run { text: "Γ".into(), size: 10.0, shift: 0.0 }]);
        let r = runs(r"K$_{1}$|X", 10.0);
        assert_eq!(r.len(), 3);
        assert_eq!(r[1], Run { text: "1".into(), size: 7.0, shift: 2.0 });
    }
}
