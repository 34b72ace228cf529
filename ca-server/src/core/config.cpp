#include "core/config.hpp"

#include <cstddef>
#include <thread>

#include <fmt/format.h>

#include "core/files.hpp"
#include "core/yaml_reader.hpp"

namespace ca {

std::string_view key_type_name(KeyType t) {
  switch (t) {
    case KeyType::ec_p256:
      return "ec-p256";
    case KeyType::ec_p384:
      return "ec-p384";
    case KeyType::rsa_2048:
      return "rsa-2048";
    case KeyType::rsa_3072:
      return "rsa-3072";
    case KeyType::ed25519:
      return "ed25519";
  }
  return "?";
}

Result<KeyType> parse_key_type(std::string_view text) {
  for (KeyType t : {KeyType::ec_p256, KeyType::ec_p384, KeyType::rsa_2048, KeyType::rsa_3072, KeyType::ed25519})
    if (key_type_name(t) == text) return t;
  return fail(Error::config(fmt::format("unknown key type '{}'", text)));
}

std::filesystem::path InstanceConfig::cert_file(std::string_view name) const {
  return certs_dir() / (std::string(name) + ".pem");
}
std::filesystem::path InstanceConfig::key_file(std::string_view name) const {
  return private_dir() / (std::string(name) + ".key");
}
std::string InstanceConfig::key_uri(std::string_view name) const { return file_uri(key_file(name)); }

std::string InstanceConfig::public_base_url() const {
  if (!ca.public_url.empty()) return ca.public_url;
  if (server.http_port) return fmt::format("http://{}:{}", server.address, server.http_port);
  return fmt::format("https://{}:{}", server.address, server.port);
}

namespace {

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  std::filesystem::path path(p);
  return path.is_absolute() ? path : (base / path).lexically_normal();
}

Status read_instance_section(const YamlReader& root, const std::filesystem::path& base, InstanceConfig& c) {
  auto inst = root.child("instance");
  if (!inst.is_null()) CA_CHECK(inst.expect_keys({"id", "dir"}));
  CA_CHECK(inst.read("id", c.instance_id));
  for (char ch : c.instance_id)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_'))
      return fail(inst.error_at("id", fmt::format("expected letters, digits, '-' or '_', got '{}'", c.instance_id)));
  if (c.instance_id.empty()) return fail(inst.error_at("id", "must not be empty"));
  std::string dir = "var/" + c.instance_id;
  CA_CHECK(inst.read("dir", dir));
  c.dir = resolve(base, dir);
  return ok();
}

Status read_ca_section(const YamlReader& root, const std::filesystem::path& base, InstanceConfig& c) {
  auto ca = root.child("ca");
  if (!ca.is_null())
    CA_CHECK(
        ca.expect_keys({"subject", "key_type", "validity_days", "serial_generator", "public_url", "key_blocklist_file",
                        "approval_poll_ms", "est_profile", "retry_after_seconds", "refusal_summary_ms"}));
  CA_CHECK(ca.read("subject", c.ca.subject));
  CA_CHECK(ca.read_enum(
      "key_type", c.ca.key_type, [](std::string_view t) { return parse_key_type(t); },
      "one of ec-p256, ec-p384, rsa-2048, rsa-3072, ed25519"));
  CA_CHECK(ca.read("validity_days", c.ca.validity_days));
  if (c.ca.validity_days < 1 || c.ca.validity_days > 36500)
    return fail(ca.error_at("validity_days", "expected 1..36500"));
  CA_CHECK(ca.read_enum(
      "serial_generator", c.ca.serial_generator,
      [](std::string_view t) -> Result<SerialGenerator> {
        if (t == "ranges") return SerialGenerator::ranges;
        if (t == "random") return SerialGenerator::random;
        return fail(Error::config(""));
      },
      "ranges or random"));
  CA_CHECK(ca.read("public_url", c.ca.public_url));
  std::string blocklist;
  CA_CHECK(ca.read("key_blocklist_file", blocklist));
  if (!blocklist.empty()) {
    c.ca.key_blocklist_file = resolve(base, blocklist);
    if (!std::filesystem::exists(c.ca.key_blocklist_file))
      return fail(
          ca.error_at("key_blocklist_file", fmt::format("{} does not exist", c.ca.key_blocklist_file.string())));
  }
  CA_CHECK(ca.read("approval_poll_ms", c.ca.approval_poll_ms));
  if (c.ca.approval_poll_ms < 100 || c.ca.approval_poll_ms > 600000)
    return fail(ca.error_at("approval_poll_ms", "expected 100..600000"));
  CA_CHECK(ca.read("refusal_summary_ms", c.ca.refusal_summary_ms));
  if (c.ca.refusal_summary_ms < 100 || c.ca.refusal_summary_ms > 3600000)
    return fail(ca.error_at("refusal_summary_ms", "expected 100..3600000"));
  CA_CHECK(ca.read("retry_after_seconds", c.ca.retry_after_seconds));
  if (c.ca.retry_after_seconds < 1 || c.ca.retry_after_seconds > 3600)
    return fail(ca.error_at("retry_after_seconds", "expected 1..3600"));
  CA_CHECK(ca.read("est_profile", c.ca.est_profile));
  if (c.ca.est_profile.empty() || c.ca.est_profile.size() > 64 ||
      c.ca.est_profile.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") !=
          std::string::npos)
    return fail(ca.error_at("est_profile", "expected a profile id (letters, digits, '_', '-', '.')"));
  return ok();
}

// Thread counts left at 0 follow the machine's cores.
Status read_server_section(const YamlReader& root, InstanceConfig& c) {
  auto srv = root.child("server");
  if (!srv.is_null())
    CA_CHECK(srv.expect_keys({"address", "port", "http_port", "io_threads", "worker_threads", "body_limit",
                              "idle_timeout_seconds", "max_connections", "max_queued_requests", "request_timeout_ms",
                              "shutdown_grace_ms", "max_connections_per_client", "client_requests_per_second",
                              "client_request_burst", "handshake_timeout_seconds", "proxy_protocol",
                              "http_proxy_protocol", "proxy_protocol_trusted"}));
  CA_CHECK(srv.read("address", c.server.address));
  CA_CHECK(srv.read("port", c.server.port));
  CA_CHECK(srv.read("http_port", c.server.http_port));
  CA_CHECK(srv.read("io_threads", c.server.io_threads));
  CA_CHECK(srv.read("worker_threads", c.server.worker_threads));
  uint64_t body_limit = c.server.body_limit;
  CA_CHECK(srv.read("body_limit", body_limit));
  if (body_limit < 1024 || body_limit > static_cast<uint64_t>(16 * 1024 * 1024))
    return fail(srv.error_at("body_limit", "expected 1024..16777216 bytes"));
  c.server.body_limit = body_limit;
  CA_CHECK(srv.read("idle_timeout_seconds", c.server.idle_timeout_seconds));
  CA_CHECK(srv.read("max_connections", c.server.max_connections));
  if (c.server.max_connections < 1 || c.server.max_connections > 1000000)
    return fail(srv.error_at("max_connections", "expected 1..1000000"));
  CA_CHECK(srv.read("max_queued_requests", c.server.max_queued_requests));
  if (c.server.max_queued_requests < 1 || c.server.max_queued_requests > 1000000)
    return fail(srv.error_at("max_queued_requests", "expected 1..1000000"));
  CA_CHECK(srv.read("max_connections_per_client", c.server.max_connections_per_client));
  if (c.server.max_connections_per_client < 1 || c.server.max_connections_per_client > c.server.max_connections)
    return fail(srv.error_at("max_connections_per_client", "expected 1..server.max_connections"));
  CA_CHECK(srv.read("client_requests_per_second", c.server.client_requests_per_second));
  if (c.server.client_requests_per_second < 0 || c.server.client_requests_per_second > 1000000)
    return fail(srv.error_at("client_requests_per_second", "expected 0 (no limit) or 1..1000000"));
  CA_CHECK(srv.read("client_request_burst", c.server.client_request_burst));
  if (c.server.client_request_burst < 1 || c.server.client_request_burst > 10000000)
    return fail(srv.error_at("client_request_burst", "expected 1..10000000"));
  CA_CHECK(srv.read("handshake_timeout_seconds", c.server.handshake_timeout_seconds));
  if (c.server.handshake_timeout_seconds < 1 || c.server.handshake_timeout_seconds > 600)
    return fail(srv.error_at("handshake_timeout_seconds", "expected 1..600"));
  CA_CHECK(srv.read("proxy_protocol", c.server.proxy_protocol));
  CA_CHECK(srv.read("http_proxy_protocol", c.server.http_proxy_protocol));
  CA_CHECK(srv.read("proxy_protocol_trusted", c.server.proxy_protocol_trusted));
  if ((c.server.proxy_protocol || c.server.http_proxy_protocol) && c.server.proxy_protocol_trusted.empty())
    return fail(
        srv.error_at("proxy_protocol_trusted", "the balancers' addresses are required when proxy_protocol is on"));
  CA_CHECK(srv.read("request_timeout_ms", c.server.request_timeout_ms));
  if (c.server.request_timeout_ms != 0 && (c.server.request_timeout_ms < 100 || c.server.request_timeout_ms > 600000))
    return fail(srv.error_at("request_timeout_ms", "expected 0 (directory.timeout_ms + 1000) or 100..600000"));
  CA_CHECK(srv.read("shutdown_grace_ms", c.server.shutdown_grace_ms));
  if (c.server.shutdown_grace_ms < 0 || c.server.shutdown_grace_ms > 600000)
    return fail(srv.error_at("shutdown_grace_ms", "expected 0..600000"));
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (c.server.io_threads <= 0) c.server.io_threads = static_cast<int>(cores);
  if (c.server.worker_threads <= 0) c.server.worker_threads = static_cast<int>(4 * cores);
  return ok();
}

Status read_group_commit_section(const YamlReader& d, InstanceConfig& c) {
  auto gc = d.child("group_commit");
  if (!gc.is_null()) CA_CHECK(gc.expect_keys({"max_batch", "writers", "max_queue"}));
  CA_CHECK(gc.read("max_queue", c.directory.group_commit.max_queue));
  if (c.directory.group_commit.max_queue < 1 || c.directory.group_commit.max_queue > 1000000)
    return fail(gc.error_at("max_queue", "expected 1..1000000"));
  CA_CHECK(gc.read("max_batch", c.directory.group_commit.max_batch));
  CA_CHECK(gc.read("writers", c.directory.group_commit.writers));
  if (c.directory.group_commit.max_batch < 1 || c.directory.group_commit.max_batch > 1000)
    return fail(gc.error_at("max_batch", "expected 1..1000"));
  if (c.directory.group_commit.writers < 1 || c.directory.group_commit.writers > 16)
    return fail(gc.error_at("writers", "expected 1..16"));
  return ok();
}

// Also the server's request timeout when it was left at 0 (directory.timeout_ms + 1000).
Status read_directory_section(const YamlReader& root, const std::filesystem::path& base, InstanceConfig& c) {
  auto d = root.child("directory");
  if (!d.is_null())
    CA_CHECK(d.expect_keys({"mode", "url", "port", "listen_address", "suffix", "bind_dn", "bind_password_file",
                            "pool_size", "timeout_ms", "mesh", "max_lag_ms", "durability", "slapd_path", "slapadd_path",
                            "group_commit"}));
  CA_CHECK(d.read_enum(
      "mode", c.directory.mode,
      [](std::string_view t) -> Result<DirectoryMode> {
        if (t == "embedded") return DirectoryMode::embedded;
        if (t == "external") return DirectoryMode::external;
        return fail(Error::config(""));
      },
      "embedded or external"));
  CA_CHECK(d.read("url", c.directory.url));
  CA_CHECK(d.read("port", c.directory.port));
  CA_CHECK(d.read("listen_address", c.directory.listen_address));
  CA_CHECK(d.read("suffix", c.directory.suffix));
  CA_CHECK(d.read("bind_dn", c.directory.bind_dn));
  std::string pw_file = (c.dir / "secrets" / "directory.pass").string();
  CA_CHECK(d.read("bind_password_file", pw_file));
  c.directory.bind_password_file = resolve(base, pw_file);
  CA_CHECK(d.read("pool_size", c.directory.pool_size));
  if (c.directory.pool_size < 1 || c.directory.pool_size > 256) return fail(d.error_at("pool_size", "expected 1..256"));
  CA_CHECK(d.read("timeout_ms", c.directory.timeout_ms));
  CA_CHECK(d.read("mesh", c.directory.mesh));
  CA_CHECK(d.read("max_lag_ms", c.directory.max_lag_ms));
  if (c.directory.max_lag_ms < 500 || c.directory.max_lag_ms > 3600000)
    return fail(d.error_at("max_lag_ms", "expected 500..3600000"));
  if (c.server.request_timeout_ms == 0) c.server.request_timeout_ms = c.directory.timeout_ms + 1000;
  if (c.directory.mode == DirectoryMode::external) c.directory.durability = Durability::per_write;
  CA_CHECK(d.read_enum(
      "durability", c.directory.durability,
      [](std::string_view t) -> Result<Durability> {
        if (t == "group") return Durability::group;
        if (t == "per_write") return Durability::per_write;
        if (t == "none") return Durability::none;
        return fail(Error::config(""));
      },
      "group, per_write or none"));
  if (c.directory.mode == DirectoryMode::external && c.directory.durability == Durability::group)
    return fail(
        d.error_at("durability", "group needs the embedded directory (ca-server syncs its data file); use per_write"));
  CA_CHECK(d.read("slapd_path", c.directory.slapd_path));
  CA_CHECK(d.read("slapadd_path", c.directory.slapadd_path));
  CA_CHECK(read_group_commit_section(d, c));
  if (c.directory.mode == DirectoryMode::external && c.directory.url.empty())
    return fail(d.error_at("url", "required when mode is external (e.g. ldap://127.0.0.1:389/)"));
  return ok();
}

Status read_ranges_section(const YamlReader& root, InstanceConfig& c) {
  auto r = root.child("ranges");
  if (!r.is_null())
    CA_CHECK(r.expect_keys({"replica_id", "serial_range_size", "request_range_size", "low_water_mark"}));
  CA_CHECK(r.read("replica_id", c.ranges.replica_id));
  if (c.ranges.replica_id < 1 || c.ranges.replica_id > 65535)
    return fail(r.error_at("replica_id", "expected 1..65535"));
  CA_CHECK(r.read("serial_range_size", c.ranges.serial_range_size));
  CA_CHECK(r.read("request_range_size", c.ranges.request_range_size));
  CA_CHECK(r.read("low_water_mark", c.ranges.low_water_mark));
  if (c.ranges.serial_range_size < 1 || c.ranges.request_range_size < 1)
    return fail(r.error_at("serial_range_size", "range sizes must be at least 1"));
  if (c.ranges.serial_range_size > (uint64_t{1} << 40))
    return fail(r.error_at("serial_range_size", "expected at most 2^40"));
  return ok();
}

Status read_crl_section(const YamlReader& root, InstanceConfig& c) {
  auto crl = root.child("crl");
  if (!crl.is_null())
    CA_CHECK(
        crl.expect_keys({"update_interval_seconds", "validity_seconds", "debounce_ms", "generate", "lease_seconds",
                         "poll_ms", "activation_delay_ms", "partitions", "full_after_changes", "full_after_percent"}));
  CA_CHECK(crl.read("update_interval_seconds", c.crl.update_interval_seconds));
  CA_CHECK(crl.read("validity_seconds", c.crl.validity_seconds));
  CA_CHECK(crl.read("debounce_ms", c.crl.debounce_ms));
  CA_CHECK(crl.read("generate", c.crl.generate));
  CA_CHECK(crl.read("lease_seconds", c.crl.lease_seconds));
  CA_CHECK(crl.read("poll_ms", c.crl.poll_ms));
  if (c.crl.lease_seconds < 3 || c.crl.lease_seconds > 3600)
    return fail(crl.error_at("lease_seconds", "expected 3..3600"));
  if (c.crl.poll_ms < 100 || c.crl.poll_ms > 60000) return fail(crl.error_at("poll_ms", "expected 100..60000"));
  CA_CHECK(crl.read("activation_delay_ms", c.crl.activation_delay_ms));
  if (c.crl.activation_delay_ms < 0 || c.crl.activation_delay_ms > 10000)
    return fail(crl.error_at("activation_delay_ms", "expected 0..10000"));
  if (c.crl.update_interval_seconds < 1) return fail(crl.error_at("update_interval_seconds", "expected at least 1"));
  if (c.crl.validity_seconds < c.crl.update_interval_seconds)
    return fail(crl.error_at("validity_seconds", "must be at least update_interval_seconds"));
  if (c.crl.debounce_ms < 0 || c.crl.debounce_ms > 5000) return fail(crl.error_at("debounce_ms", "expected 0..5000"));
  CA_CHECK(crl.read("partitions", c.crl.partitions));
  if (c.crl.partitions < 1 || c.crl.partitions > 64) return fail(crl.error_at("partitions", "expected 1..64"));
  CA_CHECK(crl.read("full_after_changes", c.crl.full_after_changes));
  if (c.crl.full_after_changes < 1 || c.crl.full_after_changes > 10000000)
    return fail(crl.error_at("full_after_changes", "expected 1..10000000"));
  CA_CHECK(crl.read("full_after_percent", c.crl.full_after_percent));
  if (c.crl.full_after_percent < 1 || c.crl.full_after_percent > 100)
    return fail(crl.error_at("full_after_percent", "expected 1..100"));
  return ok();
}

Status read_profiles_and_log_sections(const YamlReader& root, const std::filesystem::path& base, InstanceConfig& c) {
  auto p = root.child("profiles");
  if (!p.is_null()) CA_CHECK(p.expect_keys({"file"}));
  std::string pf = (c.dir / "profiles.yaml").string();
  CA_CHECK(p.read("file", pf));
  c.profiles_file = resolve(base, pf);

  auto l = root.child("log");
  if (!l.is_null()) CA_CHECK(l.expect_keys({"level"}));
  CA_CHECK(l.read("level", c.log_level));
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" && c.log_level != "error")
    return fail(l.error_at("level", fmt::format("expected debug, info, warn or error, got '{}'", c.log_level)));
  return ok();
}

// The sections in the order they are checked: the first error found is the one reported.
Status read_config(const YamlReader& root, InstanceConfig& c) {
  CA_CHECK(root.expect_keys({"instance", "ca", "server", "directory", "ranges", "crl", "profiles", "log"}));
  const std::filesystem::path base = std::filesystem::absolute(c.source_file).parent_path();
  CA_CHECK(read_instance_section(root, base, c));
  CA_CHECK(read_ca_section(root, base, c));
  CA_CHECK(read_server_section(root, c));
  CA_CHECK(read_directory_section(root, base, c));
  CA_CHECK(read_ranges_section(root, c));
  CA_CHECK(read_crl_section(root, c));
  return read_profiles_and_log_sections(root, base, c);
}

}  // namespace

Result<InstanceConfig> parse_instance_config(const std::string& yaml_text, const std::filesystem::path& file) {
  CA_TRY(YamlReader root, YamlReader::from_text(yaml_text, file.string()));
  InstanceConfig c;
  c.source_file = file;
  CA_CHECK(read_config(root, c));
  return c;
}

Result<InstanceConfig> load_instance_config(const std::filesystem::path& file) {
  CA_TRY(YamlReader root, YamlReader::from_file(file));
  InstanceConfig c;
  c.source_file = file;
  CA_CHECK(read_config(root, c));
  return c;
}

}  // namespace ca
