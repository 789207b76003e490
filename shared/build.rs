// The migrations are embedded at compile time (sqlx's `migrate!` and `#[sqlx::test(migrations)]`):
// rebuild when they change, or an incremental build keeps testing the old ones.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
