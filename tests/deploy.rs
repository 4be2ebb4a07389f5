//! The shipped deployments, read the way a cluster, a container engine and each gateway
//! read them: every config loads; every probe reaches an address tollgate serves it on
//! from outside the pod; `/auth` and `proxy.trusted` match who calls it; and every address
//! a gateway config or manifest uses for tollgate is the `listen` of the config it ships with.
//! No cluster or Docker engine runs on the test machines: this is what can be held here.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use serde::Deserialize as _;
use serde_yaml::Value;
use support::{TempDir, free_port};
use tollgate::config::Config;

const BIN: &str = env!("CARGO_BIN_EXE_tollgate");

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(text: &str, what: &str) -> Config {
    Config::load(text, &HashMap::new()).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Every YAML document in `path`.
fn documents(path: &str) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn text<'a>(value: &'a Value, what: &str) -> &'a str {
    value.as_str().unwrap_or_else(|| panic!("{what} is not a string: {value:?}"))
}

fn list(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or_default()
}

/// A tollgate container of a Deployment, its pod, and the config its ConfigMap holds.
struct Tollgate<'a> {
    pod: &'a Value,
    container: &'a Value,
    config: Config,
}

/// The tollgate containers of every Deployment in `docs`, each with the config file its
/// `--config` argument names, found through its volume mount and ConfigMap.
fn tollgates(docs: &[Value]) -> Vec<Tollgate<'_>> {
    let mut found = Vec::new();
    for deployment in docs.iter().filter(|d| d["kind"] == "Deployment") {
        let pod = &deployment["spec"]["template"]["spec"];
        for container in list(&pod["containers"]).iter().filter(|c| text(&c["image"], "image").starts_with("tollgate"))
        {
            let config = config_of(docs, pod, container);
            found.push(Tollgate { pod, container, config });
        }
    }
    assert!(!found.is_empty(), "no tollgate container");
    found
}

fn config_of(docs: &[Value], pod: &Value, container: &Value) -> Config {
    let args: Vec<&str> = list(&container["args"]).iter().map(|a| text(a, "arg")).collect();
    let file = args.iter().skip_while(|a| **a != "--config").nth(1).expect("serve --config FILE");
    let (dir, name) = file.rsplit_once('/').expect("an absolute config path");
    let mount = list(&container["volumeMounts"]).iter().find(|m| m["mountPath"] == dir).expect("the config is mounted");
    let volume = list(&pod["volumes"]).iter().find(|v| v["name"] == mount["name"]).expect("the mounted volume");
    let map = find(docs, "ConfigMap", text(&volume["configMap"]["name"], "configMap name"));
    load(text(&map["data"][name], "the config file"), file)
}

/// A container port by number or by name.
fn container_port(container: &Value, port: &Value) -> u16 {
    if let Some(number) = port.as_u64() {
        return u16::try_from(number).expect("a port");
    }
    let name = text(port, "port");
    let entry = list(&container["ports"]).iter().find(|p| p["name"] == name);
    let number = entry.and_then(|p| p["containerPort"].as_u64()).unwrap_or_else(|| panic!("no port named {name}"));
    u16::try_from(number).expect("a port")
}

/// The addresses tollgate serves the ops endpoints on.
fn ops_addresses(config: &Config) -> Vec<SocketAddr> {
    std::iter::once(config.listen).chain(config.ops_listen).collect()
}

const MANIFESTS: &[&str] = &["deploy/kubernetes/sidecar.yaml", "deploy/kubernetes/shared.yaml"];

#[test]
fn every_shipped_config_loads() {
    let mut files = vec!["config/tollgate.toml".to_string()];
    for gateway in ["caddy", "envoy", "ingress-nginx", "istio", "nginx", "traefik"] {
        files.push(format!("deploy/{gateway}/tollgate.toml"));
    }
    files.push("deploy/envoy/tollgate-grpc.toml".to_string());
    for file in &files {
        load(&read(file), file);
    }
    for manifest in MANIFESTS {
        assert!(!tollgates(&documents(manifest)).is_empty(), "{manifest}");
    }
}

#[test]
fn every_probe_reaches_an_address_tollgate_serves_it_on_outside_the_pod() {
    for manifest in MANIFESTS {
        let docs = documents(manifest);
        for tollgate in tollgates(&docs) {
            for kind in ["livenessProbe", "readinessProbe"] {
                let probe = &tollgate.container[kind]["httpGet"];
                assert!(["/healthz", "/readyz"].contains(&text(&probe["path"], "probe path")), "{manifest} {kind}");
                let port = container_port(tollgate.container, &probe["port"]);
                // The kubelet connects to the pod's address: loopback cannot be reached.
                let reachable =
                    ops_addresses(&tollgate.config).iter().any(|a| a.port() == port && a.ip().is_unspecified());
                assert!(reachable, "{manifest} {kind}: port {port} is not served on the pod's address");
            }
        }
    }
}

