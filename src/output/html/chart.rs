//! SVG charts drawn with plotters' SVG backend: time charts on the run's clock (stages shaded
//! and named, events marked) and percentile spectra on a log 1/(1-p) axis.
//!
//! Text is emitted as SVG `<text>` and laid out by the browser; legends are HTML, drawn by the
//! page next to each chart (see [`legend`]), where they wrap and stay readable.

use plotters::prelude::*;
use plotters::style::text_anchor;

use super::escape;
use crate::record::results::StageInfo;

pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 300;

#[derive(Debug, thiserror::Error)]
#[error("chart could not be drawn: {0}")]
pub struct ChartError(String);

fn err(e: impl std::fmt::Display) -> ChartError {
    ChartError(e.to_string())
}

/// One series of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub width: u32,
    /// Drawn lighter and below the others: the baseline run.
    pub faint: bool,
    pub points: Vec<(f64, f64)>,
}

impl Line {
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Self {
        Line {
            label: label.into(),
            color,
            width: 2,
            faint: false,
            points,
        }
    }

    pub fn faint(mut self) -> Self {
        self.faint = true;
        self.width = 1;
        self
    }
}

/// Something that happened at a moment of the run (a scaling activity, a finding's start).
#[derive(Debug, Clone)]
pub struct Marker {
    pub t: f64,
    pub label: String,
}

/// What every time chart of one report shares, so they line up.
pub struct TimeAxis<'a> {
    pub x_max: f64,
    pub stages: &'a [StageInfo],
    pub markers: &'a [Marker],
}

/// Colours that stay apart from each other and from the stage shading.
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
];
pub const TARGET: RGBColor = RGBColor(140, 140, 140);
const STAGE_SHADE: RGBColor = RGBColor(238, 242, 248);
const STAGE_LINE: RGBColor = RGBColor(150, 160, 180);
const MARKER: RGBColor = RGBColor(200, 60, 160);

/// Seconds since the start as a clock: `45s`, `12:05`, `1:02:03`.
pub fn clock(t: f64) -> String {
    let t = t.max(0.0).round() as u64;
    let (h, m, s) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else if m > 0 {
        format!("{m}:{s:02}")
    } else {
        format!("{s}s")
    }
}

/// The run's time axis in seconds, ticked at round clock steps rather than decimal ones.
struct RunClock {
    x_max: f64,
    ticks: Vec<f64>,
}

impl RunClock {
    fn new(x_max: f64) -> Self {
        RunClock {
            x_max,
            ticks: time_ticks(x_max),
        }
    }
}

impl Ranged for RunClock {
    type FormatOption = plotters::coord::ranged1d::DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = value / self.x_max;
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: plotters::coord::ranged1d::KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Light mesh lines ask for many points: give them none, the bold ticks are enough.
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.x_max
    }
}

/// Tick positions on the time axis at a round step (1 s … 2 h), ten or fewer.
pub fn time_ticks(x_max: f64) -> Vec<f64> {
    const STEPS: [f64; 15] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        14400.0,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|s| x_max / s <= 10.0)
        .unwrap_or_else(|| (x_max / 10.0 / 3600.0).ceil() * 3600.0);
    (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= x_max + 1e-9)
        .collect()
}

