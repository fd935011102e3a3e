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
        // A results file may hold any numbers: an infinite or huge position is pinned, never
        // an overflow.
        let f = value / self.x_max;
        let offset = f * f64::from(limit.1 - limit.0);
        let offset = if offset.is_finite() {
            offset.round() as i32
        } else {
            0
        };
        limit.0.saturating_add(offset)
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

/// Where the plotting area of a time chart starts and ends, in px: margin plus the y label
/// area on the left, the margin on the right (wide enough for the last clock label, which is
/// centred on the axis' end).
const PLOT_LEFT: f64 = 88.0;
const MARGIN_RIGHT: u32 = 28;
const PLOT_RIGHT: f64 = (WIDTH - MARGIN_RIGHT) as f64;
/// Height of one row of labels above a chart (15 px text and a little air).
const LABEL_ROW: u32 = 17;
/// Estimated advance of one character of the 15 px sans-serif labels. Generous on purpose:
/// an overestimate costs a shortened label, an underestimate an overlap.
const CHAR_PX: f64 = 8.2;
const LABEL_GAP: f64 = 8.0;

/// A label placed by [`place_labels`]: which item, its text (maybe shortened) and its row,
/// 0 being the row nearest the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub index: usize,
    pub text: String,
    pub row: usize,
    pub x: f64,
}

/// Lays out labels that each start at an `x` (px, ascending) and may not reach past `right`,
/// in up to `rows` rows so none overlap. A label may run over the labels after it only as far
/// as the one `rows` places on (those in between take the other rows); within that room it
/// takes the lowest free row whole, or else is shortened with "…", or left out when fewer
/// than three characters would fit. With `pull_back`, a label that would run past `right`
/// may end there instead of starting at `x`.
pub fn place_labels(
    items: &[(f64, String)],
    right: f64,
    rows: usize,
    char_px: f64,
    pull_back: bool,
) -> Vec<Placed> {
    let rows = rows.max(1);
    let mut ends = vec![f64::NEG_INFINITY; rows];
    let mut out = Vec::new();
    for (i, (x, text)) in items.iter().enumerate() {
        let x = *x;
        if !x.is_finite() || (x >= right && !pull_back) {
            continue;
        }
        let chars = text.chars().count();
        let width = chars as f64 * char_px;
        let limit = items
            .get(i + rows..)
            .unwrap_or_default()
            .iter()
            .map(|(nx, _)| *nx - LABEL_GAP)
            .find(|nx| nx.is_finite() && *nx > x)
            .unwrap_or(right)
            .min(right);
        let free = |at: f64, ends: &[f64]| (0..rows).find(|&r| ends[r] + LABEL_GAP <= at);
        let mut place = |text: String, at: f64, end: f64, ends: &mut Vec<f64>| {
            let row = free(at, ends)?;
            ends[row] = end;
            out.push(Placed {
                index: i,
                text,
                row,
                x: at,
            });
            Some(())
        };
        if x + width <= limit && place(text.clone(), x, x + width, &mut ends).is_some() {
            continue;
        }
        if pull_back
            && x + width > right
            && place(text.clone(), right - width, right, &mut ends).is_some()
        {
            continue;
        }
        let fits = ((limit - x) / char_px).floor().max(0.0) as usize;
        if fits < 3 {
            continue;
        }
        let shown: String = if chars <= fits {
            text.clone()
        } else {
            text.chars().take(fits - 1).chain(['…']).collect()
        };
        let end = x + shown.chars().count() as f64 * char_px;
        place(shown, x, end, &mut ends);
    }
    out
}

/// The stages' names laid out above a time chart's plot, two rows at most.
fn stage_names(stages: &[StageInfo], x_max: f64) -> Vec<Placed> {
    let items: Vec<(f64, String)> = stages
        .iter()
        .map(|s| {
            let x = PLOT_LEFT + s.start_s.max(0.0) / x_max * (PLOT_RIGHT - PLOT_LEFT) + 3.0;
            (x, s.name.clone())
        })
        .collect();
    place_labels(&items, PLOT_RIGHT + 8.0, 2, CHAR_PX, false)
}