#[test]
fn the_sidecar_keeps_auth_on_loopback_for_the_nginx_in_its_pod() {
    let docs = documents("deploy/kubernetes/sidecar.yaml");
    let tollgate = &tollgates(&docs)[0];
    let config = &tollgate.config;
    assert!(config.listen.ip().is_loopback(), "/auth only for the pod itself");
    assert!(config.proxy.trusted.iter().all(|net| net.addr().is_loopback()), "only the pod's own gateway is trusted");
    assert!(config.proxy.trusted.iter().any(|net| net.contains(&nginx_upstream().ip())));
    assert_eq!(nginx_upstream(), config.listen, "deploy/nginx/tollgate.conf asks tollgate at its listen");

    let nginx = list(&tollgate.pod["containers"])
        .iter()
        .find(|c| text(&c["image"], "image").contains("nginx"))
        .expect("the nginx container the sidecar's gateway is");
    let served = nginx_listen_port();
    assert!(list(&nginx["ports"]).iter().any(|p| p["containerPort"].as_u64() == Some(served.into())));
    let mount = list(&nginx["volumeMounts"]).iter().find(|m| m["mountPath"] == "/etc/nginx/conf.d").expect("conf.d");
    let volume = list(&tollgate.pod["volumes"]).iter().find(|v| v["name"] == mount["name"]).expect("its volume");
    let map = text(&volume["configMap"]["name"], "configMap name");
    let command = format!("kubectl create configmap {map} --from-file=deploy/nginx/tollgate.conf");
    assert!(read("deploy/kubernetes/sidecar.yaml").contains(&command), "the manifest says how to make {map}");
}

