// The handler's future (warm run, fan-out, compaction, the runbook route, secret re-reads) is deeper
// than the compiler's default layout query limit in release builds.
#![recursion_limit = "256"]

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use warm_cache::{config::Config, fanout::Fanout, warm_event, WarmState};

// One thread: a run's tenants are I/O-bound (the warmer's own CPU is about 0.15 ms a bundle), and on
// a single-threaded runtime the run, its pool's connections and the Redis connection's driver wake
// each other without crossing threads. Bench figure 5 runs the warm the same way.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::init_process("warm-cache");
    let env = shared::platform::secrets::environment(&["DATABASE_URL"]).await?;
    let config = Config::from_env(&env.vars())?;
    let fanout = match &config.warm.event_bus_name {
        Some(bus) => Some(Fanout::new(
            aws_sdk_eventbridge::Client::new(&aws_config::load_from_env().await),
            bus.clone(),
        )),
        None => None,
    };
    let state = WarmState::new(config, fanout, &env)?;
    let state = &state;
    run(service_fn(move |event: LambdaEvent<Value>| {
        warm_event(state, event)
    }))
    .await
}
