//! The report as one HTML page that needs nothing but a browser (no script, no file beside
//! it): the headline figures and warnings, a bar per rank split into compute, comm and wait,
//! the communication matrix as a heat map, the regions, and, when the run was traced, the
//! timeline: an overview of every rank over the whole run and a close-up of a few
//! milliseconds in the middle with every region and message arrow.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use super::report::Report;
use super::table::{format_seconds, region_cells, REGION_COLUMNS};
use crate::error::{Error, Result};

/// Drawing width of the charts, px.
const WIDTH: f64 = 960.0;
/// Left margin for the rank labels, px.
const LABEL: f64 = 70.0;
/// Columns of the timeline overview.
const COLUMNS: usize = 480;
/// Categories of time, in drawing order, with their colours.
const CATEGORIES: [(&str, &str); 4] = [
    ("outside regions (compute)", "#a0cbe8"),
    ("compute", "#4e79a7"),
    ("comm", "#f28e2b"),
    ("wait", "#e15759"),
];

fn category(cat: &str) -> usize {
    match cat {
        "compute" => 1,
        "comm" => 2,
        "wait" => 3,
        _ => 0,
    }
}

/// Text made safe inside HTML and SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A span of one rank's timeline, microseconds on rank 0's clock.
#[derive(Clone, Debug, PartialEq)]
struct Span {
    start: f64,
    end: f64,
    category: usize,
    name: String,
}

/// What the page draws of a trace file.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    /// Per rank, its spans by start (enclosing first).
    spans: Vec<Vec<Span>>,
    /// Message arrows: (from rank, send time, to rank, receive time).
    arrows: Vec<(usize, f64, usize, f64)>,
    start: f64,
    end: f64,
}

impl Timeline {
    /// Reads a trace file written by spmd (or any Chrome Trace Event file with `X` events
    /// and `s`/`f` flows): each rank's main thread (`tid` 0), whose regions the report's
    /// figures are made of; other threads' tracks are left to a trace viewer.
    pub(crate) fn from_trace_json(text: &str) -> std::result::Result<Timeline, String> {
        let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let events = json["traceEvents"]
            .as_array()
            .ok_or("no traceEvents array")?;
        let mut t = Timeline {
            start: f64::INFINITY,
            end: f64::NEG_INFINITY,
            ..Timeline::default()
        };
        let mut flows: std::collections::HashMap<u64, (usize, f64)> = Default::default();
        let mut finishes = Vec::new();
        for e in events {
            let (Some(pid), Some(ts)) = (e["pid"].as_u64(), e["ts"].as_f64()) else {
                continue;
            };
            let pid = usize::try_from(pid).map_err(|_| "pid out of range")?;
            if pid > 1 << 16 {
                return Err(format!("pid {pid} is not a rank"));
            }
            match e["ph"].as_str() {
                // The rank's main thread: where its regions and messages are.
                Some("X") if e["tid"].as_u64().unwrap_or(0) == 0 => {
                    let end = ts + e["dur"].as_f64().unwrap_or(0.0);
                    if t.spans.len() <= pid {
                        t.spans.resize(pid + 1, Vec::new());
                    }
                    t.spans[pid].push(Span {
                        start: ts,
                        end,
                        category: category(e["cat"].as_str().unwrap_or("")),
                        name: e["name"].as_str().unwrap_or("?").to_owned(),
                    });
                    t.start = t.start.min(ts);
                    t.end = t.end.max(end);
                }
                Some("s") => {
                    if let Some(id) = e["id"].as_u64() {
                        flows.insert(id, (pid, ts));
                    }
                }
                Some("f") => {
                    if let Some(id) = e["id"].as_u64() {
                        finishes.push((id, pid, ts));
                    }
                }
                _ => {}
            }
        }
        if t.spans.is_empty() {
            return Err("the trace has no spans".into());
        }
        for (id, to, at) in finishes {
            if let Some(&(from, sent)) = flows.get(&id) {
                t.arrows.push((from, sent, to, at));
            }
        }
        for spans in &mut t.spans {
            spans.sort_by(|a, b| a.start.total_cmp(&b.start).then(b.end.total_cmp(&a.end)));
        }
        Ok(t)
    }

