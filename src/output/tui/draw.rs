//! Drawing: one frame from a [`DashboardState`], nothing else. Pure, so it is tested against
//! ratatui's `TestBackend`.

use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Cell, Chart, Dataset, Gauge, GraphType, LegendPosition, Paragraph, Row, Sparkline,
    Table,
};
use ratatui::Frame;

use super::state::{
    DashboardState, LiveThreshold, Model, SignalSeries, ThresholdStatus, ValueKind, View,
};
use crate::output::ms;

const LOAD_PANEL_WIDTH: u16 = 30;

pub fn draw(frame: &mut Frame, state: &DashboardState) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, state);
    match state.view {
        View::Overview => draw_overview(frame, body, state),
        View::Steps => draw_steps_view(frame, body, state),
    }
    draw_footer(frame, footer, state);
}

fn draw_header(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let status = if state.stopping {
        Span::styled(
            " STOPPING ",
            Style::new().fg(Color::Black).bg(Color::Yellow),
        )
    } else {
        Span::styled(" RUNNING ", Style::new().fg(Color::Black).bg(Color::Green))
    };
    let block = Block::bordered()
        .title(Line::from(vec![
            " peakload · ".into(),
            Span::styled(state.spec.scenario.clone(), Modifier::BOLD),
            " ".into(),
        ]))
        .title(status.into_right_aligned_line());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [info, gauge] =
        Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(inner);
    let stage = match state.current_stage() {
        Some((i, s)) => format!("stage {}/{} {}", i + 1, state.spec.stages.len(), s.name),
        None => "no stages".into(),
    };
    let model = match state.spec.model {
        Model::Open => "open model",
        Model::Closed => "closed model",
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(stage, Style::new().fg(Color::Cyan).bold()),
            format!(
                "   {model}   {} of {}   ",
                clock(state.elapsed.as_secs()),
                clock(state.spec.planned.as_secs())
            )
            .into(),
            Span::styled(
                format!("{} left", clock(state.time_left().as_secs())),
                Modifier::BOLD,
            ),
        ])),
        info,
    );
    let ratio = state.progress();
    frame.render_widget(
        Gauge::default()
            .gauge_style(Style::new().fg(Color::Cyan).bg(Color::DarkGray))
            .ratio(ratio)
            .label(format!("{:.0}%", ratio * 100.0)),
        gauge,
    );
}

fn draw_overview(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let steps_height = (state.spec.steps.len() as u16 + 3).min(12);
    let bottom_height = (state.thresholds.len() as u16 + 2)
        .max(state.signals.as_ref().map_or(0, |s| s.len() as u16 * 2 + 2))
        .clamp(3, 10);
    let bottom_height = if state.thresholds.is_empty() && state.signals.is_none() {
        0
    } else {
        bottom_height
    };
    let [charts, steps, bottom] = Layout::vertical([
        Constraint::Min(8),
        Constraint::Length(steps_height),
        Constraint::Length(bottom_height),
    ])
    .areas(area);

    let [load, middle, latency] = Layout::horizontal([
        Constraint::Length(LOAD_PANEL_WIDTH),
        Constraint::Percentage(50),
        Constraint::Percentage(50),
    ])
    .areas(charts);
    draw_load_panel(frame, load, state);
    let [rps, errors] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);
    draw_rps_chart(frame, rps, state);
    draw_error_chart(frame, errors, state);
    draw_latency_chart(frame, latency, state);
    draw_step_table(frame, steps, state, false);

    if bottom_height > 0 {
        match &state.signals {
            Some(signals) => {
                let [t, s] =
                    Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                        .areas(bottom);
                draw_thresholds(frame, t, &state.thresholds);
                draw_signals(frame, s, signals);
            }
            None => draw_thresholds(frame, bottom, &state.thresholds),
        }
    }
}

fn draw_steps_view(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let thresholds_height = if state.thresholds.is_empty() {
        0
    } else {
        (state.thresholds.len() as u16 + 2).min(area.height / 3)
    };
    let [table, thresholds] =
        Layout::vertical([Constraint::Min(4), Constraint::Length(thresholds_height)]).areas(area);
    draw_step_table(frame, table, state, true);
    if thresholds_height > 0 {
        draw_thresholds(frame, thresholds, &state.thresholds);
    }
}

