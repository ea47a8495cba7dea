//! `mosaic mon`: a live view of the cluster in the spirit of openMosix's
//! `mosmon`: one bar per node of its load, memory, speed or utilization
//! (mosmon's `l`, `m`, `s`, `u`), and a pane of the cluster's processes
//! with where each runs (`p`), refreshed every second.

use std::time::Duration;

use mosaic_proto::control::ProcInfo;
use mosaic_proto::{NodeInfo, NodeState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph};

/// What the chart shows, as mosmon's keys chose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Load per CPU (`l`).
    #[default]
    Load,
    /// Memory in use (`m`).
    Memory,
    /// Relative CPU speed (`s`).
    Speed,
    /// Share of the CPUs kept busy (`u`).
    Util,
}

impl View {
    /// The view a key selects (Tab: the next one).
    pub fn from_key(self, key: char) -> Option<View> {
        Some(match key {
            'l' => View::Load,
            'm' => View::Memory,
            's' => View::Speed,
            'u' => View::Util,
            '\t' => match self {
                View::Load => View::Memory,
                View::Memory => View::Speed,
                View::Speed => View::Util,
                View::Util => View::Load,
            },
            _ => return None,
        })
    }

    fn title(self) -> &'static str {
        match self {
            View::Load => "load per CPU (full bar = one busy process per CPU)",
            View::Memory => "memory used",
            View::Speed => "CPU speed (relative; full bar = the fastest node)",
            View::Util => "CPU utilization (share of the node's CPUs busy)",
        }
    }

    /// A bar's height (its chart's units), its text and colour, for a node
    /// that is alive and publishes its load.
    fn bar(self, l: &mosaic_proto::LoadVector) -> (u64, String, Color) {
        use mosaic_proto::abi::float_to_u64;
        match self {
            View::Load => {
                let per_cpu = l.load / f64::from(l.cpus.max(1));
                let colour = if per_cpu > 1.0 {
                    Color::Red
                } else {
                    Color::Green
                };
                (
                    float_to_u64((per_cpu * 100.0).round()),
                    format!("{:.2}", l.load),
                    colour,
                )
            }
            View::Memory => {
                let used = l
                    .mem_total
                    .saturating_sub(l.mem_free)
                    .saturating_mul(100)
                    .checked_div(l.mem_total)
                    .unwrap_or(0);
                (used, format!("{used}%"), Color::Cyan)
            }
            View::Speed => (u64::from(l.speed), l.speed.to_string(), Color::Yellow),
            View::Util => {
                let busy = float_to_u64((l.util * 100.0).round());
                (busy, format!("{busy}%"), Color::Magenta)
            }
        }
    }
}

/// What the screen shows besides the cluster's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screen {
    pub view: View,
    /// The process pane (`p` toggles it).
    pub procs: bool,
}

impl Default for Screen {
    fn default() -> Self {
        Screen {
            view: View::Load,
            procs: true,
        }
    }
}

/// Draws one screen: the chosen view's chart with one bar per node and,
/// below it, the cluster's processes and where each runs.
pub fn draw(
    frame: &mut Frame,
    (nodes, procs): (&[NodeInfo], &[ProcInfo]),
    screen: Screen,
    problem: Option<&str>,
) {
    let area = frame.area();
    let pane = if screen.procs {
        Constraint::Min(5)
    } else {
        Constraint::Length(0)
    };
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(1), Constraint::Percentage(55), pane])
        .split(area);
    let alive = nodes.iter().filter(|n| n.state == NodeState::Alive).count();
    let keys = "l load  m memory  s speed  u utilization  p processes  q quits";
    let title = match problem {
        Some(p) => format!("mosaic mon: {p}   ({keys})"),
        None => format!(
            "mosaic mon: {} nodes, {alive} alive   ({keys})",
            nodes.len()
        ),
    };
    frame.render_widget(Paragraph::new(title), rows[0]);

    // A node that is not alive says so under its bar.
    let label = |n: &NodeInfo| match n.state {
        NodeState::Alive => n.name.clone(),
        state => format!("{} {state}", n.name),
    };
    let bar_width = nodes
        .iter()
        .map(|n| u16::try_from(label(n).chars().count()).unwrap_or(u16::MAX))
        .max()
        .unwrap_or(5)
        .clamp(5, 12);
    let view = screen.view;
    let mut top = 0;
    let bars: Vec<Bar> = nodes
        .iter()
        .map(|n| {
            let (value, text, colour) = match (&n.load, n.state) {
                (Some(l), NodeState::Alive) => view.bar(l),
                (_, state) => (0, state.to_string(), Color::DarkGray),
            };
            top = top.max(value);
            Bar::default()
                .value(value)
                .text_value(text)
                .label(Line::from(label(n)))
                .style(Style::default().fg(colour))
        })
        .collect();
    // Load may pass one process per CPU; the others are shares of a whole
    // (speed: of the fastest node).
    let max = match view {
        View::Load => top.max(100),
        View::Speed => top.max(1),
        View::Memory | View::Util => 100,
    };
    frame.render_widget(
        BarChart::default()
            .block(Block::default().borders(Borders::ALL).title(view.title()))
            .bar_width(bar_width)
            .bar_gap(2)
            .max(max)
            .data(BarGroup::default().bars(&bars)),
        rows[1],
    );
    if screen.procs {
        draw_procs(frame, procs, rows[2]);
    }
}