    /// Per rank and column of `[from, to)`: microseconds of each category, the innermost
    /// span deciding (time outside every span is category 0).
    fn columns(&self, from: f64, to: f64, n: usize) -> Vec<Vec<[f64; 4]>> {
        let width = (to - from) / n as f64;
        let bin = |cols: &mut [[f64; 4]], a: f64, b: f64, cat: usize| {
            let (a, b) = (a.max(from), b.min(to));
            if b <= a || width <= 0.0 {
                return;
            }
            let first = ((a - from) / width).floor() as usize;
            let last = (((b - from) / width).ceil() as usize).min(n);
            for (c, col) in cols.iter_mut().enumerate().take(last).skip(first) {
                let lo = from + c as f64 * width;
                let overlap = b.min(lo + width) - a.max(lo);
                if overlap > 0.0 {
                    col[cat] += overlap;
                }
            }
        };
        self.spans
            .iter()
            .map(|spans| {
                let mut cols = vec![[0.0; 4]; n];
                let mut stack: Vec<(f64, usize)> = Vec::new();
                let mut cursor = self.start;
                let close_until = |stack: &mut Vec<(f64, usize)>,
                                   cursor: &mut f64,
                                   cols: &mut [[f64; 4]],
                                   until: f64| {
                    while let Some(&(end, cat)) = stack.last() {
                        if end > until {
                            break;
                        }
                        bin(cols, *cursor, end, cat);
                        *cursor = cursor.max(end);
                        stack.pop();
                    }
                };
                for s in spans {
                    close_until(&mut stack, &mut cursor, &mut cols, s.start);
                    let current = stack.last().map_or(0, |top| top.1);
                    bin(&mut cols, cursor, s.start, current);
                    cursor = cursor.max(s.start);
                    stack.push((s.end, s.category));
                }
                close_until(&mut stack, &mut cursor, &mut cols, f64::INFINITY);
                bin(&mut cols, cursor, self.end, 0);
                cols
            })
            .collect()
    }

    /// The overview: one lane per rank, each column coloured by the category that took most
    /// of its time.
    fn overview_svg(&self, out: &mut String) {
        let ranks = self.spans.len();
        let lane = (360.0 / ranks as f64).clamp(3.0, 28.0);
        let height = lane * ranks as f64 + 30.0;
        let col_width = (WIDTH - LABEL) / COLUMNS as f64;
        let _ = write!(
            out,
            "<svg width=\"{WIDTH}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">"
        );
        for (rank, cols) in self
            .columns(self.start, self.end, COLUMNS)
            .iter()
            .enumerate()
        {
            let y = rank as f64 * lane;
            if lane >= 10.0 {
                let _ = write!(
                    out,
                    "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">rank {rank}</text>",
                    y + lane * 0.7
                );
            }
            let mut c = 0;
            while c < COLUMNS {
                let top = dominant(&cols[c]);
                let mut run = 1;
                while c + run < COLUMNS && dominant(&cols[c + run]) == top {
                    run += 1;
                }
                if let Some(cat) = top {
                    let _ = write!(
                        out,
                        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                         fill=\"{}\"/>",
                        LABEL + c as f64 * col_width,
                        y + 1.0,
                        run as f64 * col_width,
                        (lane - 2.0).max(1.0),
                        CATEGORIES[cat].1
                    );
                }
                c += run;
            }
        }
        axis(out, lane * ranks as f64 + 14.0, self.end - self.start, 0.0);
        out.push_str("</svg>");
    }