fn draw_load_panel(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let live = &state.live;
    let last = live.last.as_ref();
    let row = |label: &str, value: String| {
        Line::from(vec![
            Span::styled(format!("{label:<12}"), Style::new().fg(Color::Gray)),
            Span::styled(value, Modifier::BOLD),
        ])
    };
    let mut lines = Vec::new();
    match state.spec.model {
        Model::Open => {
            let target = last.map_or(0.0, |p| p.target_rps);
            let achieved = last.map_or(0, |p| p.iterations_started);
            lines.push(row("target", format!("{target:.1} it/s")));
            let achieved_style = if target > 0.0 && (achieved as f64) < target * 0.95 {
                Style::new().fg(Color::Yellow).bold()
            } else {
                Style::new().fg(Color::Green).bold()
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<12}", "achieved"), Style::new().fg(Color::Gray)),
                Span::styled(format!("{achieved} it/s"), achieved_style),
            ]));
            lines.push(row(
                "active VUs",
                last.map_or(0, |p| p.active_vus).to_string(),
            ));
        }
        Model::Closed => {
            let target = last.map_or(0.0, |p| p.target_rps);
            lines.push(row("target VUs", format!("{target:.0}")));
            lines.push(row(
                "active VUs",
                last.map_or(0, |p| p.active_vus).to_string(),
            ));
            lines.push(row(
                "iterations",
                format!("{} it/s", last.map_or(0, |p| p.iterations_started)),
            ));
        }
    }
    let dropped_style = if live.counters.dropped_iterations > 0 {
        Style::new().fg(Color::Red).bold()
    } else {
        Style::new().bold()
    };
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "dropped"), Style::new().fg(Color::Gray)),
        Span::styled(live.counters.dropped_iterations.to_string(), dropped_style),
    ]));
    lines.push(row(
        "lag p99",
        match state.spec.model {
            Model::Open => ms(live.schedule_lag_p99_ms),
            Model::Closed => "—".into(),
        },
    ));
    lines.push(row("req/s", format!("{:.1}", last.map_or(0.0, |p| p.rps))));
    lines.push(row("requests", live.requests.to_string()));
    let error_rate = state.error_rate();
    lines.push(Line::from(vec![
        Span::styled(format!("{:<12}", "errors"), Style::new().fg(Color::Gray)),
        Span::styled(
            format!("{:.2}%", error_rate * 100.0),
            if live.errors > 0 {
                Style::new().fg(Color::Red).bold()
            } else {
                Style::new().bold()
            },
        ),
    ]));
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Load ")),
        area,
    );
}

/// Points (t, value) for the charts, over the snapshot's recent seconds.
fn series(
    state: &DashboardState,
    f: impl Fn(&crate::record::results::TimelinePoint) -> f64,
) -> Vec<(f64, f64)> {
    state
        .live
        .recent
        .iter()
        .map(|p| (f64::from(p.t), f(p)))
        .collect()
}

fn x_bounds(state: &DashboardState) -> [f64; 2] {
    let first = state.live.recent.front().map_or(0.0, |p| f64::from(p.t));
    let last = state.live.recent.back().map_or(1.0, |p| f64::from(p.t));
    [first, last.max(first + 1.0)]
}

fn y_max(sets: &[&[(f64, f64)]]) -> f64 {
    let max = sets
        .iter()
        .flat_map(|s| s.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    if max <= 0.0 {
        1.0
    } else {
        max * 1.1
    }
}

fn time_chart<'a>(
    title: &'a str,
    datasets: Vec<Dataset<'a>>,
    x: [f64; 2],
    y: f64,
    y_label: String,
) -> Chart<'a> {
    Chart::new(datasets)
        .block(Block::bordered().title(title))
        .x_axis(
            Axis::default()
                .style(Style::new().fg(Color::DarkGray))
                .bounds(x)
                .labels([format!("{:.0}s", x[0]), format!("{:.0}s", x[1])]),
        )
        .y_axis(
            Axis::default()
                .style(Style::new().fg(Color::DarkGray))
                .bounds([0.0, y])
                .labels(["0".to_string(), y_label]),
        )
        .legend_position(Some(LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
}

fn line<'a>(name: &'a str, color: Color, data: &'a [(f64, f64)]) -> Dataset<'a> {
    Dataset::default()
        .name(name)
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(color))
        .data(data)
}

