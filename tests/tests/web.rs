//! The web view (`mosaicd`'s page), in a real browser: Debian's Chromium,
//! headless, driven through its chromedriver (W3C WebDriver, by the
//! fantoccini crate).
//!
//! A 3-node local cluster serves it on every node. The test opens node1's
//! page at the address `mosaic web` prints and checks that it shows every
//! node, that a process moved with `mosaic migrate` changes node on the
//! page, that a process dropped on a node's card migrates there (also one
//! whose home is another node: the page asks that home's view), and that
//! requests without the token are refused and move nothing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mosaic_tests::{Cluster, bin, text, wait_for};

/// Where Debian puts Chromium and its WebDriver (`.ci/run` installs them).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Starts a sleeping managed process on `node` (locked, so the balancer
/// leaves it where the test puts it); its PID there, and the `cluster
/// exec` that runs it.
fn sleeper(c: &Cluster, node: &str, name: &str) -> (i32, std::process::Child) {
    let pid_file = c.dir.join(format!("{name}.pid"));
    let script = format!(
        "import os, time\n\
         open('{0}.tmp', 'w').write(str(os.getpid()))\n\
         os.rename('{0}.tmp', '{0}')\n\
         for _ in range(6000): time.sleep(0.1)\n",
        pid_file.display()
    );
    let mosaic = bin("mosaic");
    let run = c
        .command(&[
            "cluster",
            "exec",
            node,
            "--",
            mosaic.to_str().unwrap(),
            "run",
            "--lock",
            "--",
            "python3",
            "-c",
            &script,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = mosaic_tests::wait_for_pid_file(&format!("{name}'s pid"), &pid_file);
    (pid, run)
}

/// Where `home`'s process `pid` runs, by its home's `mosaic ps`.
fn runs_on(c: &Cluster, home: &str, pid: i32) -> Option<String> {
    let ps = c.exec(home, &[bin("mosaic").to_str().unwrap(), "ps", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&ps.stdout).ok()?;
    rows.iter()
        .find(|r| r["home"] == home && r["home_pid"] == pid)
        .and_then(|r| r["node"].as_str().map(str::to_owned))
}

/// One HTTP/1.1 request to `addr`; (status, body).
fn http(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_owned())
}

/// A headless Chromium driven through Debian's chromedriver (W3C
/// WebDriver), on a runtime of its own.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<fantoccini::Client>,
    driver: std::process::Child,
}

impl Browser {
    fn start(dir: &Path, port: u16) -> Browser {
        for needed in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(needed).exists(),
                "the web view test needs Debian's chromium and chromium-driver ({needed}): apt-get install chromium chromium-driver (.ci/run does)"
            );
        }
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let driver = std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let profile = dir.join("chromium-profile");
        // This machine's network is closed: Chromium's background
        // connections only fail, many at a time.
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = wait_for("chromedriver and chromium", Duration::from_secs(60), || {
            rt.block_on(
                fantoccini::ClientBuilder::new(
                    hyper_util::client::legacy::connect::HttpConnector::new(),
                )
                .capabilities(caps.clone())
                .connect(&url),
            )
            .map_err(|e| e.to_string())
        });
        Browser {
            rt,
            client: Some(client),
            driver,
        }
    }

    fn client(&self) -> &fantoccini::Client {
        self.client.as_ref().unwrap()
    }

    fn goto(&self, url: &str) {
        self.rt.block_on(self.client().goto(url)).unwrap();
    }

    /// Evaluates the expression `js` in the page; its value as JSON.
    fn eval(&self, js: &str) -> serde_json::Value {
        let script = format!("return ({js});");
        self.rt
            .block_on(self.client().execute(&script, Vec::new()))
            .unwrap()
    }

    fn screenshot(&self) -> Vec<u8> {
        self.rt.block_on(self.client().screenshot()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The node a process's row shows, on the page.
fn shown_on(tab: &Browser, home: &str, pid: i32) -> String {
    let js = format!(
        "(() => {{ const td = document.querySelector('tr[data-key=\"{home}:{pid}\"] td.where'); return td ? td.textContent : ''; }})()"
    );
    tab.eval(&js).as_str().unwrap_or_default().to_owned()
}

/// Drags `home:pid`'s row onto `node`'s card as a user's drag does: the
/// same events, in order, through the page's own handlers.
fn drag(tab: &Browser, home: &str, pid: i32, node: &str) {
    let js = format!(
        "(() => {{
            const row = document.querySelector('tr[data-key=\"{home}:{pid}\"]');
            const card = document.querySelector('.node[data-node=\"{node}\"]');
            if (!row || !card) return 'missing ' + (!row ? 'row' : 'card');
            const dt = new DataTransfer();
            const ev = (type, target) => target.dispatchEvent(new DragEvent(type, {{ dataTransfer: dt, bubbles: true, cancelable: true }}));
            ev('dragstart', row);
            ev('dragenter', card);
            ev('dragover', card);
            ev('drop', card);
            ev('dragend', row);
            return 'dropped';
        }})()"
    );
    assert_eq!(tab.eval(&js), "dropped");
}