/// Room above the plot for the stage names: one row, or two when they were staggered.
fn header_height(labels: &[Placed]) -> u32 {
    let rows = labels.iter().map(|l| l.row + 1).max().unwrap_or(1) as u32;
    5 + rows * LABEL_ROW
}

fn draw_stage_names<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    labels: &[Placed],
    header: u32,
) -> Result<(), ChartError> {
    for l in labels {
        let style = ("sans-serif", 15)
            .into_font()
            .color(&RGBColor(80, 90, 110))
            .pos(text_anchor::Pos::new(
                text_anchor::HPos::Left,
                text_anchor::VPos::Bottom,
            ));
        let y = header as i32 - 3 - (l.row as u32 * LABEL_ROW) as i32;
        root.draw(&Text::new(l.text.clone(), (l.x.round() as i32, y), style))
            .map_err(err)?;
    }
    Ok(())
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
        let labels = stage_names(axis.stages, x_max);
        let header = header_height(&labels);
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .margin_top(header)
            .margin_right(MARGIN_RIGHT)
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
        }
        draw_stage_names(&root, &labels, header)?;
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

/// A shaded stretch of one panel: the degraded window, a finding's window.
#[derive(Debug, Clone)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub color: RGBColor,
    pub opacity: f64,
}

/// Something with a start and perhaps an end (a scaling activity), marked across every panel
/// of a stacked chart: a line where it started, shading until it ended (or to the chart's edge
/// when it had not), and its label in the top panel.
#[derive(Debug, Clone)]
pub struct Span {
    pub start: f64,
    pub end: Option<f64>,
    pub label: String,
}

/// One panel of a stacked chart: its own y axis in its own unit, the shared time axis.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Written in the panel's top-left corner, in `color`.
    pub title: String,
    pub color: RGBColor,
    /// The y axis' unit: `ms`, `%`, `/s`…
    pub unit: String,
    pub lines: Vec<Line>,
    pub bands: Vec<Band>,
}

pub const PANEL_HEIGHT: u32 = 124;
/// Above each panel's plot: a strip for its title, so the title never covers the data (a line
/// at the top of its range, such as a CPU at 95 %, stays in full view).
const TITLE_ROW: u32 = 20;
/// Above the first panel's plot, under its title: two rows for the spans' labels.
const SPAN_ROWS: u32 = 32;
pub const SPAN: RGBColor = MARKER;
const SPAN_LABEL_PX: f64 = 6.8;

/// The y range a panel shows: its data with some air, from 0 when the data is not far above
/// it, so a flat signal is not blown up into noise and a shift stays visible.
fn panel_range(lines: &[Line]) -> (f64, f64) {
    let (lo, hi) = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return (0.0, 1.0);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = (hi.abs() * 0.1).max(1e-9);
        return if lo >= 0.0 && lo <= 2.0 * pad {
            (0.0, hi + pad.max(hi))
        } else {
            (lo - pad, hi + pad)
        };
    }
    let pad = (hi - lo) * 0.12;
    let lo = if lo >= 0.0 && lo <= 0.35 * hi {
        0.0
    } else {
        lo - pad
    };
    (lo, hi + pad)
}