fn draw_rps_chart(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let rps = series(state, |p| p.rps);
    let target = series(state, |p| p.target_rps);
    let mut datasets = vec![line("req/s", Color::Cyan, &rps)];
    let y = if state.spec.model == Model::Open {
        datasets.insert(0, line("target it/s", Color::DarkGray, &target));
        y_max(&[&rps, &target])
    } else {
        y_max(&[&rps])
    };
    let title = format!(
        " Requests/s {:.1} ",
        state.live.last.as_ref().map_or(0.0, |p| p.rps)
    );
    frame.render_widget(
        time_chart(&title, datasets, x_bounds(state), y, format!("{y:.0}")),
        area,
    );
}

fn draw_error_chart(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let errors = series(state, |p| {
        if p.requests > 0 {
            p.errors as f64 / p.requests as f64 * 100.0
        } else {
            0.0
        }
    });
    let y = y_max(&[&errors]);
    let now = errors.last().map_or(0.0, |p| p.1);
    let title = format!(" Errors {now:.2}% ");
    frame.render_widget(
        time_chart(
            &title,
            vec![line("error %", Color::Red, &errors)],
            x_bounds(state),
            y,
            format!("{y:.1}%"),
        ),
        area,
    );
}

fn draw_latency_chart(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let p50 = series(state, |p| p.latency_ms.p50);
    let p95 = series(state, |p| p.latency_ms.p95);
    let p99 = series(state, |p| p.latency_ms.p99);
    let y = y_max(&[&p50, &p95, &p99]);
    let title = match state.live.last.as_ref() {
        Some(p) => format!(
            " Latency p50 {} p95 {} p99 {} ",
            ms(p.latency_ms.p50),
            ms(p.latency_ms.p95),
            ms(p.latency_ms.p99)
        ),
        None => " Latency ".into(),
    };
    frame.render_widget(
        time_chart(
            &title,
            vec![
                line("p50", Color::Green, &p50),
                line("p95", Color::Yellow, &p95),
                line("p99", Color::Red, &p99),
            ],
            x_bounds(state),
            y,
            ms(y),
        ),
        area,
    );
}