#[test]
fn the_shared_deployment_lets_only_the_ingress_controller_reach_auth() {
    let docs = documents("deploy/kubernetes/shared.yaml");
    let tollgate = &tollgates(&docs)[0];
    let config = &tollgate.config;
    assert!(config.proxy.trusted.iter().all(|net| net.prefix_len() > 0), "never every address");

    // The Service reaches `listen`.
    let service = find(&docs, "Service", "tollgate");
    let service_port = &list(&service["spec"]["ports"])[0];
    assert_eq!(container_port(tollgate.container, &service_port["targetPort"]), config.listen.port());

    // The NetworkPolicy admits only chosen peers to `listen`'s port.
    let policy = find(&docs, "NetworkPolicy", "tollgate");
    let rules: Vec<&Value> = list(&policy["spec"]["ingress"])
        .iter()
        .filter(|rule| {
            list(&rule["ports"]).iter().any(|p| container_port(tollgate.container, &p["port"]) == config.listen.port())
        })
        .collect();
    assert!(!rules.is_empty() && rules.iter().all(|rule| !list(&rule["from"]).is_empty()), "{rules:?}");

    // Callers elsewhere in the cluster name that Service and port.
    let host = format!("tollgate.{}.svc.cluster.local", text(&service["metadata"]["namespace"], "namespace"));
    let port = service_port["port"].as_u64().expect("service port");
    let ingress = &documents("deploy/ingress-nginx/ingress.yaml")[0];
    let auth_url = text(&ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/auth-url"], "auth-url");
    assert_eq!(auth_url, format!("http://{host}:{port}/auth"));
    let middleware = find(&documents("deploy/traefik/middleware.yaml"), "Middleware", "tollgate").clone();
    assert_eq!(text(&middleware["spec"]["forwardAuth"]["address"], "address"), format!("http://{host}:{port}/auth"));
    let istio = &documents("deploy/envoy/istio.yaml")[0]["spec"]["meshConfig"]["extensionProviders"][0];
    assert_eq!(
        (text(&istio["envoyExtAuthzHttp"]["service"], "service"), istio["envoyExtAuthzHttp"]["port"].as_u64()),
        (host.as_str(), Some(port))
    );

    // deploy/ingress-nginx's config describes this same Deployment.
    let ingress_config = load(&read("deploy/ingress-nginx/tollgate.toml"), "deploy/ingress-nginx/tollgate.toml");
    assert_eq!((ingress_config.listen, ingress_config.ops_listen), (config.listen, config.ops_listen));
}

/// `server` of deploy/nginx/tollgate.conf's `upstream tollgate`.
fn nginx_upstream() -> SocketAddr {
    let conf = read("deploy/nginx/tollgate.conf");
    let block = conf.split("upstream tollgate {").nth(1).expect("upstream tollgate");
    let server = block.lines().map(str::trim).find_map(|l| l.strip_prefix("server ")).expect("its server");
    server.trim_end_matches(';').parse().expect("an address")
}

/// The port of deploy/nginx/tollgate.conf's `listen`.
fn nginx_listen_port() -> u16 {
    let conf = read("deploy/nginx/tollgate.conf");
    let line = conf.lines().map(str::trim).find_map(|l| l.strip_prefix("listen ")).expect("listen");
    line.trim_end_matches(';').parse().expect("a port")
}

#[test]
fn every_gateway_config_asks_tollgate_at_the_listen_it_ships_with() {
    let listen = |gateway: &str| load(&read(&format!("deploy/{gateway}/tollgate.toml")), gateway).listen;
    assert_eq!(nginx_upstream(), listen("nginx"));

    let caddyfile = read("deploy/caddy/Caddyfile");
    let caddy = caddyfile.lines().map(str::trim).find_map(|l| l.strip_prefix("forward_auth ")).expect("forward_auth");
    assert_eq!(caddy.trim_end_matches(" {").parse::<SocketAddr>().unwrap(), listen("caddy"));

    let traefik = &documents("deploy/traefik/dynamic.yml")[0]["http"]["middlewares"]["tollgate"]["forwardAuth"];
    assert_eq!(text(&traefik["address"], "address"), format!("http://{}/auth", listen("traefik")));

    let envoy = &documents("deploy/envoy/envoy.yaml")[0]["static_resources"];
    let cluster = list(&envoy["clusters"]).iter().find(|c| c["name"] == "tollgate").expect("cluster tollgate");
    let socket =
        &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
    let address = format!("{}:{}", text(&socket["address"], "address"), socket["port_value"].as_u64().unwrap_or(0));
    assert_eq!(address.parse::<SocketAddr>().unwrap(), listen("envoy"));
}

/// The address of a cluster's first endpoint in an Envoy static config.
fn cluster_address(envoy: &Value, name: &str) -> SocketAddr {
    let cluster =
        list(&envoy["clusters"]).iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("cluster {name}"));
    let socket =
        &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
    let address = format!("{}:{}", text(&socket["address"], "address"), socket["port_value"].as_u64().unwrap_or(0));
    address.parse().unwrap_or_else(|e| panic!("cluster {name}: {address}: {e}"))
}

