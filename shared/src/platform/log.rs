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
//!
//! Every served bundle writes a line and a metrics document, so both are written straight into one
//! buffer per line (strings escaped by serde_json), without a JSON tree in between: building one cost
//! a cache hit about 5 µs (bench figure 1b).

use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
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
pub fn metrics(document: &str) {
    tracing::info!(target: METRICS_TARGET, emf = document);
}

/// The layer: lines of `service`, written to `writer` (stdout in Lambda).
pub struct LambdaJson<W> {
    /// `,"service":"<service>"`, as every line writes it.
    service_key: Vec<u8>,
    writer: W,
    cold: AtomicBool,
}

impl<W> LambdaJson<W> {
    pub fn new(service: &str, writer: W) -> Self {
        let mut service_key = b",\"service\":".to_vec();
        json_string(&mut service_key, service);
        Self {
            service_key,
            writer,
            cold: AtomicBool::new(true),
        }
    }
}

/// What every line of one invocation carries, kept in its span.
#[derive(Debug)]
struct Invocation {
    request_id: String,
    cold_start: bool,
    /// `,"cold_start":…,"request_id":…` and `,"xray_trace_id":…` when traced: the log lines' part.
    keys: Vec<u8>,
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
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        let Some(request_id) = fields.request_id else {
            return;
        };
        let cold_start = self.cold.swap(false, Ordering::Relaxed);
        let mut keys = format!(",\"cold_start\":{cold_start},\"request_id\":").into_bytes();
        json_string(&mut keys, &request_id);
        if let Some(trace) = &fields.xray_trace_id {
            keys.extend_from_slice(b",\"xray_trace_id\":");
            json_string(&mut keys, trace);
        }
        let invocation = Invocation {
            request_id,
            cold_start,
            keys,
        };
        if invocation.cold_start {
            self.write(cold_start_metric(&self.service_key, &invocation));
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Arc::new(invocation));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let invocation = ctx.event_scope(event).and_then(|scope| {
            scope
                .from_root()
                .find_map(|span| span.extensions().get::<Arc<Invocation>>().cloned())
        });
        let invocation = invocation.as_deref();
        let line = if event.metadata().target() == METRICS_TARGET {
            let mut emf = Emf::default();
            event.record(&mut emf);
            match emf.0 {
                Some(document) => with_request_id(document.into_bytes(), invocation),
                None => return,
            }
        } else {
            let mut fields = EventFields::default();
            event.record(&mut fields);
            self.log_line(event, fields, invocation)
        };
        self.write(line);
    }
}

impl<W: for<'w> MakeWriter<'w>> LambdaJson<W> {
    /// `{"timestamp":…,"level":…,"message":…,"service":…,` the invocation's keys, `"location":…`,
    /// then the event's own fields in the order it gave them.
    fn log_line(&self, event: &Event<'_>, fields: EventFields, invocation: Option<&Invocation>) -> Vec<u8> {
        let meta = event.metadata();
        let mut line = Vec::with_capacity(192 + fields.pairs.len());
        line.extend_from_slice(b"{\"timestamp\":\"");
        line.extend_from_slice(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true).as_bytes());
        line.extend_from_slice(b"\",\"level\":\"");
        line.extend_from_slice(meta.level().as_str().as_bytes());
        line.extend_from_slice(b"\",\"message\":");
        json_string(&mut line, &fields.message);
        line.extend_from_slice(&self.service_key);
        if let Some(invocation) = invocation {
            line.extend_from_slice(&invocation.keys);
        }
        line.extend_from_slice(b",\"location\":");
        let location = format!(
            "{}:{}",
            meta.module_path().unwrap_or_default(),
            meta.line().unwrap_or(0)
        );
        json_string(&mut line, &location);
        line.extend_from_slice(&fields.pairs);
        line.push(b'}');
        line
    }

    fn write(&self, mut line: Vec<u8>) {
        line.push(b'\n');
        // One write per line, so that lines of concurrent tasks never interleave.
        let _ = self.writer.make_writer().write_all(&line);
    }
}

/// `s` as a JSON string, quotes included.
fn json_string(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, s);
}

/// `document` (a JSON object) with `"request_id"` added before its closing brace.
fn with_request_id(mut document: Vec<u8>, invocation: Option<&Invocation>) -> Vec<u8> {
    if let Some(invocation) = invocation {
        if document.ends_with(b"}") && document.len() > 2 {
            document.pop();
            document.extend_from_slice(b",\"request_id\":");
            json_string(&mut document, &invocation.request_id);
            document.push(b'}');
        }
    }
    document
}