fn draw_step_table(frame: &mut Frame, area: Rect, state: &DashboardState, detailed: bool) {
    let seconds = f64::from(state.live.seconds.max(1));
    let right = |s: String| Cell::from(Line::from(s).alignment(Alignment::Right));
    let mut header = vec!["step".to_string()];
    if detailed {
        header.extend(["method".into(), "now/s".into()]);
    }
    header.extend(
        [
            "requests",
            "rps",
            "p50",
            "p95",
            "p99",
            "max",
            "errors",
            "err %",
            "checks✗",
        ]
        .map(String::from),
    );
    if !detailed {
        header.retain(|h| h != "errors");
    }
    let header =
        Row::new(
            header
                .into_iter()
                .enumerate()
                .map(|(i, h)| if i == 0 { Cell::from(h) } else { right(h) }),
        )
        .style(Style::new().fg(Color::Gray).add_modifier(Modifier::BOLD));
    // Rows that fit inside the borders and under the header; the rest are counted, not cut
    // silently.
    let fits = usize::from(area.height.saturating_sub(3));
    let total = state.spec.steps.len();
    let shown = if total > fits {
        fits.saturating_sub(1)
    } else {
        total
    };
    let rows = state
        .spec
        .steps
        .iter()
        .take(shown)
        .enumerate()
        .map(|(i, label)| {
            let s = state.live.steps.get(i).cloned().unwrap_or_default();
            let err = if s.requests > 0 {
                s.errors as f64 / s.requests as f64 * 100.0
            } else {
                0.0
            };
            let mut cells = vec![Cell::from(label.label())];
            if detailed {
                cells.push(right(label.method.clone()));
                cells.push(right(format!(
                    "{:.1}",
                    state.step_rps_now.get(i).copied().unwrap_or(0.0)
                )));
            }
            cells.extend([
                right(s.requests.to_string()),
                right(format!("{:.1}", s.requests as f64 / seconds)),
                right(ms(s.p50)),
                right(ms(s.p95)),
                right(ms(s.p99)),
                right(ms(s.max)),
            ]);
            if detailed {
                cells.push(right(s.errors.to_string()));
            }
            let err_cell = right(format!("{err:.2}%"));
            cells.push(if s.errors > 0 {
                err_cell.style(Style::new().fg(Color::Red))
            } else {
                err_cell
            });
            let checks = right(s.checks_failed.to_string());
            cells.push(if s.checks_failed > 0 {
                checks.style(Style::new().fg(Color::Red))
            } else {
                checks
            });
            Row::new(cells)
        });
    let more_text = (shown < total).then(|| {
        let hint = if detailed { "" } else { " (Tab: all)" };
        format!("+{} more{hint}", total - shown)
    });
    let more = more_text
        .clone()
        .map(|t| Row::new([Cell::from(t)]).style(Style::new().fg(Color::Gray)));
    let rows = rows.chain(more);
    let label_width = state
        .spec
        .steps
        .iter()
        .map(|s| s.label().chars().count() as u16)
        .chain(more_text.map(|t| t.chars().count() as u16))
        .max()
        .unwrap_or(4)
        .clamp(4, 40);
    let mut widths = vec![Constraint::Length(label_width)];
    if detailed {
        widths.extend([Constraint::Length(6), Constraint::Length(8)]);
    }
    widths.extend([
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
    ]);
    if detailed {
        widths.push(Constraint::Length(8));
    }
    widths.extend([Constraint::Length(7), Constraint::Length(8)]);
    let title = if detailed {
        " Steps (whole run; now/s = last second) "
    } else {
        " Steps "
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .block(Block::bordered().title(title)),
        area,
    );
}