/// The gRPC Envoy config: ext_authz in gRPC mode, V3, failing closed, without the body,
/// over HTTP/2 to the `[grpc] listen` of the config it ships with.
#[test]
fn the_envoy_grpc_config_asks_the_grpc_door_and_fails_closed() {
    let config = load(&read("deploy/envoy/tollgate-grpc.toml"), "deploy/envoy/tollgate-grpc.toml");
    let grpc = config.grpc.as_ref().expect("[grpc] listen");
    let envoy = &documents("deploy/envoy/envoy-grpc.yaml")[0]["static_resources"];
    let manager = &envoy["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
    let filter = list(&manager["http_filters"])
        .iter()
        .find(|f| f["name"] == "envoy.filters.http.ext_authz")
        .expect("ext_authz filter");
    let authz = &filter["typed_config"];
    assert_eq!(authz["transport_api_version"], "V3");
    assert_eq!(authz["failure_mode_allow"], false);
    assert!(authz.get("with_request_body").is_none(), "tollgate never needs the body");
    assert!(authz.get("http_service").is_none());
    let service = &authz["grpc_service"];
    assert_eq!(text(&service["timeout"], "timeout"), "2s");
    let cluster_name = text(&service["envoy_grpc"]["cluster_name"], "cluster_name");
    assert_eq!(cluster_address(envoy, cluster_name), grpc.listen);
    let cluster = list(&envoy["clusters"]).iter().find(|c| c["name"] == cluster_name).unwrap();
    let options =
        &cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"];
    assert!(options["explicit_http_config"].get("http2_protocol_options").is_some(), "gRPC needs HTTP/2");
    let allowed: Vec<&str> =
        list(&authz["allowed_headers"]["patterns"]).iter().filter_map(|p| p["exact"].as_str()).collect();
    for header in ["authorization", "dpop", "x-http-method-override"] {
        assert!(allowed.contains(&header), "{header} must reach tollgate: {allowed:?}");
    }
}

/// Istio's gRPC provider names tollgate's Service and the port its config serves gRPC on,
/// fails closed, and is the provider of the CUSTOM policy.
#[test]
fn the_istio_grpc_provider_matches_its_tollgate_config() {
    let config = load(&read("deploy/istio/tollgate.toml"), "deploy/istio/tollgate.toml");
    let grpc = config.grpc.as_ref().expect("[grpc] listen");
    assert!(grpc.listen.ip().is_unspecified(), "the sidecars call from the pod network");
    let docs = documents("deploy/istio/istio.yaml");
    let provider = &docs[0]["spec"]["meshConfig"]["extensionProviders"][0];
    let grpc_provider = &provider["envoyExtAuthzGrpc"];
    assert_eq!(grpc_provider["port"].as_u64(), Some(u64::from(grpc.listen.port())));
    assert_eq!(grpc_provider["failOpen"], false);
    assert!(grpc_provider.get("includeRequestBodyInCheck").is_none());
    let policy = find(&docs, "AuthorizationPolicy", "api-tollgate");
    assert_eq!(policy["spec"]["action"], "CUSTOM");
    assert_eq!(policy["spec"]["provider"]["name"], provider["name"]);
    let service = find(&docs, "Service", "tollgate");
    let ports: Vec<(&str, u64)> = list(&service["spec"]["ports"])
        .iter()
        .map(|p| (text(&p["name"], "port name"), p["targetPort"].as_u64().unwrap_or(0)))
        .collect();
    assert!(ports.contains(&("grpc-ext-authz", u64::from(grpc.listen.port()))), "{ports:?}");
    let ops = config.ops_listen.expect("ops_listen for probes");
    assert!(ports.contains(&("http-ops", u64::from(ops.port()))), "{ports:?}");
    let host = format!("tollgate.{}.svc.cluster.local", text(&service["metadata"]["namespace"], "namespace"));
    assert_eq!(text(&grpc_provider["service"], "service"), host);
}

/// The JSON array of a Dockerfile instruction in exec form (continuation lines joined).
fn exec_form(dockerfile: &str, instruction: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\n", " ");
    let line = joined.lines().find(|l| l.starts_with(instruction)).unwrap_or_else(|| panic!("no {instruction}"));
    let array = &line[line.find('[').unwrap_or_else(|| panic!("{instruction} is not in exec form"))..];
    serde_json::from_str(array).unwrap_or_else(|e| panic!("{instruction}: {e}"))
}

#[test]
fn the_image_checks_its_health_with_tollgate_itself() {
    let dockerfile = read("Dockerfile");
    let entrypoint = exec_form(&dockerfile, "ENTRYPOINT");
    let command = exec_form(&dockerfile, "CMD");
    let health = exec_form(&dockerfile, "HEALTHCHECK");
    assert_eq!(health[0], entrypoint[0], "no shell: the binary itself");
    let config_of = |args: &[String]| args.iter().skip_while(|a| *a != "--config").nth(1).cloned();
    assert_eq!(config_of(&health), config_of(&command), "the health check reads the config the server reads");
    assert!(!dockerfile.contains("-p 8080:8080"), "the shipped configs listen on loopback");

    // The exact arguments make a working probe: it fails on connection, not on usage.
    let dir = TempDir::new("deploy");
    let config = dir.path().join("tollgate.toml");
    let port = free_port();
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\n[issuer]\ndomain = \"t.auth0.com\"\naudience = \"a\"\n[proxy]\ngateway = \"nginx\"\n"
    );
    std::fs::write(&config, text).unwrap();
    let args: Vec<String> = health[1..]
        .iter()
        .map(|a| if Some(a) == config_of(&health).as_ref() { config.display().to_string() } else { a.clone() })
        .collect();
    let out =
        Command::new(BIN).args(&args).env_remove("TOLLGATE_LISTEN").env_remove("TOLLGATE_OPS_LISTEN").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("127.0.0.1:{port}/healthz")));
}

#[test]
fn the_build_context_leaves_target_out() {
    let ignore = read(".dockerignore");
    let patterns: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert_eq!(patterns.first(), Some(&"*"), "everything out, then what the build reads back in");
    for needed in ["!Cargo.toml", "!Cargo.lock", "!src", "!benches"] {
        assert!(patterns.contains(&needed), "{needed}");
    }
    assert!(!patterns.iter().any(|p| p.contains("target")), "{patterns:?}");
}
