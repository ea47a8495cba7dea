//! `mosaic mon`: a live view of every node's load and memory, in the spirit
//! of openMosix's `mosmon`: one bar per node, refreshed every second.

use std::time::Duration;

use mosaic_proto::{NodeInfo, NodeState};
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Borders, Paragraph};

/// Draws one screen: a load chart and a memory chart with one bar per node.
pub fn draw(frame: &mut Frame, nodes: &[NodeInfo], problem: Option<&str>) {
    let area = frame.area();
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Percentage(60),
            Constraint::Min(5),
        ])
        .split(area);
    let alive = nodes.iter().filter(|n| n.state == NodeState::Alive).count();
    let title = match problem {
        Some(p) => format!("mosaic mon: {p}   (q quits)"),
        None => format!(
            "mosaic mon: {} nodes, {alive} alive   (q quits)",
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
    let load_bars: Vec<Bar> = nodes
        .iter()
        .map(|n| {
            let (value, text, color) = match (&n.load, n.state) {
                (Some(l), NodeState::Alive) => {
                    let per_cpu = l.load / f64::from(l.cpus.max(1));
                    (
                        mosaic_proto::abi::float_to_u64((per_cpu * 100.0).round()),
                        format!("{:.2}", l.load),
                        if per_cpu > 1.0 {
                            Color::Red
                        } else {
                            Color::Green
                        },
                    )
                }
                (_, state) => (0, state.to_string(), Color::DarkGray),
            };
            Bar::default()
                .value(value)
                .text_value(text)
                .label(Line::from(label(n)))
                .style(Style::default().fg(color))
        })
        .collect();
    let load_max = nodes
        .iter()
        .filter(|n| n.state == NodeState::Alive)
        .filter_map(|n| n.load.as_ref())
        .map(|l| {
            mosaic_proto::abi::float_to_u64((l.load / f64::from(l.cpus.max(1)) * 100.0).round())
        })
        .max()
        .unwrap_or(0)
        .max(100);
    frame.render_widget(
        BarChart::default()
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title("load per CPU (full bar = one busy process per CPU)"),
            )
            .bar_width(bar_width)
            .bar_gap(2)
            .max(load_max)
            .data(BarGroup::default().bars(&load_bars)),
        rows[1],
    );

    let mem_bars: Vec<Bar> = nodes
        .iter()
        .map(|n| {
            let (value, text) = match (&n.load, n.state) {
                (Some(l), NodeState::Alive) if l.mem_total > 0 => {
                    let used = l.mem_total.saturating_sub(l.mem_free) * 100 / l.mem_total;
                    (used, format!("{used}%"))
                }
                (_, state) => (0, state.to_string()),
            };
            Bar::default()
                .value(value)
                .text_value(text)
                .label(Line::from(label(n)))
                .style(Style::default().fg(Color::Cyan))
        })
        .collect();
    frame.render_widget(
        BarChart::default()
            .block(Block::default().borders(Borders::ALL).title("memory used"))
            .bar_width(bar_width)
            .bar_gap(2)
            .max(100)
            .data(BarGroup::default().bars(&mem_bars)),
        rows[2],
    );
}

/// Runs the live view until `q`, Esc or Ctrl-C. `fetch` returns the node
/// table or a message saying why it could not.
pub fn run(mut fetch: impl FnMut() -> Result<Vec<NodeInfo>, String>) -> anyhow::Result<()> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> anyhow::Result<()> {
        let mut nodes = Vec::new();
        loop {
            let problem = match fetch() {
                Ok(n) => {
                    nodes = n;
                    None
                }
                Err(e) => Some(e),
            };
            terminal.draw(|f| draw(f, &nodes, problem.as_deref()))?;
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
        term.draw(|f| draw(f, &nodes, None)).unwrap();
        let buf = term.backend().buffer().clone();
        let screen: Vec<String> = (0..30).map(|y| row_text(&buf, y)).collect();
        let all = screen.join("\n");
        assert!(all.contains("3 nodes, 2 alive"), "{all}");
        for n in ["node1", "node2", "node3"] {
            assert_eq!(
                all.matches(n).count(),
                2,
                "{n} needs one bar in each chart:\n{all}"
            );
        }
        // The load chart is the upper 60%: its labels are above row 19.
        let h1 = bar_height(&buf, "node1", 19);
        let h2 = bar_height(&buf, "node2", 19);
        assert!(
            h2 > h1 + 5,
            "busy node2 ({h2}) vs idle node1 ({h1}):\n{all}"
        );
        assert!(all.contains("dead"), "{all}");
    }
}