/// A plain number for an axis: whole numbers as such, fractions with up to two decimals.
pub fn plain(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn y_top(lines: &[Line]) -> f64 {
    let max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    if max <= 0.0 {
        1.0
    } else {
        max * 1.1
    }
}

/// A chart of values over the run's time, with the stages shaded and named.
pub fn time_chart(
    axis: &TimeAxis,
    y_desc: &str,
    y_fmt: &dyn Fn(&f64) -> String,
    lines: &[Line],
) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let x_max = axis.x_max.max(1.0);
        let y_max = y_top(lines);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_top(22)
            .x_label_area_size(28)
            .y_label_area_size(78)
            .build_cartesian_2d(RunClock::new(x_max), 0.0..y_max)
            .map_err(err)?;
        for (i, s) in axis.stages.iter().enumerate() {
            if i % 2 == 1 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(s.start_s, 0.0), (s.end_s.min(x_max), y_max)],
                        STAGE_SHADE.filled(),
                    )))
                    .map_err(err)?;
            }
        }
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(225, 225, 225))
            .y_labels(6)
            .x_label_formatter(&|x| clock(*x))
            .y_label_formatter(y_fmt)
            .y_desc(y_desc)
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(err)?;
        for s in axis.stages.iter() {
            if s.start_s > 0.0 && s.start_s < x_max {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(s.start_s, 0.0), (s.start_s, y_max)],
                        STAGE_LINE.stroke_width(1),
                    )))
                    .map_err(err)?;
            }
            if s.start_s < x_max {
                let style = ("sans-serif", 15)
                    .into_font()
                    .color(&RGBColor(80, 90, 110))
                    .pos(text_anchor::Pos::new(
                        text_anchor::HPos::Left,
                        text_anchor::VPos::Bottom,
                    ));
                chart
                    .plotting_area()
                    .draw(&Text::new(
                        s.name.clone(),
                        (s.start_s + x_max * 0.004, y_max * 1.0),
                        style,
                    ))
                    .map_err(err)?;
            }
        }
        for m in axis.markers {
            if m.t >= 0.0 && m.t <= x_max {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(m.t, 0.0), (m.t, y_max)],
                        MARKER.stroke_width(2),
                    )))
                    .map_err(err)?;
            }
        }
        draw_lines(&mut chart, lines)?;
        root.present().map_err(err)?;
    }
    Ok(responsive(svg))
}

/// The latency distribution as HdrHistogram plots it: x is 1/(1-p) on a log scale, labelled
/// with the percentile; y is latency in ms.
pub fn spectrum_chart(x_max: f64, lines: &[Line]) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT + 40)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let y_max = y_top(lines);
        let decades = x_max.log10().round() as i32;
        let keys: Vec<f64> = (0..=decades).map(|d| 10f64.powi(d)).collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_right(40)
            .x_label_area_size(40)
            .y_label_area_size(78)
            .build_cartesian_2d((1.0..x_max).log_scale().with_key_points(keys), 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(225, 225, 225))
            .x_label_formatter(&|x| super::series::percentile_label(*x))
            .y_label_formatter(&|y| super::super::ms(*y))
            .x_desc("percentile")
            .y_desc("latency")
            .label_style(("sans-serif", 16))
            .axis_desc_style(("sans-serif", 16))
            .draw()
            .map_err(err)?;
        draw_lines(&mut chart, lines)?;
        root.present().map_err(err)?;
    }
    Ok(responsive(svg))
}

fn draw_lines<X, DB>(
    chart: &mut ChartContext<DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    lines: &[Line],
) -> Result<(), ChartError>
where
    X: Ranged<ValueType = f64>,
    DB: DrawingBackend,
{
    let ordered = lines
        .iter()
        .filter(|l| l.faint)
        .chain(lines.iter().filter(|l| !l.faint));
    for l in ordered {
        if l.points.is_empty() {
            continue;
        }
        let color = if l.faint {
            l.color.mix(0.55)
        } else {
            l.color.to_rgba()
        };
        chart
            .draw_series(LineSeries::new(
                l.points.iter().copied(),
                color.stroke_width(l.width),
            ))
            .map_err(err)?;
    }
    Ok(())
}

/// Lets the SVG scale with the page: the `viewBox` stays, the fixed size goes.
fn responsive(svg: String) -> String {
    let fixed = format!("width=\"{WIDTH}\" height=\"");
    match svg.find(&fixed) {
        Some(at) => {
            let rest = &svg[at + fixed.len()..];
            let end = rest.find('"').map(|e| at + fixed.len() + e + 1);
            match end {
                Some(end) => format!("{}class=\"chart\" role=\"img\"{}", &svg[..at], &svg[end..]),
                None => svg,
            }
        }
        None => svg,
    }
}