#[test]
fn the_web_view_shows_the_cluster_follows_migrations_and_moves_a_dropped_process() {
    let c = Cluster::up("web", 3, 14946);
    let mosaic = bin("mosaic");
    let mosaic = mosaic.to_str().unwrap();

    // The address, with the token, from inside node1 and from the host.
    let out = c.exec("node1", &[mosaic, "web"]);
    assert!(out.status.success(), "{}", text(&out));
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let from_host = c.mosaic(&["--socket", c.socket("node1").to_str().unwrap(), "web"]);
    assert_eq!(String::from_utf8_lossy(&from_host.stdout).trim(), url);
    let addr = url
        .strip_prefix("http://")
        .and_then(|u| u.split_once('/'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_else(|| panic!("not a web view address: {url}"));
    assert_eq!(addr, "127.0.0.11:14948", "{url}");
    let token = url.split_once("#token=").map(|x| x.1.to_owned()).unwrap();

    let (a, run_a) = sleeper(&c, "node1", "a");
    let (b, run_b) = sleeper(&c, "node1", "b");
    let (d, run_d) = sleeper(&c, "node2", "d");

    // No authority, no data and no move.
    let (status, body) = http(
        &addr,
        "GET /api/state HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("python3"), "{body}");
    let wrong = "0".repeat(64);
    let (status, body) = http(
        &addr,
        &format!(
            "GET /api/state HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {wrong}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 403, "{body}");
    let mv = format!("{{\"pid\": {a}, \"node\": \"node3\"}}");
    let (status, body) = http(
        &addr,
        &format!(
            "POST /api/migrate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{mv}",
            mv.len()
        ),
    );
    assert_eq!(status, 401, "{body}");
    // The page itself holds no data.
    let (status, page) = http(
        &addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(!page.contains("python3") && !page.contains(&token));
    // With the token the API answers.
    let (status, body) = http(
        &addr,
        &format!(
            "GET /api/state HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(runs_on(&c, "node1", a).as_deref(), Some("node1"));

    let tab = Browser::start(&c.dir, 14950);

    // Without the token the page says what to do.
    tab.goto(&format!("http://{addr}/"));
    wait_for(
        "the page to ask for the token",
        Duration::from_secs(10),
        || {
            let said = tab.eval("document.getElementById('denied').textContent");
            said.as_str()
                .filter(|s| s.contains("mosaic web"))
                .map(|_| ())
                .ok_or(format!("{said}"))
        },
    );

    tab.goto(&url);
    // Every node, alive, with charts.
    wait_for("three nodes on the page", Duration::from_secs(30), || {
        let cards = tab.eval(
            "[...document.querySelectorAll('#nodes .node')].map(n => n.dataset.node + ' ' + n.querySelector('.badge').textContent + ' ' + n.querySelectorAll('svg polyline').length).join(', ')",
        );
        (cards == "node1 alive 3, node2 alive 3, node3 alive 3")
            .then_some(())
            .ok_or(format!("{cards}"))
    });
    wait_for("the processes on the page", Duration::from_secs(20), || {
        let shown = [
            shown_on(&tab, "node1", a),
            shown_on(&tab, "node1", b),
            shown_on(&tab, "node2", d),
        ];
        (shown == ["node1", "node1", "node2"])
            .then_some(())
            .ok_or(format!("{shown:?}"))
    });

    // A process moved with `mosaic migrate` changes node on the page.
    let asked = Instant::now();
    c.migrate(a, "node2");
    let moved = Instant::now();
    wait_for("the page to show the move", Duration::from_secs(20), || {
        let on = shown_on(&tab, "node1", a);
        (on == "node2").then_some(()).ok_or(on)
    });
    let seen = moved.elapsed();
    eprintln!(
        "web view: the move took {:?}; the page showed it {:?} after `mosaic migrate` returned",
        moved - asked,
        seen
    );
    wait_for(
        "the migration in the page's log",
        Duration::from_secs(10),
        || {
            let log = tab.eval("document.getElementById('events').textContent");
            let log = log.as_str().unwrap_or_default();
            log.contains(&format!("node1:{a} node1 → node2"))
                .then_some(())
                .ok_or(log.to_owned())
        },
    );

    // A process dropped on a node's card migrates there; one whose home
    // is node2, from node1's page (node2's view moves it); and one back
    // home by a drop on its home's card.
    for (home, pid, to) in [
        ("node1", b, "node3"),
        ("node2", d, "node3"),
        ("node1", a, "node1"),
    ] {
        drag(&tab, home, pid, to);
        wait_for(
            &format!("{home}:{pid} on {to}"),
            Duration::from_secs(60),
            || {
                let on = runs_on(&c, home, pid);
                (on.as_deref() == Some(to))
                    .then_some(())
                    .ok_or(format!("{on:?}"))
            },
        );
    }
    wait_for(
        "the page to show all three",
        Duration::from_secs(20),
        || {
            let shown = [
                shown_on(&tab, "node1", a),
                shown_on(&tab, "node1", b),
                shown_on(&tab, "node2", d),
            ];
            (shown == ["node1", "node3", "node3"])
                .then_some(())
                .ok_or(format!("{shown:?}"))
        },
    );
    let status = tab.eval("document.getElementById('status').textContent");
    assert!(
        status
            .as_str()
            .unwrap_or_default()
            .contains("now runs on node1"),
        "{status}"
    );
    let png = tab.screenshot();
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-view.png");
    std::fs::write(&shot, png).unwrap();
    eprintln!("web view: screenshot in {}", shot.display());
    for mut run in [run_a, run_b, run_d] {
        let _ = run.kill();
        let _ = run.wait();
    }
    for node in ["node1", "node2", "node3"] {
        let log = c.log(node);
        assert!(!log.contains("panicked"), "{node}: {log}");
    }
}
