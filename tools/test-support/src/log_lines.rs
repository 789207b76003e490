//! The log and metrics lines a function writes in Lambda (its JSON format), captured in memory: the
//! function's own layer over a buffer, installed as the test binary's global subscriber. Global, not
//! per thread: with a scoped one, tests running beside it on other threads reset tracing's cached
//! level and interest, and the events of the request under test were dropped. Tests find their own
//! lines by their request ids.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;
use shared::platform::log::LambdaJson;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Lines written while the guard of [`capture`] lives.
#[derive(Clone, Default)]
pub struct Lines(Arc<Mutex<Vec<u8>>>);

impl Lines {
    /// Every line, each parsed as JSON (a line that is not JSON fails the test).
    pub fn parsed(&self) -> Vec<Value> {
        String::from_utf8(self.bytes())
            .expect("UTF-8 lines")
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
            .collect()
    }

    /// The WARN and ERROR lines that contain `text` (a tenant's id, a key), as written: what a
    /// failing test shows of why.
    pub fn warnings_mentioning(&self, text: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.bytes())
            .lines()
            .filter(|line| line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#))
            .filter(|line| line.contains(text))
            .map(str::to_owned)
            .collect()
    }

    /// What was written so far.
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Lines {
    type Writer = Lines;
    fn make_writer(&'a self) -> Lines {
        self.clone()
    }
}

/// Everything logged in this test binary from the first call on, as `shared::init_process` sets it
/// up in Lambda for `service` (the first caller's).
pub fn capture(service: &str) -> Lines {
    static LINES: OnceLock<Lines> = OnceLock::new();
    LINES
        .get_or_init(|| {
            let lines = Lines::default();
            let subscriber = tracing_subscriber::registry().with(LambdaJson::new(service, lines.clone()));
            if tracing::subscriber::set_global_default(subscriber).is_err() {
                panic!("another global subscriber is installed in this test binary");
            }
            lines
        })
        .clone()
}
