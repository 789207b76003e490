use clear_cache::handle;
use lambda_http::{run, service_fn, Error, Request};
use shared::{config::Config, state::AppState};

// One request at a time per Lambda environment: a single-threaded runtime keeps the handler and
// the Redis connection's driver on one thread, with no cross-thread wake-ups on the hot path.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::init_process();
    let state = AppState::from_config(Config::from_env()?)?;
    let state = &state;
    run(service_fn(move |req: Request| handle(state, req))).await
}
