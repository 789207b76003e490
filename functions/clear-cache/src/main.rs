use clear_cache::handle;
use lambda_http::{run, service_fn, Error, Request};
use shared::{config::Config, state::AppState};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::init_process();
    let state = AppState::from_config(Config::from_env()?)?;
    let state = &state;
    run(service_fn(move |req: Request| handle(state, req))).await
}