/// Powertools' cold-start metric: `ColdStart` 1, dimension `service`, once per environment.
fn cold_start_metric(service_key: &[u8], invocation: &Invocation) -> Vec<u8> {
    let mut document = format!(
        concat!(
            r#"{{"_aws":{{"Timestamp":{},"CloudWatchMetrics":[{{"Namespace":"DashboardCache","#,
            r#""Dimensions":[["service"]],"Metrics":[{{"Name":"ColdStart","Unit":"Count"}}]}}]}}"#,
        ),
        Utc::now().timestamp_millis(),
    )
    .into_bytes();
    document.extend_from_slice(service_key);
    document.extend_from_slice(br#","ColdStart":1}"#);
    with_request_id(document, Some(invocation))
}

/// The invocation span's `requestId` and `xrayTraceId`.
#[derive(Default)]
struct SpanFields {
    request_id: Option<String>,
    xray_trace_id: Option<String>,
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "requestId" => self.request_id = Some(value.to_owned()),
            "xrayTraceId" => self.xray_trace_id = Some(value.to_owned()),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// A metrics event's document.
#[derive(Default)]
struct Emf(Option<String>);

impl Visit for Emf {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "emf" {
            self.0 = Some(value.to_owned());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// An event's fields as they are visited: the message apart (it goes before the line's other keys),
/// every other field written at once as `,"name":value`.
#[derive(Default)]
struct EventFields {
    message: String,
    pairs: Vec<u8>,
}

impl EventFields {
    fn key(&mut self, field: &Field) {
        let name = field.name();
        self.pairs.push(b',');
        if RESERVED.contains(&name) {
            json_string(&mut self.pairs, &format!("field_{name}"));
        } else {
            json_string(&mut self.pairs, name);
        }
        self.pairs.push(b':');
    }

    fn number(&mut self, field: &Field, value: impl serde::Serialize) {
        self.key(field);
        // A number (a non-finite float as null) into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.pairs, &value);
    }
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
        } else {
            self.key(field);
            json_string(&mut self.pairs, value);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.pairs
            .extend_from_slice(if value { b"true" } else { b"false" });
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.number(field, value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use test_support::log_lines::Lines;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The lines `emit` writes through the layer, each parsed as JSON.
    fn lines(emit: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(LambdaJson::new("svc \"q\"", lines.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        lines.parsed()
    }

    #[test]
    fn lines_are_json_objects_whatever_the_fields_hold() {
        let lines = lines(|| {
            let span = tracing::info_span!(INVOCATION_SPAN, requestId = "r\"1\\", xrayTraceId = "Root=1");
            let _entered = span.enter();
            tracing::info!(
                level = "field, not the line's",
                key = %"a\"b\nc",
                n = 3_u64,
                negative = -4_i64,
                ratio = f64::NAN,
                ok = true,
                "said \"hi\"\n"
            );
            metrics(r#"{"Requests":1}"#);
        });
        assert_eq!(lines.len(), 3, "{lines:#?}");
        let (cold, log, metrics) = (&lines[0], &lines[1], &lines[2]);
        assert_eq!(
            (cold["ColdStart"].as_u64(), cold["service"].as_str()),
            (Some(1), Some("svc \"q\""))
        );
        assert_eq!(cold["request_id"], "r\"1\\");
        assert_eq!(log["message"], "said \"hi\"\n");
        assert_eq!(log["level"], "INFO");
        assert_eq!(log["field_level"], "field, not the line's");
        assert_eq!(log["key"], "a\"b\nc");
        assert_eq!((log["n"].as_u64(), log["negative"].as_i64()), (Some(3), Some(-4)));
        assert!(log["ratio"].is_null() && log["ok"] == true, "{log}");
        assert_eq!(
            (log["request_id"].as_str(), log["cold_start"].as_bool()),
            (Some("r\"1\\"), Some(true))
        );
        assert_eq!(log["xray_trace_id"], "Root=1");
        assert_eq!(log["service"], "svc \"q\"");
        assert_eq!(
            *metrics,
            serde_json::json!({"Requests": 1, "request_id": "r\"1\\"})
        );
    }

    #[test]
    fn lines_outside_an_invocation_carry_no_request_id() {
        let lines = lines(|| {
            tracing::warn!("alone");
            metrics(r#"{"Runs":1}"#);
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!(
            (lines[0]["level"].as_str(), lines[0]["message"].as_str()),
            (Some("WARN"), Some("alone"))
        );
        assert!(lines[0].get("request_id").is_none() && lines[0].get("cold_start").is_none());
        assert_eq!(lines[1], serde_json::json!({"Runs": 1}));
    }
}
