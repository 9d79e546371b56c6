//! `--plot DIR`: one SVG chart per workload (plotters, SVG backend, no font files).
//!
//! A chart is a grouped bar chart: one group per thread count (or, for the many-VMA
//! workloads, per VMA count; for `shootdown`, per reader count) on the x axis, one bar
//! per series (variant, or variant and case for `translate` and `fault-churn`) side by
//! side, the height the aggregate
//! throughput in operations per second. The y axis turns logarithmic when the bars
//! differ by more than 20x, so a fast host row does not flatten softmm's. Skipped cells
//! are listed under the chart.

use std::path::{Path, PathBuf};

use plotters::{
    coord::Shift,
    prelude::*,
    style::text_anchor::{HPos, Pos, VPos},
};

use super::{
    HOST,
    report::{Report, ResultRow, count},
};

const W: u32 = 720;
const H: u32 = 420;

/// Bar colours: the host first, then softmm variants.
const COLOURS: [RGBColor; 6] = [
    RGBColor(110, 110, 110),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// One bar of a chart.
#[derive(Debug, Clone)]
struct Bar {
    series: String,
    /// Colour: by variant, lighter for each further case (translate's walk).
    colour: RGBColor,
    /// The x-axis group: "1 thread", "64k VMAs".
    group: String,
    /// Where the series goes in a group: (variant, case), so that the cases of one
    /// variant stand side by side.
    order: (usize, usize),
    value: f64,
}

/// The x-axis group of a row (and of a skipped cell).
fn group(threads: usize, vmas: Option<u64>) -> String {
    match (vmas, threads) {
        (Some(n), _) => format!("{} VMAs", count(n)),
        (None, 1) => "1 thread".to_string(),
        (None, n) => format!("{n} threads"),
    }
}

fn row_group(r: &ResultRow) -> String {
    match readers(r) {
        Some((_, "1")) => "1 reader".to_string(),
        Some((_, n)) => format!("{n} readers"),
        None => group(r.threads, r.vmas),
    }
}

/// A `shootdown` row's case, `kind/N`, split: the kind (a series) and the number of
/// readers (a group).
fn readers(r: &ResultRow) -> Option<(&str, &str)> {
    r.case.as_deref()?.split_once('/')
}

/// The case a row's series shows: its case, less the reader count of `shootdown`.
fn series_case(r: &ResultRow) -> Option<String> {
    match readers(r) {
        Some((kind, _)) => Some(kind.to_string()),
        None => r.case.clone(),
    }
}

/// Write `DIR/<workload>.svg` for every workload of `report`; returns the files.
pub fn write_plots(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let names = unique(report.results.iter().map(|r| r.workload.as_str()));
    let variants = unique(report.results.iter().map(|r| r.variant.as_str()));
    let mut files = Vec::new();
    for name in names {
        let rows = || report.results.iter().filter(|r| r.workload == name);
        let cases = unique(rows().map(series_case));
        let bars: Vec<Bar> = rows()
            .map(|r| {
                let v = variants.iter().position(|v| *v == r.variant).unwrap_or(0);
                let case = series_case(r);
                let c = cases.iter().position(|c| *c == case).unwrap_or(0);
                (r, v, c, case)
            })
            .map(|(r, v, c, case)| Bar {
                colour: colour(&r.variant, v, c),
                order: (v, c),
                series: match case {
                    Some(c) => format!("{} {c}", r.variant),
                    None => r.variant.clone(),
                },
                group: row_group(r),
                value: r.ops_per_s,
            })
            .collect();
        let notes: Vec<String> = report
            .skipped
            .iter()
            .filter(|k| k.workload == name)
            .map(|k| {
                format!(
                    "{} at {}: not run ({})",
                    k.variant,
                    group(k.threads, k.vmas),
                    k.reason
                )
            })
            .collect();
        let path = dir.join(format!("{name}.svg"));
        let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        {
            let root = SVGBackend::new(&path, (W, H)).into_drawing_area();
            chart(&root, name, &bars, &notes).map_err(|e| fail(&e))?;
            root.present().map_err(|e| fail(&e))?;
        }
        files.push(path);
    }
    Ok(files)
}

fn unique<T: PartialEq + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for i in items {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// The colour of variant number `v` (the host grey) in case number `case`.
fn colour(variant: &str, v: usize, case: usize) -> RGBColor {
    let base = if variant == HOST {
        COLOURS[0]
    } else {
        COLOURS[1 + v.saturating_sub(1) % (COLOURS.len() - 1)]
    };
    let t = (case as f64 * 0.45).min(0.8);
    let mix = |c: u8| (c as f64 + (255.0 - c as f64) * t) as u8;
    RGBColor(mix(base.0), mix(base.1), mix(base.2))
}

/// Three significant digits with an SI suffix: `1234567.0` → `1.23M`, `7e8` → `700M`.
fn si(v: f64) -> String {
    let (x, suffix) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let digits = match x.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    let text = format!("{x:.digits$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{suffix}")
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn chart(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    name: &str,
    bars: &[Bar],
    notes: &[String],
) -> DrawResult {
    root.fill(&WHITE)?;
    let (root, footer) = root.split_vertically(H - 16 * notes.len() as u32);
    let note_style = ("sans-serif", 12).into_font().color(&BLACK);
    for (i, n) in notes.iter().enumerate() {
        footer.draw(&Text::new(
            n.clone(),
            (12, 16 * i as i32),
            note_style.clone(),
        ))?;
    }
    let root = &root;
    let mut ordered: Vec<&Bar> = bars.iter().collect();
    ordered.sort_by_key(|b| b.order);
    let series = unique(ordered.iter().map(|b| b.series.clone()));
    let groups = unique(bars.iter().map(|b| b.group.clone()));
    let max = bars.iter().map(|b| b.value).fold(1.0, f64::max);
    let min = bars
        .iter()
        .map(|b| b.value)
        .filter(|&v| v > 0.0)
        .fold(max, f64::min);
    let log = max / min > 20.0;
    let (lo, hi) = if log {
        (min / 3.0, max * 3.0)
    } else {
        (0.0, max * 1.15)
    };
    let x = -0.5..groups.len() as f64 - 0.5;
    let what = match name {
        "fault-churn" => "faults/s of the faulting thread",
        "exit-many-vmas" => "VMAs torn down/s",
        _ => "operations/s, all threads",
    };
    let caption = format!("{name}: {what} (higher is better)");
    let mut b = ChartBuilder::on(root);
    b.caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64);
    let width = 0.8 / series.len() as f64;
    let bar_x = |g: usize, s: usize| g as f64 - 0.4 + s as f64 * width;
    if log {
        let mut c = b.build_cartesian_2d(x, (lo..hi).log_scale())?;
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|v| si(*v))
            .draw()?;
        draw_bars(&mut c, &series, &groups, bars, lo, width, bar_x)?;
        label_groups(root, &c, &groups, lo)?;
    } else {
        let mut c = b.build_cartesian_2d(x, lo..hi)?;
        c.configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_label_formatter(&|v| si(*v))
            .draw()?;
        draw_bars(&mut c, &series, &groups, bars, lo, width, bar_x)?;
        label_groups(root, &c, &groups, lo)?;
    }
    Ok(())
}

fn draw_bars<'a, Y>(
    c: &mut ChartContext<
        'a,
        SVGBackend<'a>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, Y>,
    >,
    series: &[String],
    groups: &[String],
    bars: &[Bar],
    floor: f64,
    width: f64,
    bar_x: impl Fn(usize, usize) -> f64,
) -> DrawResult
where
    Y: Ranged<ValueType = f64>,
{
    for (s, name) in series.iter().enumerate() {
        let colour = bars
            .iter()
            .find(|b| &b.series == name)
            .map_or(COLOURS[0], |b| b.colour);
        let mine: Vec<(usize, f64)> = bars
            .iter()
            .filter(|b| &b.series == name)
            .filter_map(|b| Some((groups.iter().position(|g| *g == b.group)?, b.value)))
            .collect();
        c.draw_series(mine.iter().map(|&(g, v)| {
            let x0 = bar_x(g, s);
            Rectangle::new(
                [(x0, floor), (x0 + width * 0.92, v.max(floor))],
                colour.filled(),
            )
        }))?
        .label(name.as_str())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        let text = ("sans-serif", 11)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        c.draw_series(mine.iter().map(|&(g, v)| {
            Text::new(
                si(v),
                (bar_x(g, s) + width * 0.46, v.max(floor)),
                text.clone(),
            )
        }))?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// The x-axis labels ("1 thread", "1M VMAs") under each group, in pixels on `root`.
fn label_groups<'a, Y>(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    c: &ChartContext<'a, SVGBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    groups: &[String],
    floor: f64,
) -> DrawResult
where
    Y: Ranged<ValueType = f64>,
{
    let style = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (g, label) in groups.iter().enumerate() {
        let (px, py) = c.backend_coord(&(g as f64, floor));
        root.draw(&Text::new(label.clone(), (px, py + 8), style.clone()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_keeps_three_digits() {
        assert_eq!(si(700e6), "700M");
        assert_eq!(si(1_234_567.0), "1.23M");
        assert_eq!(si(31_500.0), "31.5k");
        assert_eq!(si(2e9), "2G");
        assert_eq!(si(0.0), "0");
    }

    #[test]
    fn cases_get_lighter_shades_of_their_variant() {
        let hit = colour("Global", 1, 0);
        let walk = colour("Global", 1, 1);
        assert_eq!(hit, COLOURS[1]);
        assert!(walk.0 > hit.0 && walk.1 > hit.1 && walk.2 > hit.2);
        assert_eq!(colour(HOST, 0, 0), COLOURS[0]);
    }
}
