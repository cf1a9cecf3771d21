//! The plot: throughput and p99 latency of each system against the number of closed-loop
//! clients, both on log scales (the systems differ by orders of magnitude).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context as _, Result, anyhow, ensure};
use plotters::prelude::*;

use super::load::Mode;
use super::report::Row;
use super::systems::Kind;

/// Where a sans-serif TrueType font usually is (`OIH_BENCH_FONT` first).
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers a font from the system for the labels, once.
fn register_font() -> Result<()> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates = std::env::var("OIH_BENCH_FONT")
            .into_iter()
            .chain(FONTS.map(String::from));
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                // plotters keeps fonts for the life of the process.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                    .map_err(|_| format!("{path} is not a usable font"));
            }
        }
        Err(format!(
            "no TrueType font found (set OIH_BENCH_FONT; looked in {})",
            FONTS.join(", ")
        ))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// One system's points: (clients, req/s, p99 ms).
type Points = Vec<(f64, f64, f64)>;

fn series(rows: &[Row]) -> Vec<(Kind, Points)> {
    let mut out: Vec<(Kind, Points)> = Vec::new();
    for row in rows {
        let Mode::Closed { concurrency } = row.mode else {
            continue;
        };
        if row.ok == 0 || row.flows != 1 {
            continue;
        }
        let point = (concurrency as f64, row.per_sec(), row.ms(0.99));
        match out.iter_mut().find(|(k, _)| *k == row.system) {
            Some((_, points)) => points.push(point),
            None => out.push((row.system, vec![point])),
        }
    }
    for (_, points) in &mut out {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

pub fn draw(rows: &[Row], path: &Path) -> Result<()> {
    let data = series(rows);
    ensure!(!data.is_empty(), "no closed-loop results to plot");
    register_font()?;
    let root = BitMapBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    panel(&left, "Throughput (req/s)", &data, |p| p.1)?;
    panel(&right, "p99 latency (ms)", &data, |p| p.2)?;
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    data: &[(Kind, Points)],
    y: impl Fn(&(f64, f64, f64)) -> f64,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let all = || data.iter().flat_map(|(_, p)| p.iter());
    // Clients double from one load to the next: the x axis is log2(clients), labelled 1, 2, 4 …
    let x_max = all().map(|p| p.0.log2()).fold(0.0, f64::max) + 0.3;
    let (y_min, y_max) = decades(all().map(&y));
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.3f64..x_max, (y_min..y_max).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("concurrent clients (closed loop)")
        .x_labels(x_max.ceil() as usize + 1)
        .x_label_formatter(&|x| format!("{:.0}", x.exp2()))
        .y_label_formatter(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v}")
            }
        })
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (i, (kind, points)) in data.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let line: Vec<(f64, f64)> = points.iter().map(|p| (p.0.log2(), y(p))).collect();
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(kind.name())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(line.into_iter().map(|p| Circle::new(p, 3, color.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// Whole powers of ten around the values (at least one decade), so the log axis has labels.
fn decades(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.1, 10.0);
    }
    let (lo, hi) = (lo.log10().floor(), hi.log10().ceil());
    (
        10f64.powf(lo),
        10f64.powf(if hi > lo { hi } else { lo + 1.0 }),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::compare::load::Outcome;
    use crate::compare::procs::Usage;

    fn row(system: Kind, concurrency: usize, ok: u64, latency_us: u64) -> Row {
        let mut row = Row::new(system, 1, Mode::Closed { concurrency }).expect("row");
        let mut outcome = Outcome::empty().expect("outcome");
        outcome.ok = ok;
        outcome.elapsed = Duration::from_secs(1);
        outcome.latency_us.record(latency_us).expect("record");
        let usage = Usage {
            peak_rss_bytes: 1 << 20,
            cpu_seconds: 0.5,
        };
        row.add(&outcome, usage).expect("add");
        row
    }

    #[test]
    fn draws_a_png_of_every_system() {
        if let Err(e) = register_font() {
            eprintln!("skipping: {e}");
            return;
        }
        let rows = vec![
            row(Kind::Oih, 1, 2_000, 400),
            row(Kind::Oih, 4, 9_000, 900),
            row(Kind::NodeRed, 1, 1_500, 600),
            row(Kind::NodeRed, 4, 2_500, 2_000),
            row(Kind::N8n, 4, 10, 700_000),
        ];
        assert_eq!(series(&rows).len(), 3);
        let dir = tempfile::tempdir().expect("tempdir");
        let png = dir.path().join("plot.png");
        draw(&rows, &png).expect("draw");
        let bytes = std::fs::read(&png).expect("png written");
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    }

    #[test]
    fn log_axes_span_whole_decades() {
        assert_eq!(decades([250.0, 3_000.0].into_iter()), (100.0, 10_000.0));
        assert_eq!(decades([100.0].into_iter()), (100.0, 1_000.0));
        assert_eq!(decades(std::iter::empty()), (0.1, 10.0));
    }
}
