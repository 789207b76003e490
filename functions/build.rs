// The build script of each function (`build = "../build.rs"` in their manifests), run in the
// function's own directory.
//
// The migrations are embedded at compile time (sqlx's `migrate!` and `#[sqlx::test(migrations)]`):
// rebuild when they change, or an incremental build keeps testing the old ones.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    // A position-dependent executable on Linux (as Go links by default): a PIE's ~60,000 relocations
    // are applied by the loader at every start, a copy-on-write fault per page of pointers: about a
    // quarter of a cold start to the first HIT (bench figure 14b, docs/deploy.md). The cost is ASLR of
    // the function's own image; the stack, heap and libc stay randomized.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
