use clear_cache::{config::Config, route, State};
use lambda_http::{run, service_fn, Error, Request};

// One request at a time per Lambda environment: a single-threaded runtime keeps the handler and
// the Redis connection's driver on one thread, with no cross-thread wake-ups on the hot path.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::init_process("clear-cache");
    let env = shared::platform::secrets::environment(&["JWT_SECRET"]).await?;
    let state = State::new(&Config::from_env(&env.vars())?, &env)?;
    let state = &state;
    run(service_fn(move |req: Request| route(state, req))).await
}
