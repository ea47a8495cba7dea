//! The local control socket, the daemon's side (the client side, typed, is
//! the `mosaic-client` crate).
//!
//! One JSON request per line, one JSON response per line
//! ([`mosaic_proto::control`]). The socket is made mode 0600: only root (the
//! owner) may steer the daemon.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use mosaic_proto::{ControlRequest, ControlResponse};

/// Serves the control socket until the listener fails; `handle` answers
/// each request.
pub async fn serve<F, Fut>(listener: tokio::net::UnixListener, handle: F)
where
    F: Fn(ControlRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ControlResponse> + Send,
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let response = match serde_json::from_str::<ControlRequest>(&line) {
                    Ok(req) => handle(req).await,
                    Err(e) => ControlResponse::Error {
                        message: format!("malformed request: {e}"),
                    },
                };
                let mut out = serde_json::to_string(&response).expect("responses serialize");
                out.push('\n');
                if w.write_all(out.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Binds the control socket at `path` (mode 0600), replacing a stale socket
/// file but refusing to steal one a live daemon answers on.
pub fn bind(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another mosaicd already answers on {}; stop it first or set control_socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot bind control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    Ok(listener)
}