/// The process pane: the cluster-wide table, those away from home first.
fn draw_procs(frame: &mut Frame, procs: &[ProcInfo], area: ratatui::layout::Rect) {
    use ratatui::widgets::{Cell, Row, Table};
    let mut shown: Vec<&ProcInfo> = procs.iter().collect();
    shown.sort_by_key(|p| (p.node == p.home, p.home.clone(), p.home_pid));
    let away = procs.iter().filter(|p| p.node != p.home).count();
    let rows = shown.iter().map(|p| {
        let style = if p.node == p.home {
            Style::default()
        } else {
            Style::default().fg(Color::Cyan)
        };
        Row::new(vec![
            Cell::from(p.home_pid.to_string()),
            Cell::from(p.home.clone()),
            Cell::from(p.node.clone()),
            Cell::from(p.state.clone()),
            Cell::from(format!("{:.1}", p.cpu)),
            Cell::from(format!("{}", p.mem_kb / 1024)),
            Cell::from(p.threads.max(1).to_string()),
            Cell::from(p.cmd.clone()),
        ])
        .style(style)
    });
    let header = Row::new([
        "HOME PID", "HOME", "WHERE", "STATE", "%CPU", "MiB", "THR", "COMMAND",
    ])
    .style(Style::default().fg(Color::DarkGray));
    let widths = [
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(4),
        Constraint::Min(10),
    ];
    let title = format!("processes: {}, {away} away from home", procs.len());
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

/// Runs the live view until `q`, Esc or Ctrl-C. `fetch` returns the node
/// table and the cluster's processes, or a message saying why it could
/// not.
pub fn run(
    mut fetch: impl FnMut() -> Result<(Vec<NodeInfo>, Vec<ProcInfo>), String>,
) -> anyhow::Result<()> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> anyhow::Result<()> {
        let (mut nodes, mut procs) = (Vec::new(), Vec::new());
        let mut screen = Screen::default();
        loop {
            let problem = match fetch() {
                Ok((n, p)) => {
                    (nodes, procs) = (n, p);
                    None
                }
                Err(e) => Some(e),
            };
            terminal.draw(|f| draw(f, (&nodes, &procs), screen, problem.as_deref()))?;
            let deadline = std::time::Instant::now() + Duration::from_secs(1);
            while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
                if !event::poll(left)? {
                    break;
                }
                if let Event::Key(k) = event::read()? {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                        return Ok(());
                    }
                    let key = match k.code {
                        KeyCode::Char(c) => c,
                        KeyCode::Tab => '\t',
                        _ => continue,
                    };
                    if key == 'p' {
                        screen.procs = !screen.procs;
                    } else if let Some(v) = screen.view.from_key(key) {
                        screen.view = v;
                    } else {
                        continue;
                    }
                    // A key is answered at once, with what was fetched.
                    terminal.draw(|f| draw(f, (&nodes, &procs), screen, problem.as_deref()))?;
                }
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaic_proto::LoadVector;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn node(name: &str, load: f64, state: NodeState) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            addr: "127.0.0.1:1".into(),
            state,
            generation: 1,
            is_self: false,
            load: Some(LoadVector {
                load,
                cpus: 1,
                speed: 1000,
                mem_total: 100,
                mem_free: 50,
                guests: 0,
                accepts_guests: true,
                ..Default::default()
            }),
            web: String::new(),
        }
    }

    /// Filled cells in the column of `name`'s label, above it, in the load chart.
    fn bar_height(buf: &ratatui::buffer::Buffer, name: &str, chart_bottom: u16) -> usize {
        let width = buf.area.width;
        let label_row = (0..chart_bottom)
            .rev()
            .find(|&y| row_text(buf, y).contains(name))
            .expect("label row");
        let x = u16::try_from(row_text(buf, label_row).find(name).unwrap()).unwrap();
        (0..label_row)
            .filter(|&y| x < width && buf[(x, y)].symbol() != " " && buf[(x, y)].symbol() != "─")
            .count()
    }

    fn row_text(buf: &ratatui::buffer::Buffer, y: u16) -> String {
        (0..buf.area.width)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect()
    }

    #[test]
    fn one_bar_per_node_and_busy_nodes_have_taller_bars() {
        let nodes = vec![
            node("node1", 0.0, NodeState::Alive),
            node("node2", 1.0, NodeState::Alive),
            node("node3", 0.5, NodeState::Dead),
        ];
        let mut term = Terminal::new(TestBackend::new(80, 30)).unwrap();
        let screen = Screen {
            view: View::Load,
            procs: false,
        };
        term.draw(|f| draw(f, (&nodes, &[]), screen, None)).unwrap();
        let buf = term.backend().buffer().clone();
        let screen: Vec<String> = (0..30).map(|y| row_text(&buf, y)).collect();
        let all = screen.join("\n");
        assert!(all.contains("3 nodes, 2 alive"), "{all}");
        for n in ["node1", "node2", "node3"] {
            assert_eq!(all.matches(n).count(), 1, "{n} needs one bar:\n{all}");
        }
        // The chart is the upper 55%: its labels are above row 18.
        let h1 = bar_height(&buf, "node1", 18);
        let h2 = bar_height(&buf, "node2", 18);
        assert!(
            h2 > h1 + 5,
            "busy node2 ({h2}) vs idle node1 ({h1}):\n{all}"
        );
        assert!(all.contains("dead"), "{all}");
    }

    fn screen_of(nodes: &[NodeInfo], procs: &[ProcInfo], screen: Screen) -> String {
        let mut term = Terminal::new(TestBackend::new(100, 30)).unwrap();
        term.draw(|f| draw(f, (nodes, procs), screen, None))
            .unwrap();
        let buf = term.backend().buffer().clone();
        (0..30)
            .map(|y| row_text(&buf, y))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn each_view_charts_its_own_figure_and_the_pane_shows_where_processes_run() {
        let mut nodes = vec![
            node("node1", 1.0, NodeState::Alive),
            node("node2", 0.0, NodeState::Alive),
        ];
        if let Some(l) = nodes[1].load.as_mut() {
            (l.speed, l.util, l.mem_free) = (2345, 0.37, 90);
        }
        let procs = [ProcInfo {
            home_pid: 4242,
            home: "node1".into(),
            node: "node2".into(),
            guest_pid: 17,
            cmd: "python3 job.py".into(),
            state: "running".into(),
            cpu: 99.5,
            mem_kb: 20480,
            cantmove: String::new(),
            lock: false,
            threads: 4,
        }];
        let mut v = View::Load;
        let mut seen = Vec::new();
        for key in ['m', 's', 'u', '\t'] {
            v = v.from_key(key).unwrap();
            seen.push(v);
        }
        assert_eq!(seen, [View::Memory, View::Speed, View::Util, View::Load]);
        assert_eq!(v.from_key('x'), None);
        let with = |view| Screen { view, procs: true };
        let load = screen_of(&nodes, &procs, with(View::Load));
        assert!(
            load.contains("load per CPU") && load.contains("1.00"),
            "{load}"
        );
        let mem = screen_of(&nodes, &procs, with(View::Memory));
        assert!(mem.contains("memory used") && mem.contains("10%"), "{mem}");
        let speed = screen_of(&nodes, &procs, with(View::Speed));
        assert!(
            speed.contains("CPU speed") && speed.contains("2345"),
            "{speed}"
        );
        let util = screen_of(&nodes, &procs, with(View::Util));
        assert!(
            util.contains("CPU utilization") && util.contains("37%"),
            "{util}"
        );
        let row = util
            .lines()
            .find(|l| l.contains("4242"))
            .unwrap_or_else(|| panic!("no process row:\n{util}"));
        for field in [
            "node1",
            "node2",
            "running",
            "99.5",
            "20",
            "4",
            "python3 job.py",
        ] {
            assert!(row.contains(field), "{field} in {row}");
        }
        assert!(util.contains("processes: 1, 1 away from home"), "{util}");
        let hidden = screen_of(
            &nodes,
            &procs,
            Screen {
                view: View::Load,
                procs: false,
            },
        );
        assert!(!hidden.contains("4242"), "{hidden}");
    }
}