/// Several panels over the same run clock, one above the other, each with its own y axis:
/// signals in different units compared on one time axis. Stages are shaded in every panel and
/// named above the first, `spans` marked across all, the clock drawn under the last.
pub fn stacked_time_chart(
    axis: &TimeAxis,
    panels: &[Panel],
    spans: &[Span],
) -> Result<String, ChartError> {
    if panels.is_empty() {
        return Err(ChartError("nothing to draw".into()));
    }
    let x_max = axis.x_max.max(1.0);
    let labels = stage_names(axis.stages, x_max);
    let header = header_height(&labels);
    let x_axis = 30;
    let span_rows = if spans.iter().any(|s| s.start.is_finite()) {
        SPAN_ROWS
    } else {
        0
    };
    let height = header + panels.len() as u32 * (PANEL_HEIGHT + TITLE_ROW) + span_rows + x_axis;
    let clip = |t: f64| t.clamp(0.0, x_max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (_, mut rest) = root.split_vertically(header);
        for (i, panel) in panels.iter().enumerate() {
            let last = i + 1 == panels.len();
            let strip = TITLE_ROW + if i == 0 { span_rows } else { 0 };
            let (area, below) =
                rest.split_vertically(PANEL_HEIGHT + strip + if last { x_axis } else { 0 });
            rest = below;
            let (lo, hi) = panel_range(&panel.lines);
            let mut chart = ChartBuilder::on(&area)
                .margin_left(10)
                .margin_right(MARGIN_RIGHT)
                .margin_top(4 + strip)
                .margin_bottom(if last { 2 } else { 4 })
                .x_label_area_size(if last { x_axis - 2 } else { 0 })
                .y_label_area_size(78)
                .build_cartesian_2d(RunClock::new(x_max), lo..hi)
                .map_err(err)?;
            for (j, s) in axis.stages.iter().enumerate() {
                if j % 2 == 1 && s.start_s < x_max {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(clip(s.start_s), lo), (clip(s.end_s), hi)],
                            STAGE_SHADE.filled(),
                        )))
                        .map_err(err)?;
                }
            }
            for b in &panel.bands {
                let (from, to) = (clip(b.from), clip(b.to));
                if b.from.is_finite() && b.to.is_finite() && to > from {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(from, lo), (to, hi)],
                            b.color.mix(b.opacity).filled(),
                        )))
                        .map_err(err)?;
                }
            }
            for s in spans {
                let end = clip(s.end.filter(|e| e.is_finite()).unwrap_or(x_max));
                let start = clip(s.start);
                if s.start.is_finite() && end > start {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(start, lo), (end, hi)],
                            SPAN.mix(0.07).filled(),
                        )))
                        .map_err(err)?;
                }
            }
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(RGBColor(245, 245, 245))
                .bold_line_style(RGBColor(228, 228, 228))
                .y_labels(4)
                .x_label_formatter(&|x| clock(*x))
                .y_label_formatter(&|v| short(*v))
                .y_desc(panel.unit.as_str())
                .label_style(("sans-serif", 15))
                .axis_desc_style(("sans-serif", 15))
                .draw()
                .map_err(err)?;
            for s in axis.stages {
                if s.start_s > 0.0 && s.start_s < x_max {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(s.start_s, lo), (s.start_s, hi)],
                            STAGE_LINE.stroke_width(1),
                        )))
                        .map_err(err)?;
                }
            }
            for s in spans {
                if s.start.is_finite() && s.start >= 0.0 && s.start <= x_max {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(s.start, lo), (s.start, hi)],
                            SPAN.stroke_width(2),
                        )))
                        .map_err(err)?;
                }
            }
            draw_lines(&mut chart, &panel.lines)?;
            let (left, top) = chart.backend_coord(&(0.0, hi));
            let title: String = if panel.title.chars().count() > 100 {
                panel.title.chars().take(99).chain(['…']).collect()
            } else {
                panel.title.clone()
            };
            // In the strip above the plot, not over it.
            let title_top = top - strip as i32 + 1;
            root.draw(&Text::new(
                title,
                (left + 5, title_top),
                ("sans-serif", 14)
                    .into_font()
                    .style(FontStyle::Bold)
                    .color(&panel.color)
                    .pos(text_anchor::Pos::new(
                        text_anchor::HPos::Left,
                        text_anchor::VPos::Top,
                    )),
            ))
            .map_err(err)?;
            if i == 0 {
                // Span labels under the title, staggered in two rows so they do not collide.
                let items: Vec<(f64, String)> = spans
                    .iter()
                    .map(|s| {
                        let x = if s.start.is_finite() && s.end.is_none_or(|e| e >= 0.0) {
                            f64::from(chart.backend_coord(&(clip(s.start), hi)).0) + 4.0
                        } else {
                            f64::NAN
                        };
                        (x, s.label.clone())
                    })
                    .collect();
                for l in place_labels(&items, PLOT_RIGHT, 2, SPAN_LABEL_PX, true) {
                    let y = top - span_rows as i32 + l.row as i32 * 16;
                    root.draw(&Text::new(
                        l.text,
                        (l.x as i32, y + 1),
                        ("sans-serif", 13)
                            .into_font()
                            .color(&SPAN)
                            .pos(text_anchor::Pos::new(
                                text_anchor::HPos::Left,
                                text_anchor::VPos::Top,
                            )),
                    ))
                    .map_err(err)?;
                }
            }
        }
        draw_stage_names(&root, &labels, header)?;
        root.present().map_err(err)?;
    }
    Ok(responsive(svg))
}

