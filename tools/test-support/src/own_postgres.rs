//! A Postgres server of one test's own, on a free port, that checks passwords (scram-sha-256): the
//! shared test server trusts local connections, so a changed password is only refused here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use uuid::Uuid;

/// The superuser's password on an [`OwnPostgres`].
pub const OWN_POSTGRES_PASSWORD: &str = "own-postgres-superuser";

/// A throwaway cluster (initdb, then pg_ctl), stopped and removed when dropped.
pub struct OwnPostgres {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl OwnPostgres {
    /// Needs the server binaries (`/usr/lib/postgresql/<version>/bin`, as `scripts/services.sh`
    /// installs them, or `pg_config --bindir`). As root they run as the `postgres` user, since initdb
    /// refuses root.
    pub fn start() -> Self {
        let bin = server_bin().expect("Postgres server binaries (initdb, pg_ctl) not found");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("own-postgres-{port}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("own postgres directory");
        let password_file = dir.join("password");
        std::fs::write(&password_file, OWN_POSTGRES_PASSWORD).expect("password file");
        let server = Self { port, dir, bin };
        server.chown(&[&server.dir, &password_file]);
        let data = server.dir.join("data");
        server.run(
            server
                .command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["--auth=scram-sha-256", "-U", "postgres", "--no-sync"])
                .arg(format!("--pwfile={}", password_file.display())),
        );
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.dir.display()
        );
        server.run(
            server
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(server.dir.join("log"))
                .args(["-w", "-t", "30", "-o", &options, "start"]),
        );
        server
    }

    /// The URL of `user` with `password` on database `postgres`.
    pub fn url(&self, user: &str, password: &str) -> String {
        format!("postgres://{user}:{password}@127.0.0.1:{}/postgres", self.port)
    }

    pub fn superuser_url(&self) -> String {
        self.url("postgres", OWN_POSTGRES_PASSWORD)
    }

    fn chown(&self, paths: &[&Path]) {
        if is_root() {
            for path in paths {
                let status = Command::new("chown").arg("postgres").arg(path).status();
                assert!(
                    status.is_ok_and(|s| s.success()),
                    "chown postgres {}",
                    path.display()
                );
            }
        }
    }

    /// A server binary, run as `postgres` when this is root.
    fn command(&self, program: &str) -> Command {
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            command
        } else {
            Command::new(self.bin.join(program))
        }
    }

    fn run(&self, command: &mut Command) {
        let output = command.output().expect("run a Postgres server binary");
        assert!(
            output.status.success(),
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        std::thread::sleep(Duration::from_millis(50));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The newest `/usr/lib/postgresql/<version>/bin` with initdb, else `pg_config --bindir`.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    bin.join("initdb").exists().then_some(bin)
}