fn draw_thresholds(frame: &mut Frame, area: Rect, thresholds: &[LiveThreshold]) {
    let width = thresholds
        .iter()
        .map(|t| t.expr.chars().count())
        .max()
        .unwrap_or(0);
    let lines: Vec<Line> = thresholds
        .iter()
        .map(|t| {
            let (mark, color) = match t.status {
                ThresholdStatus::Holding => ("✓", Color::Green),
                ThresholdStatus::Crossed => ("✗", Color::Red),
                ThresholdStatus::Waiting => ("…", Color::DarkGray),
            };
            let value = t
                .value
                .map_or_else(|| "waiting".into(), |v| value(v, t.kind));
            Line::from(vec![
                Span::styled(format!("{mark} {:<width$}", t.expr), Style::new().fg(color)),
                Span::styled(format!("  {value}"), Style::new().fg(color).bold()),
            ])
        })
        .collect();
    let crossed = thresholds
        .iter()
        .filter(|t| t.status == ThresholdStatus::Crossed)
        .count();
    let title = if crossed > 0 {
        Line::from(vec![
            " Thresholds ".into(),
            Span::styled(
                format!("{crossed} crossed "),
                Style::new().fg(Color::Red).bold(),
            ),
        ])
    } else {
        Line::from(" Thresholds ")
    };
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn draw_signals(frame: &mut Frame, area: Rect, signals: &[SignalSeries]) {
    let block = Block::bordered().title(" Infrastructure ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if signals.is_empty() {
        frame.render_widget(
            Paragraph::new("waiting for the first signals…").fg(Color::DarkGray),
            inner,
        );
        return;
    }
    let rows = Layout::vertical(vec![Constraint::Length(1); signals.len()]).split(inner);
    for (signal, row) in signals.iter().zip(rows.iter()) {
        let [label, spark] =
            Layout::horizontal([Constraint::Percentage(60), Constraint::Min(8)]).areas(*row);
        let last = signal.values.last().copied().unwrap_or(0.0);
        let value = format!("{:>8}{} ", compact(last), signal.unit);
        let room = (label.width as usize).saturating_sub(value.chars().count());
        frame.render_widget(
            Paragraph::new(format!("{value}{}", elide_middle(&signal.name, room))),
            label,
        );
        let start = signal.values.len().saturating_sub(spark.width as usize);
        let shown = &signal.values[start..];
        // Sparklines draw integers: scale the window to 0..=100 so small values still show.
        let (lo, hi) = shown
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let span = if hi > lo { hi - lo } else { 1.0 };
        frame.render_widget(
            Sparkline::default()
                .data(
                    shown
                        .iter()
                        .map(|&v| (((v - lo) / span) * 100.0).round() as u64 + 1),
                )
                .style(Style::new().fg(Color::Magenta)),
            spark,
        );
    }
}

/// `name` in at most `width` characters: a long one keeps its start and its end (where the
/// labels that tell same-named signals apart are) around an ellipsis.
fn elide_middle(name: &str, width: usize) -> String {
    let n = name.chars().count();
    if n <= width {
        return name.to_string();
    }
    if width < 5 {
        return name.chars().take(width).collect();
    }
    let head = (width - 1) * 2 / 5;
    let tail = width - 1 - head;
    let start: String = name.chars().take(head).collect();
    let end: String = name.chars().skip(n - tail).collect();
    format!("{start}…{end}")
}

/// A signal's value in a few characters: 0.0123, 4.56, 789, 12.3k, 4.5M.
fn compact(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn draw_footer(frame: &mut Frame, area: Rect, state: &DashboardState) {
    let keys = match state.view {
        View::Overview => " q/Ctrl-C stop · Tab per-step view ",
        View::Steps => " q/Ctrl-C stop · Tab overview ",
    };
    let mut spans = vec![Span::styled(
        keys,
        Style::new().fg(Color::Black).bg(Color::Gray),
    )];
    if state.stopping {
        spans.push(Span::styled(
            "  stopping: finishing in-flight requests, then writing results (q again exits at once)",
            Style::new().fg(Color::Yellow),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn value(v: f64, kind: ValueKind) -> String {
    match kind {
        ValueKind::LatencyMs => ms(v),
        ValueKind::Fraction => format!("{:.2}%", v * 100.0),
        ValueKind::PerSecond => format!("{v:.1}/s"),
        ValueKind::Count => format!("{v:.0}"),
    }
}

/// `m:ss`, or `h:mm:ss` from an hour.
fn clock(secs: u64) -> String {
    if secs >= 3600 {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::style::Color;
    use ratatui::Terminal;

    use super::{draw, elide_middle};
    use crate::output::tui::state::{
        DashboardSpec, DashboardState, Model, SignalSeries, StageSpan, StepLabel, View,
    };
    use crate::record::aggregate::{JourneyLive, LiveHistograms, LiveView, StepLive};
    use crate::record::new_histogram;
    use crate::record::results::{IntervalLatency, TimelinePoint};
    use crate::scenario::{CmpOp, MetricRef, Scope, Stat, Threshold};

    fn spec() -> DashboardSpec {
        let threshold = |expr: &str, scope, stat, limit| Threshold {
            expr: expr.into(),
            metric: MetricRef { scope, stat },
            op: CmpOp::Lt,
            limit,
        };
        DashboardSpec {
            scenario: "black-friday".into(),
            model: Model::Open,
            planned: Duration::from_secs(120),
            stages: vec![
                StageSpan {
                    name: "ramp".into(),
                    start_s: 0.0,
                    end_s: 30.0,
                },
                StageSpan {
                    name: "peak".into(),
                    start_s: 30.0,
                    end_s: 120.0,
                },
            ],
            steps: vec![
                StepLabel {
                    journey: "browse".into(),
                    name: "products".into(),
                    method: "GET".into(),
                },
                StepLabel {
                    journey: "buy".into(),
                    name: "checkout".into(),
                    method: "POST".into(),
                },
            ],
            journey_offsets: vec![0, 1],
            thresholds: vec![
                threshold(
                    "http.p99 < 300ms",
                    Scope::Http,
                    Stat::Percentile(99.0),
                    300.0,
                ),
                threshold(
                    "checkout.error_rate < 1%",
                    Scope::Step {
                        journey: 1,
                        step: 0,
                    },
                    Stat::ErrorRate,
                    0.01,
                ),
            ],
        }
    }

    /// 45 s into the run: 200 it/s planned, 190 started, checkout failing 5% of the time.
    fn live() -> LiveView {
        let mut overall = new_histogram();
        for us in [8_000u64, 12_000, 25_000, 120_000] {
            overall.record_n(us, 2_250).unwrap();
        }
        let recent = (0..45)
            .map(|t| TimelinePoint {
                t,
                requests: 200,
                errors: if t > 40 { 10 } else { 0 },
                rps: 200.0,
                latency_ms: IntervalLatency {
                    p50: 12.0,
                    p95: 25.0,
                    p99: 120.0,
                    max: 130.0,
                },
                active_vus: 17,
                target_rps: 200.0,
                iterations_started: 190,
                dropped_iterations: 0,
                errors_by_kind: Default::default(),
                generator_cpu_pct: 20.0,
            })
            .collect::<std::collections::VecDeque<_>>();
        LiveView {
            seconds: 45,
            last: recent.back().cloned(),
            requests: 9_000,
            errors: 50,
            counters: crate::record::Counters {
                dropped_iterations: 3,
                ..Default::default()
            },
            steps: vec![
                StepLive {
                    requests: 8_000,
                    errors: 0,
                    checks_failed: 0,
                    p50: 12.0,
                    p95: 25.0,
                    p99: 110.0,
                    max: 130.0,
                },
                StepLive {
                    requests: 1_000,
                    errors: 50,
                    checks_failed: 7,
                    p50: 40.0,
                    p95: 90.0,
                    p99: 150.0,
                    max: 210.0,
                },
            ],
            overall_p99_ms: 120.0,
            recent,
            journeys: vec![JourneyLive::default(); 2],
            iterations: 8_000,
            checks: 9_000,
            checks_failed: 7,
            schedule_lag_p99_ms: 0.42,
            histograms: Arc::new(LiveHistograms {
                overall,
                steps: vec![new_histogram(), new_histogram()],
                journeys: vec![new_histogram(), new_histogram()],
            }),
        }
    }

    fn state() -> DashboardState {
        let mut state = DashboardState::new(spec());
        state.update(live());
        state.tick(Duration::from_secs(45));
        state
    }

    fn render(state: &DashboardState, width: u16, height: u16) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, state)).unwrap();
        terminal.backend().buffer().clone()
    }

    fn lines(buffer: &Buffer) -> Vec<String> {
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect()
    }

    /// (x, y) of the first cell where `text` starts.
    fn find(buffer: &Buffer, text: &str) -> Option<(u16, u16)> {
        for (y, line) in lines(buffer).iter().enumerate() {
            // Column = count of cells before the match (every cell here is one char wide).
            if let Some(byte) = line.find(text) {
                return Some((line[..byte].chars().count() as u16, y as u16));
            }
        }
        None
    }

    fn screen(buffer: &Buffer) -> String {
        lines(buffer).join("\n")
    }

    #[test]
    fn overview_shows_run_load_steps_and_thresholds() {
        let buffer = render(&state(), 160, 48);
        let text = screen(&buffer);
        for expected in [
            "black-friday",
            "RUNNING",
            "stage 2/2 peak",
            "0:45 of 2:00",
            "1:15 left",
            "38%",
            "200.0 it/s",
            "190 it/s",
            "active VUs",
            "0.42ms",
            "Requests/s 200.0",
            "Errors 5.00%",
            "Latency p50 12.0ms p95 25.0ms p99 120ms",
            "browse/products",
            "buy/checkout",
            "checks✗",
            "q/Ctrl-C stop",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
        }
        let checkout = lines(&buffer)
            .into_iter()
            .find(|l| l.contains("buy/checkout"))
            .unwrap();
        for cell in [
            "1000", "22.2", "40.0ms", "90.0ms", "150ms", "210ms", "5.00%", "7",
        ] {
            assert!(checkout.contains(cell), "{cell:?} missing in {checkout:?}");
        }
        assert!(
            find(&buffer, "Infrastructure").is_none(),
            "no source, no panel"
        );
    }

    #[test]
    fn steps_that_do_not_fit_the_overview_are_counted() {
        let mut spec = spec();
        for i in 0..14 {
            spec.steps.push(StepLabel {
                journey: "browse".into(),
                name: format!("extra{i}"),
                method: "GET".into(),
            });
        }
        spec.journey_offsets = vec![0, 1];
        let mut state = DashboardState::new(spec);
        state.update(live());
        state.tick(Duration::from_secs(45));
        let text = screen(&render(&state, 160, 48));
        // 16 steps; the overview's pane holds 9 rows: 8 steps and the count of the rest.
        assert!(text.contains("+8 more (Tab: all)"), "{text}");
        assert!(
            text.contains("browse/extra5") && !text.contains("browse/extra6"),
            "{text}"
        );
    }

    #[test]
    fn thresholds_are_green_while_holding_and_red_once_crossed() {
        let buffer = render(&state(), 160, 48);
        let text = screen(&buffer);
        assert!(text.contains("✓ http.p99 < 300ms"), "{text}");
        assert!(text.contains("✗ checkout.error_rate < 1%"), "{text}");
        assert!(text.contains("1 crossed"), "{text}");
        let (x, y) = find(&buffer, "http.p99 < 300ms").unwrap();
        assert_eq!(buffer[(x, y)].fg, Color::Green);
        let (x, y) = find(&buffer, "checkout.error_rate < 1%").unwrap();
        assert_eq!(buffer[(x, y)].fg, Color::Red);
        // The live values: p99 of the whole-run histogram, checkout's error rate.
        let p99_line = lines(&buffer)
            .into_iter()
            .find(|l| l.contains("http.p99 < 300ms"))
            .unwrap();
        assert!(p99_line.contains("120ms"), "{p99_line}");
        let rate_line = lines(&buffer)
            .into_iter()
            .find(|l| l.contains("checkout.error_rate"))
            .unwrap();
        assert!(rate_line.contains("5.00%"), "{rate_line}");
    }

    #[test]
    fn steps_view_adds_method_and_current_rate() {
        let mut state = state();
        state.view = View::Steps;
        let text = screen(&render(&state, 160, 48));
        for expected in ["now/s", "method", "POST", "errors", "Tab overview"] {
            assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
        }
        assert!(
            !text.contains("Latency p50"),
            "charts belong to the overview"
        );
    }

    #[test]
    fn stopping_and_signals_panel() {
        let mut state = state();
        state.stopping = true;
        state.signals = Some(vec![SignalSeries {
            name: "alb.target_5xx".into(),
            unit: "/min".into(),
            values: vec![0.0, 1.0, 5.0, 2.0, 9.0],
        }]);
        let text = screen(&render(&state, 160, 48));
        for expected in [
            "STOPPING",
            "q again exits at once",
            "Infrastructure",
            "9/min alb.target_5xx",
        ] {
            assert!(text.contains(expected), "{expected:?} missing in:\n{text}");
        }
    }

    #[test]
    fn long_signal_names_keep_their_labels() {
        assert_eq!(elide_middle("short", 10), "short");
        let name = "http_request_duration_seconds:p95{method=\"POST\",route=\"/api/checkout\"}";
        let cut = elide_middle(name, 40);
        assert_eq!(cut.chars().count(), 40);
        assert!(cut.starts_with("http_request_du") && cut.ends_with("route=\"/api/checkout\"}"));
        assert_eq!(elide_middle(name, 3), "htt");

        let mut state = state();
        state.signals = Some(vec![SignalSeries {
            name: name.into(),
            unit: "s".into(),
            values: vec![0.1, 0.2],
        }]);
        let text = screen(&render(&state, 160, 48));
        assert!(
            text.contains("…/api/checkout\"}") || text.contains("…route=\"/api/checkout\"}"),
            "{text}"
        );
    }

    #[test]
    fn small_terminal_and_empty_snapshot_do_not_panic() {
        render(&DashboardState::new(spec()), 80, 24);
        render(&state(), 80, 24);
        render(&state(), 20, 5);
        let text = screen(&render(&DashboardState::new(spec()), 160, 48));
        assert!(text.contains("waiting"), "{text}");
    }
}