/// The HTML legend under a chart: a swatch and the label of each series.
pub fn legend(lines: &[Line], extra: &[(&str, RGBColor)]) -> String {
    let mut s = String::from("<div class=\"legend\">");
    for l in lines {
        let RGBColor(r, g, b) = l.color;
        let opacity = if l.faint { 0.55 } else { 1.0 };
        s.push_str(&format!(
            "<span><i style=\"background:rgba({r},{g},{b},{opacity})\"></i>{}</span>",
            escape(&l.label)
        ));
    }
    for (label, RGBColor(r, g, b)) in extra {
        s.push_str(&format!(
            "<span><i class=\"band\" style=\"background:rgb({r},{g},{b})\"></i>{}</span>",
            escape(label)
        ));
    }
    s.push_str("</div>");
    s
}

/// Colour `i` of the palette, wrapping around.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stages() -> Vec<StageInfo> {
        vec![
            StageInfo {
                name: "warm-up".into(),
                start_s: 0.0,
                end_s: 10.0,
                target: 10.0,
            },
            StageInfo {
                name: "spike <&>".into(),
                start_s: 10.0,
                end_s: 20.0,
                target: 50.0,
            },
        ]
    }

    #[test]
    fn time_chart_has_a_polyline_per_series_and_named_stages() {
        let stages = stages();
        let axis = TimeAxis {
            x_max: 20.0,
            stages: &stages,
            markers: &[Marker {
                t: 12.0,
                label: "scale out".into(),
            }],
        };
        let pts: Vec<(f64, f64)> = (0..20).map(|t| (t as f64, (t * t) as f64)).collect();
        let svg = time_chart(
            &axis,
            "requests/s",
            &|v| format!("{v:.0}"),
            &[
                Line::new("achieved", color(0), pts.clone()),
                Line::new("baseline", color(0), pts).faint(),
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.contains("viewBox=\"0 0 960 300\""));
        assert!(svg.contains("class=\"chart\""));
        // Two series of 20 points; axis ticks, the stage boundary and the marker have 2.
        assert_eq!(data_polylines(&svg), vec![20, 20]);
        assert!(svg.contains("warm-up"));
        assert!(
            svg.contains("spike &lt;&amp;&gt;"),
            "stage names are escaped"
        );
        assert!(svg.contains(">\n10s\n<"), "clock labels");
    }

    #[test]
    fn spectrum_axis_is_labelled_in_nines() {
        let pts = vec![(1.0, 1.0), (10.0, 2.0), (100.0, 5.0), (1e4, 40.0)];
        let svg = spectrum_chart(1e4, &[Line::new("overall", color(0), pts)]).unwrap();
        for label in [
            ">\n0%\n<",
            ">\n90%\n<",
            ">\n99%\n<",
            ">\n99.9%\n<",
            ">\n99.99%\n<",
        ] {
            assert!(svg.contains(label), "{label} missing");
        }
        assert_eq!(data_polylines(&svg), vec![4]);
    }

    /// Point counts of the polylines with more than two points (the data series).
    pub(crate) fn data_polylines(svg: &str) -> Vec<usize> {
        svg.split("<polyline")
            .skip(1)
            .filter_map(|p| {
                let points = p.split("points=\"").nth(1)?.split('"').next()?;
                let n = points.split(' ').filter(|p| !p.is_empty()).count();
                (n > 2).then_some(n)
            })
            .collect()
    }

    #[test]
    fn time_ticks_are_round() {
        assert_eq!(time_ticks(4.0), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            time_ticks(45.0),
            (0..=9).map(|i| i as f64 * 5.0).collect::<Vec<_>>()
        );
        let hour: Vec<f64> = (0..=6).map(|i| i as f64 * 600.0).collect();
        assert_eq!(time_ticks(3600.0), hour);
        assert_eq!(plain(1.5), "1.5");
        assert_eq!(plain(2.0), "2");
        assert_eq!(plain(0.25), "0.25");
        assert_eq!(plain(1234.5), "1234");
    }

    #[test]
    fn clocks() {
        assert_eq!(clock(5.0), "5s");
        assert_eq!(clock(75.0), "1:15");
        assert_eq!(clock(3725.0), "1:02:05");
    }

    #[test]
    fn legends_escape_labels() {
        let l = legend(
            &[Line::new("a<b", color(1), vec![])],
            &[("stage", STAGE_SHADE)],
        );
        assert!(l.contains("a&lt;b"));
        assert!(l.contains("class=\"band\""));
    }
}
