//! Lambda-native log lines: one JSON object per line with the keys of Powertools for AWS Lambda
//! (`timestamp`, `level`, `message`, `service`, `cold_start`, `request_id`, `xray_trace_id`,
//! `location`), the event's own fields flattened beside them; and CloudWatch EMF documents
//! ([`metrics`]) written as they are, with the invocation's `request_id` added, plus one `ColdStart`
//! metric when the environment's first invocation begins.
//!
//! The invocation comes from lambda_runtime's span (`Lambda runtime invoke`, with `requestId` and
//! `xrayTraceId`); Lambda runs one invocation at a time per environment, so the first such span is the
//! cold start. Hand-written rather than tracing-subscriber's JSON formatter, which nests span and event
//! fields (`span.requestId`, `fields.message`) where Lambda users look for them at the top level.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The target of [`metrics`] events: written whatever the log level.
pub const METRICS_TARGET: &str = "metrics";

/// The name of lambda_runtime's per-invocation span.
const INVOCATION_SPAN: &str = "Lambda runtime invoke";

/// Keys of the line itself: an event field of the same name is written as `field_<name>`.
const RESERVED: [&str; 8] = [
    "timestamp",
    "level",
    "message",
    "service",
    "cold_start",
    "request_id",
    "xray_trace_id",
    "location",
];

/// Writes one EMF document (a JSON object) as a line of its own, with the invocation's `request_id`.
pub fn metrics(document: &Value) {
    tracing::info!(target: METRICS_TARGET, emf = %document);
}

/// The layer: lines of `service`, written to `writer` (stdout in Lambda).
pub struct LambdaJson<W> {
    service: String,
    writer: W,
    cold: AtomicBool,
}

impl<W> LambdaJson<W> {
    pub fn new(service: &str, writer: W) -> Self {
        Self {
            service: service.to_owned(),
            writer,
            cold: AtomicBool::new(true),
        }
    }
}

/// What every line of one invocation carries.
#[derive(Debug, Clone)]
struct Invocation {
    request_id: String,
    xray_trace_id: Option<String>,
    cold_start: bool,
}

impl<S, W> Layer<S> for LambdaJson<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != INVOCATION_SPAN {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let Some(Value::String(request_id)) = fields.0.remove("requestId") else {
            return;
        };
        let invocation = Invocation {
            request_id,
            xray_trace_id: match fields.0.remove("xrayTraceId") {
                Some(Value::String(id)) => Some(id),
                _ => None,
            },
            cold_start: self.cold.swap(false, Ordering::Relaxed),
        };
        if invocation.cold_start {
            self.write(cold_start_metric(&self.service, &invocation));
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(invocation);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let invocation = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<Invocation>().cloned())
        });
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = if event.metadata().target() == METRICS_TARGET {
            match fields.0.remove("emf") {
                Some(Value::String(document)) => with_request_id(document, invocation.as_ref()),
                _ => return,
            }
        } else {
            self.log_line(event, fields.0, invocation.as_ref())
        };
        self.write(line);
    }
}

impl<W: for<'w> MakeWriter<'w>> LambdaJson<W> {
    fn log_line(
        &self,
        event: &Event<'_>,
        mut fields: Map<String, Value>,
        invocation: Option<&Invocation>,
    ) -> String {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true).into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        line.insert(
            "message".into(),
            fields
                .remove("message")
                .unwrap_or_else(|| Value::String(String::new())),
        );
        line.insert("service".into(), self.service.as_str().into());
        if let Some(invocation) = invocation {
            line.insert("cold_start".into(), invocation.cold_start.into());
            line.insert("request_id".into(), invocation.request_id.as_str().into());
            if let Some(trace) = &invocation.xray_trace_id {
                line.insert("xray_trace_id".into(), trace.as_str().into());
            }
        }
        line.insert(
            "location".into(),
            format!(
                "{}:{}",
                meta.module_path().unwrap_or_default(),
                meta.line().unwrap_or(0)
            )
            .into(),
        );
        for (name, value) in fields {
            let key = if RESERVED.contains(&name.as_str()) {
                format!("field_{name}")
            } else {
                name
            };
            line.insert(key, value);
        }
        Value::Object(line).to_string()
    }

    fn write(&self, mut line: String) {
        line.push('\n');
        // One write per line, so that lines of concurrent tasks never interleave.
        let _ = self.writer.make_writer().write_all(line.as_bytes());
    }
}

/// `document` (a JSON object) with `"request_id"` added before its closing brace.
fn with_request_id(mut document: String, invocation: Option<&Invocation>) -> String {
    if let Some(invocation) = invocation {
        if document.ends_with('}') && document.len() > 2 {
            document.pop();
            let _ = write!(
                document,
                ",\"request_id\":{}}}",
                Value::String(invocation.request_id.clone())
            );
        }
    }
    document
}

/// Powertools' cold-start metric: `ColdStart` 1, dimension `service`, once per environment.
fn cold_start_metric(service: &str, invocation: &Invocation) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "DashboardCache",
                "Dimensions": [["service"]],
                "Metrics": [{ "Name": "ColdStart", "Unit": "Count" }],
            }],
        },
        "service": service,
        "ColdStart": 1,
        "request_id": invocation.request_id,
    })
    .to_string()
}

/// An event's or a span's fields as JSON values.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}