    /// The close-up: every span (nested ones lower) and arrow inside `[from, to)`.
    fn detail_svg(&self, out: &mut String, from: f64, to: f64) {
        let ranks = self.spans.len();
        let row = 14.0;
        let depth_rows = 4.0;
        let lane = row * depth_rows + 8.0;
        let height = lane * ranks as f64 + 30.0;
        let scale = (WIDTH - LABEL) / (to - from).max(1e-9);
        let x = |t: f64| LABEL + (t.clamp(from, to) - from) * scale;
        let _ = write!(
            out,
            "<svg width=\"{WIDTH}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">\
             <defs><marker id=\"head\" markerWidth=\"6\" markerHeight=\"6\" refX=\"5\" \
             refY=\"3\" orient=\"auto\"><path d=\"M0,0 L6,3 L0,6 z\" fill=\"#333\"/></marker>\
             </defs>"
        );
        for (rank, spans) in self.spans.iter().enumerate() {
            let top = rank as f64 * lane;
            let _ = write!(
                out,
                "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">rank {rank}</text>",
                top + 12.0
            );
            let mut open: Vec<f64> = Vec::new();
            for s in spans {
                while open.last().is_some_and(|&end| end <= s.start) {
                    open.pop();
                }
                let depth = open.len();
                open.push(s.end);
                if s.end < from || s.start >= to || depth as f64 >= depth_rows {
                    continue;
                }
                let (x0, x1) = (x(s.start), x(s.end));
                let y = top + depth as f64 * row;
                let _ = write!(
                    out,
                    "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{:.1}\" \
                     fill=\"{}\" stroke=\"#fff\" stroke-width=\"0.5\"><title>{} ({}, {})</title>\
                     </rect>",
                    (x1 - x0).max(0.5),
                    row - 1.0,
                    CATEGORIES[s.category].1,
                    escape(&s.name),
                    CATEGORIES[s.category].0,
                    format_seconds((s.end - s.start) * 1e-6)
                );
                if x1 - x0 > 7.0 * s.name.len() as f64 {
                    let _ = write!(
                        out,
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#fff\">{}</text>",
                        x0 + 2.0,
                        y + row - 4.0,
                        escape(&s.name)
                    );
                }
            }
        }
        for &(a, sent, b, taken) in &self.arrows {
            if sent < from || taken > to {
                continue;
            }
            let _ = write!(
                out,
                "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\" \
                 stroke-width=\"1\" marker-end=\"url(#head)\"/>",
                x(sent),
                a as f64 * lane + row / 2.0,
                x(taken),
                b as f64 * lane + row / 2.0
            );
        }
        axis(
            out,
            lane * ranks as f64 + 14.0,
            to - from,
            from - self.start,
        );
        out.push_str("</svg>");
    }

    /// The close-up's window: around the first message sent after the middle of the run,
    /// from a little before its send to a little after its receive (so the work it travelled
    /// behind is in view); without messages, a fiftieth of the run from its middle.
    fn detail_window(&self) -> (f64, f64) {
        let middle = self.start + (self.end - self.start) / 2.0;
        let first = self
            .arrows
            .iter()
            .filter(|a| a.1 >= middle)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        match first {
            Some(&(_, sent, _, taken)) => {
                let flight = (taken - sent).max(10.0);
                (sent - 0.5 * flight, taken + 0.5 * flight)
            }
            None => (middle, middle + ((self.end - self.start) / 50.0).max(20.0)),
        }
    }
}

/// The category with most time in a column, `None` for an empty column.
fn dominant(col: &[f64; 4]) -> Option<usize> {
    let (cat, &time) = col
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .expect("four categories");
    (time > 0.0).then_some(cat)
}

/// A time axis at height `y` under a chart spanning `span` microseconds from `offset`.
fn axis(out: &mut String, y: f64, span: f64, offset: f64) {
    for k in 0..=4 {
        let t = offset + span * k as f64 / 4.0;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"10\" fill=\"#555\">{}</text>",
            LABEL + (WIDTH - LABEL - 50.0) * k as f64 / 4.0,
            format_seconds(t * 1e-6)
        );
    }
}

fn legend(out: &mut String) {
    out.push_str("<p class=\"legend\">");
    for (name, colour) in CATEGORIES {
        let _ = write!(
            out,
            "<span><i style=\"background:{colour}\"></i>{}</span>",
            escape(name)
        );
    }
    out.push_str("</p>");
}

