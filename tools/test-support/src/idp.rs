//! Test support for auth (test-only): keys and tokens minted by an independent implementation
//! (PyJWT and cryptography, `scripts/jwt_mint.py`), and a local IdP serving a JWKS and a discovery
//! document whose keys can change, and which can hang or stop, while a test runs.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

fn scripts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

/// The venv's python, installed once per machine by `scripts/jwt-tools.sh`.
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new(scripts_dir().join("jwt-tools.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/jwt-tools.sh");
        assert!(out.status.success(), "scripts/jwt-tools.sh failed");
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// What `scripts/jwt_mint.py` returns: public JWKs by key name, tokens by token name.
#[derive(Debug, Deserialize)]
pub struct Minted {
    pub jwks: HashMap<String, Value>,
    pub tokens: HashMap<String, String>,
}

impl Minted {
    pub fn token(&self, name: &str) -> &str {
        self.tokens.get(name).unwrap_or_else(|| panic!("no token {name}"))
    }

    /// A JWKS document of the named keys.
    pub fn jwks(&self, names: &[&str]) -> Value {
        let keys: Vec<&Value> = names
            .iter()
            .map(|n| self.jwks.get(*n).unwrap_or_else(|| panic!("no key {n}")))
            .collect();
        json!({ "keys": keys })
    }
}

/// Runs `scripts/jwt_mint.py` on `spec` (its docstring describes the format).
pub fn mint(spec: &Value) -> Minted {
    let mut child = Command::new(python())
        .arg(scripts_dir().join("jwt_mint.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting jwt_mint.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(spec.to_string().as_bytes())
        .expect("writing the spec");
    let out = child.wait_with_output().expect("jwt_mint.py");
    assert!(out.status.success(), "jwt_mint.py failed");
    serde_json::from_slice(&out.stdout).expect("jwt_mint.py output")
}

/// Seconds since the epoch, for claims.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Default)]
struct IdpState {
    jwks: Value,
    /// Overrides the discovery document's `issuer` (the "names another issuer" case).
    discovery_issuer: Option<String>,
    jwks_requests: usize,
    /// Accept connections but never answer: a wedged IdP.
    hang: bool,
}

/// A local IdP on 127.0.0.1: `GET /jwks.json` and `GET /.well-known/openid-configuration`.
pub struct LocalIdp {
    port: u16,
    state: Arc<Mutex<IdpState>>,
    task: Option<JoinHandle<()>>,
}

impl LocalIdp {
    pub async fn start(jwks: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(IdpState {
            jwks,
            ..IdpState::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut len = 0;
                    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
                        match socket.read(&mut buf[len..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => len += n,
                        }
                    }
                    let request = String::from_utf8_lossy(&buf[..len]).to_string();
                    let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let reply = {
                        let mut s = state.lock().unwrap();
                        if s.hang {
                            None
                        } else if path == "/jwks.json" {
                            s.jwks_requests += 1;
                            Some((200, s.jwks.to_string()))
                        } else if path == "/.well-known/openid-configuration" {
                            let base = format!("http://127.0.0.1:{port}");
                            let issuer = s.discovery_issuer.clone().unwrap_or_else(|| base.clone());
                            Some((
                                200,
                                json!({"issuer": issuer, "jwks_uri": format!("{base}/jwks.json")})
                                    .to_string(),
                            ))
                        } else {
                            Some((404, "{}".to_owned()))
                        }
                    };
                    let Some((status, body)) = reply else {
                        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                        return;
                    };
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            port,
            state,
            task: Some(task),
        }
    }

    /// The issuer URL whose discovery document this IdP serves.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/jwks.json", self.issuer())
    }

    /// Publishes another key set (a rotation).
    pub fn set_jwks(&self, jwks: Value) {
        self.state.lock().unwrap().jwks = jwks;
    }

    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.state.lock().unwrap().discovery_issuer = Some(issuer.to_owned());
    }

    pub fn hang(&self) {
        self.state.lock().unwrap().hang = true;
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_requests(&self) -> usize {
        self.state.lock().unwrap().jwks_requests
    }

    /// Stops listening: connections are refused from now on.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for LocalIdp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `Authorization: Bearer <token>` headers.
pub fn bearer(token: &str) -> lambda_http::http::HeaderMap {
    let mut headers = lambda_http::http::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("header value");
    headers.insert(lambda_http::http::header::AUTHORIZATION, value);
    headers
}

/// An [`AuthConfig`](shared::auth::AuthConfig) from `JWT_*` pairs, with re-fetch intervals short enough for tests.
pub fn config(vars: &[(&str, &str)]) -> shared::auth::AuthConfig {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut config =
        shared::auth::AuthConfig::from_env(&shared::env::Env::new(move |name| vars.get(name).cloned()))
            .expect("auth config");
    config.fetch_timeout = std::time::Duration::from_millis(500);
    config.refetch_interval = std::time::Duration::from_millis(200);
    config
}
