use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::config::{Config, WarmConfig};
use shared::state::AppState;
use warm_cache::{fanout::Fanout, handle, WarmState};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_process();
    let config = Config::from_env()?;
    let warm = WarmConfig::from_env(&config)?;
    let fanout = match &warm.event_bus_name {
        Some(bus) => Some(Fanout::new(
            aws_sdk_eventbridge::Client::new(&aws_config::load_from_env().await),
            bus.clone(),
        )),
        None => None,
    };
    let state = WarmState {
        app: AppState::from_config(config)?,
        warm,
        fanout,
    };
    let state = &state;
    run(service_fn(move |event: LambdaEvent<Value>| handle(state, event))).await
}