impl Report {
    /// The report as a self-contained HTML page (see [`write_html`](Self::write_html)).
    /// When the run was traced and the trace file can be read, the page draws its timeline.
    pub fn to_html(&self) -> String {
        let timeline = self
            .trace
            .as_ref()
            .and_then(|t| std::fs::read_to_string(&t.path).ok())
            .and_then(|text| Timeline::from_trace_json(&text).ok());
        self.html(timeline.as_ref())
    }

    /// Writes [`to_html`](Self::to_html) to `path`: one file, no script, readable in any
    /// browser offline.
    ///
    /// # Errors
    /// `Io` if the file cannot be written.
    pub fn write_html(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.to_html()).map_err(|e| {
            Error::io(
                format!("cannot write the HTML report to {}", path.display()),
                e,
            )
        })
    }

    fn html(&self, timeline: Option<&Timeline>) -> String {
        let mut out = String::with_capacity(64 * 1024);
        let title = escape(&self.program);
        let _ = write!(
            out,
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>spmd report: {title}\
             </title><style>body{{font-family:sans-serif;margin:24px;max-width:1000px;color:#222}}\
             table{{border-collapse:collapse;font-size:13px}}td,th{{padding:2px 10px;\
             text-align:right;border-bottom:1px solid #ddd}}td:first-child,th:first-child\
             {{text-align:left}}.warn{{color:#a33}}.legend span{{margin-right:16px;\
             font-size:13px}}.legend i{{display:inline-block;width:12px;height:12px;\
             margin-right:4px;vertical-align:middle}}</style></head><body>\
             <h1>{title}</h1><p>{} ranks &times; {} threads; {}</p>",
            self.ranks,
            self.threads_per_rank,
            match self.repetitions {
                1 => "one measurement".to_owned(),
                k => format!("medians of {k} repetitions"),
            }
        );
        self.headline(&mut out);
        self.rank_bars(&mut out);
        out.push_str("<h2>Timeline</h2>");
        match (timeline, &self.trace) {
            (Some(t), _) => {
                legend(&mut out);
                out.push_str("<h3>The whole run</h3>");
                t.overview_svg(&mut out);
                let (from, to) = t.detail_window();
                let _ = write!(
                    out,
                    "<h3>Close-up: {} from {} into the run, around a message (arrows: \
                     messages, send to receive)</h3>",
                    format_seconds((to - from) * 1e-6),
                    format_seconds((from - t.start) * 1e-6)
                );
                t.detail_svg(&mut out, from, to);
            }
            (None, Some(trace)) => {
                let _ = write!(
                    out,
                    "<p>The trace file {} could not be read.</p>",
                    escape(&trace.path.display().to_string())
                );
            }
            (None, None) => out.push_str(
                "<p>Not traced: run with <code>SPMD_TRACE=trace.json</code> (or \
                 <code>--trace</code> in the examples) to see every rank's timeline.</p>",
            ),
        }
        self.matrix_svg(&mut out);
        self.regions_table(&mut out);
        out.push_str("</body></html>\n");
        out
    }

    fn headline(&self, out: &mut String) {
        out.push_str("<table><tr><th></th><th>median</th><th>min</th><th>max</th></tr>");
        let mut row = |name: &str, s: super::Spread, show: &dyn Fn(f64) -> String| {
            let _ = write!(
                out,
                "<tr><td>{name}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                show(s.median),
                show(s.min),
                show(s.max)
            );
        };
        row("wall (slowest rank)", self.wall_s, &|x| format_seconds(x));
        if let (Some(b), Some(s), Some(e)) = (self.baseline_s, self.speedup, self.efficiency) {
            row("baseline (1 core)", b, &|x| format_seconds(x));
            row("speedup", s, &|x| format!("{x:.2}"));
            row("efficiency", e, &|x| format!("{:.1}%", 100.0 * x));
        }
        let _ = write!(
            out,
            "</table><p>comm fraction {:.1}%, imbalance {:.3} (slowest rank {})</p>",
            100.0 * self.comm_fraction,
            self.imbalance,
            self.slowest_rank
        );
        for w in &self.warnings {
            let _ = write!(out, "<p class=\"warn\">warning: {}</p>", escape(&w.message));
        }
    }

    /// One bar per rank: compute, then comm split into transfer and wait.
    fn rank_bars(&self, out: &mut String) {
        out.push_str("<h2>Where each rank's time went</h2>");
        legend(out);
        let longest = self
            .per_rank
            .iter()
            .map(|r| r.compute_s + r.comm_s)
            .fold(0.0, f64::max);
        if longest <= 0.0 {
            return;
        }
        let bar = 18.0;
        let height = bar * self.per_rank.len() as f64 + 24.0;
        let scale = (WIDTH - LABEL - 10.0) / longest;
        let _ = write!(
            out,
            "<svg width=\"{WIDTH}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\">"
        );
        for (rank, share) in self.per_rank.iter().enumerate() {
            let y = rank as f64 * bar;
            let _ = write!(
                out,
                "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">rank {rank}</text>",
                y + 13.0
            );
            let parts = [
                (share.compute_s, CATEGORIES[1]),
                ((share.comm_s - share.wait_s).max(0.0), CATEGORIES[2]),
                (share.wait_s, CATEGORIES[3]),
            ];
            let mut x = LABEL;
            for (seconds, (name, colour)) in parts {
                let w = seconds * scale;
                if w > 0.0 {
                    let _ = write!(
                        out,
                        "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" \
                         fill=\"{colour}\"><title>rank {rank} {name}: {}</title></rect>",
                        y + 2.0,
                        bar - 4.0,
                        format_seconds(seconds)
                    );
                }
                x += w;
            }
        }
        axis(
            out,
            bar * self.per_rank.len() as f64 + 14.0,
            longest * 1e6,
            0.0,
        );
        out.push_str("</svg>");
    }

    /// The point-to-point bytes from each rank (row) to each rank (column) as a heat map
    /// (ranks binned into at most 64 rows and columns).
    fn matrix_svg(&self, out: &mut String) {
        out.push_str("<h2>Communication matrix (point-to-point bytes, sender by row)</h2>");
        let m = &self.comm_matrix;
        if m.entries.is_empty() || m.ranks == 0 {
            out.push_str("<p>No point-to-point messages.</p>");
            return;
        }
        let bins = m.ranks.min(64);
        let mut cells = vec![vec![0_u64; bins]; bins];
        for e in &m.entries {
            let (r, c) = (e.from * bins / m.ranks, e.to * bins / m.ranks);
            if r < bins && c < bins {
                cells[r][c] += e.bytes;
            }
        }
        let most = cells.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
        let cell = (480.0 / bins as f64).clamp(6.0, 60.0);
        let side = cell * bins as f64;
        let _ = write!(
            out,
            "<svg width=\"{:.0}\" height=\"{:.0}\" xmlns=\"http://www.w3.org/2000/svg\">",
            side + LABEL,
            side + 20.0
        );
        for (r, row) in cells.iter().enumerate() {
            for (c, &bytes) in row.iter().enumerate() {
                // Darker for more bytes, on a log scale from 1 byte to the busiest pair.
                let level = if bytes == 0 {
                    0.0
                } else {
                    0.15 + 0.85 * (bytes as f64).ln_1p() / most.ln_1p()
                };
                let shade = |full: f64| (255.0 - level * (255.0 - full)).round() as u8;
                let _ = write!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{cell:.1}\" height=\"{cell:.1}\" \
                     fill=\"rgb({},{},{})\" stroke=\"#ddd\"><title>{} to {}: {bytes} bytes\
                     </title></rect>",
                    LABEL + c as f64 * cell,
                    r as f64 * cell,
                    shade(8.0),
                    shade(48.0),
                    shade(107.0),
                    r * m.ranks / bins,
                    c * m.ranks / bins
                );
            }
            if bins <= 16 {
                let _ = write!(
                    out,
                    "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">from {}</text>",
                    r as f64 * cell + cell / 2.0 + 4.0,
                    r
                );
            }
        }
        out.push_str("</svg><table><tr><th>operation</th><th>bytes</th><th>messages</th></tr>");
        for (op, bytes, messages) in m.operations() {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{bytes}</td><td>{messages}</td></tr>",
                escape(&op)
            );
        }
        out.push_str("</table>");
    }

    fn regions_table(&self, out: &mut String) {
        out.push_str("<h2>Regions</h2><table><tr>");
        for column in REGION_COLUMNS {
            let _ = write!(out, "<th>{column}</th>");
        }
        out.push_str("</tr>");
        for r in &self.regions {
            out.push_str("<tr>");
            for cell in region_cells(r) {
                let _ = write!(out, "<td>{}</td>", escape(&cell));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace_json() -> String {
        // Rank 0: a 100 us compute region holding a 20 us all_reduce; rank 1: a wait.
        // One message from rank 0 at 50 us to rank 1 at 60 us.
        r#"{"traceEvents":[
            {"name":"process_name","ph":"M","pid":0,"tid":0,"args":{"name":"rank 0"}},
            {"name":"step","cat":"compute","ph":"X","pid":0,"tid":0,"ts":0.000,"dur":100.000},
            {"name":"all_reduce","cat":"comm","ph":"X","pid":0,"tid":0,"ts":40.000,"dur":20.000},
            {"name":"wait <x>","cat":"wait","ph":"X","pid":1,"tid":0,"ts":50.000,"dur":50.000},
            {"name":"message","cat":"message","ph":"s","id":1,"pid":0,"tid":0,"ts":50.000},
            {"name":"message","cat":"message","ph":"f","bp":"e","id":1,"pid":1,"tid":0,"ts":60.000}
        ]}"#
        .to_owned()
    }

    #[test]
    fn the_innermost_region_decides_each_columns_time() {
        let t = Timeline::from_trace_json(&trace_json()).unwrap();
        assert_eq!((t.start, t.end), (0.0, 100.0));
        assert_eq!(t.arrows, [(0, 50.0, 1, 60.0)]);
        let cols = t.columns(0.0, 100.0, 5);
        // Rank 0: compute 0-40, comm 40-60, compute 60-100.
        let rank0: Vec<[f64; 4]> = cols[0].clone();
        assert_eq!(
            rank0,
            [
                [0.0, 20.0, 0.0, 0.0],
                [0.0, 20.0, 0.0, 0.0],
                [0.0, 0.0, 20.0, 0.0],
                [0.0, 20.0, 0.0, 0.0],
                [0.0, 20.0, 0.0, 0.0]
            ]
        );
        // Rank 1: outside regions 0-50, waiting 50-100.
        let rank1: Vec<Option<usize>> = cols[1].iter().map(dominant).collect();
        assert_eq!(rank1, [Some(0), Some(0), Some(3), Some(3), Some(3)]);
        assert_eq!(cols[1][2], [10.0, 0.0, 0.0, 10.0]);
    }

    #[test]
    fn bad_trace_files_are_refused() {
        assert!(Timeline::from_trace_json("not json").is_err());
        assert!(Timeline::from_trace_json(r#"{"traceEvents":[]}"#).is_err());
        assert!(Timeline::from_trace_json(r#"{"other":1}"#).is_err());
    }

    #[test]
    fn the_page_draws_the_timeline_and_escapes_names() {
        let t = Timeline::from_trace_json(&trace_json()).unwrap();
        let ranks: Vec<super::super::RankTimes> = (0..2)
            .map(|_| {
                serde_json::from_str(
                    r#"{"wall_s":1,"comm_s":0.25,"wait_s":0,"peak_rss_bytes":0,"regions":[]}"#,
                )
                .unwrap()
            })
            .collect();
        let report = Report::from_ranks("a<b", 1, false, &ranks, None);
        let page = report.html(Some(&t));
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<h1>a&lt;b</h1>"), "{page}");
        assert!(page.contains("wait &lt;x&gt;"), "{page}");
        assert!(page.contains("marker-end"), "the message arrow is drawn");
        assert!(page.contains("rank 1"));
        assert!(!page.contains("<script"));
        let untraced = report.to_html();
        assert!(untraced.contains("Not traced"), "{untraced}");
    }
}