/// A compact number for an axis or a table: `12`, `0.25`, `12.5k`, `3.1M`.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else if a >= 0.01 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.1e}")
    }
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

    /// Found by mutating results.json: a run length of 0 (or a huge time) put an infinite
    /// position through `as i32` and overflowed the addition.
    #[test]
    fn any_run_length_maps_inside_the_chart_without_overflow() {
        for (x_max, value) in [
            (0.0, 1.0),
            (1e-300, 1e300),
            (f64::MAX, 1.0),
            (1.0, f64::MAX),
        ] {
            let clock = RunClock::new(x_max);
            let _ = clock.map(&value, (10, 500));
        }
        assert_eq!(RunClock::new(10.0).map(&5.0, (0, 100)), 50);
    }

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

    /// Whether any two labels of a row overlap, by the same width estimate the layout uses.
    fn overlapping(placed: &[Placed], char_px: f64) -> bool {
        placed.iter().enumerate().any(|(i, a)| {
            placed[i + 1..].iter().any(|b| {
                let end = |p: &Placed| p.x + p.text.chars().count() as f64 * char_px;
                a.row == b.row && a.x < end(b) && b.x < end(a)
            })
        })
    }

    #[test]
    fn short_stages_get_staggered_shortened_or_skipped_names() {
        // A ramp of five one-second stages, then a long one, on a 60 s axis.
        let mut ramp: Vec<StageInfo> = (0..5)
            .map(|i| StageInfo {
                name: format!("ramp step number {i}"),
                start_s: i as f64,
                end_s: i as f64 + 1.0,
                target: 10.0,
            })
            .collect();
        ramp.push(StageInfo {
            name: "steady".into(),
            start_s: 5.0,
            end_s: 60.0,
            target: 50.0,
        });
        let placed = stage_names(&ramp, 60.0);
        assert!(!overlapping(&placed, CHAR_PX), "{placed:#?}");
        // The last of the short stages is named over the long one, which is named above it.
        let names: Vec<(&str, usize)> = placed.iter().map(|p| (p.text.as_str(), p.row)).collect();
        assert_eq!(
            names,
            [("ramp step number 4", 0), ("steady", 1)],
            "{placed:#?}"
        );
        let many: Vec<(f64, String)> = (0..6)
            .map(|i| (100.0 + i as f64 * 60.0, "a long stage name".into()))
            .collect();
        let placed = place_labels(&many, 900.0, 2, CHAR_PX, false);
        assert!(!overlapping(&placed, CHAR_PX), "{placed:#?}");
        assert_eq!(placed.len(), 6, "staggered, every one shown: {placed:#?}");
        assert!(placed.iter().any(|p| p.text.ends_with('…')), "{placed:#?}");
        assert_eq!(header_height(&placed), 39);
        // Names that fit stay on one row, as before.
        assert_eq!(header_height(&stage_names(&stages(), 20.0)), 22);
        // Odd input: no stages, a stage past the axis, a NaN start.
        assert!(stage_names(&[], 10.0).is_empty());
        let odd = place_labels(
            &[(f64::NAN, "x".into()), (2000.0, "late".into())],
            900.0,
            2,
            CHAR_PX,
            false,
        );
        assert!(odd.is_empty());
    }

    #[test]
    fn a_label_at_the_right_edge_is_pulled_back_not_lost() {
        let placed = place_labels(&[(880.0, "desired 8".into())], 900.0, 2, 7.0, true);
        assert_eq!(placed.len(), 1);
        assert!(placed[0].x + 9.0 * 7.0 <= 900.0 + 1e-9);
        let stage = place_labels(&[(870.0, "desired 8".into())], 900.0, 2, 7.0, false);
        assert_eq!(
            stage[0].text, "des…",
            "a stage name is shortened, not moved"
        );
    }

    #[test]
    fn stacked_chart_shares_the_clock_and_marks_spans() {
        let stages = stages();
        let axis = TimeAxis {
            x_max: 20.0,
            stages: &stages,
            markers: &[],
        };
        let pts: Vec<(f64, f64)> = (0..20).map(|t| (t as f64, t as f64)).collect();
        let panel = |title: &str, unit: &str, pts: Vec<(f64, f64)>| Panel {
            title: title.into(),
            color: color(1),
            unit: unit.into(),
            lines: vec![Line::new(title, color(1), pts)],
            bands: vec![Band {
                from: 5.0,
                to: f64::NAN,
                color: color(1),
                opacity: 0.1,
            }],
        };
        let flat: Vec<(f64, f64)> = (0..20).map(|t| (t as f64, 7.0)).collect();
        let svg = stacked_time_chart(
            &axis,
            &[
                panel("latency", "ms", pts.clone()),
                panel("pool <wait>", "ms", pts),
                panel("flat", "count", flat),
                panel("empty", "", Vec::new()),
            ],
            &[
                Span {
                    start: 12.0,
                    end: Some(15.0),
                    label: "desired 6 · Successful".into(),
                },
                Span {
                    start: -3.0,
                    end: None,
                    label: "before".into(),
                },
                Span {
                    start: f64::NAN,
                    end: None,
                    label: "never".into(),
                },
            ],
        )
        .unwrap();
        let height = 22 + 4 * (PANEL_HEIGHT + TITLE_ROW) + SPAN_ROWS + 30;
        assert!(
            svg.contains(&format!("viewBox=\"0 0 960 {height}\"")),
            "{}",
            &svg[..200]
        );
        assert_eq!(data_polylines(&svg), vec![20, 20, 20]);
        for text in [
            "desired 6 · Successful",
            "pool &lt;wait&gt;",
            "before",
            "warm-up",
        ] {
            assert!(svg.contains(text), "{text}");
        }
        assert!(!svg.contains("never") && !svg.contains("NaN"));
        assert_eq!(
            svg.matches(">\n10s\n<").count(),
            1,
            "the clock once, under the last panel"
        );
        assert!(stacked_time_chart(&axis, &[], &[]).is_err());
    }

    #[test]
    fn a_panels_title_and_span_labels_sit_above_its_data() {
        // CPU at 95 % for most of the run: its line runs along the top of the panel.
        let cpu: Vec<(f64, f64)> = (0..60)
            .map(|t| (t as f64, if t < 10 { 30.0 } else { 95.0 }))
            .collect();
        let axis = TimeAxis {
            x_max: 60.0,
            stages: &[],
            markers: &[],
        };
        let panel = Panel {
            title: "AWS/ECS/CPUUtilization:Average (ClusterName=shop, ServiceName=api)".into(),
            color: color(0),
            unit: "%".into(),
            lines: vec![Line::new("cpu", color(0), cpu)],
            bands: Vec::new(),
        };
        let spans = [Span {
            start: 2.0,
            end: None,
            label: "desired 6 · InProgress".into(),
        }];
        let svg = stacked_time_chart(&axis, &[panel], &spans).unwrap();
        let y_of = |text: &str| -> i32 {
            let at = svg
                .find(&format!(">\n{text}\n<"))
                .unwrap_or_else(|| panic!("{text}"));
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            let y = tag
                .split(" y=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            y.parse().unwrap()
        };
        let top_of_data = svg
            .split("<polyline")
            .skip(1)
            .filter_map(|p| p.split("points=\"").nth(1)?.split('"').next())
            .filter(|pts| pts.split(' ').count() > 2)
            .flat_map(|pts| {
                pts.split(' ')
                    .filter_map(|xy| xy.split(',').nth(1)?.parse::<i32>().ok())
            })
            .min()
            .unwrap();
        // Text is drawn from its top; 14 px and 13 px fonts.
        let title = y_of("AWS/ECS/CPUUtilization:Average (ClusterName=shop, ServiceName=api)");
        let label = y_of("desired 6 · InProgress");
        assert!(title + 16 <= label, "title {title}, label {label}");
        assert!(
            label + 15 < top_of_data,
            "label {label} over the data at {top_of_data}"
        );
        assert!(
            !svg.contains("fill-opacity=\"0.85\""),
            "no box over the plot"
        );
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
