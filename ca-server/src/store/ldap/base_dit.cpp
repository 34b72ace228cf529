#include "store/ldap/base_dit.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/files.hpp"
#include "core/log.hpp"

namespace ca::store {

namespace {
constexpr std::string_view kLog = "directory";

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

Status load_base_dit(const LdapEndpoint& endpoint, const std::string& suffix, const std::filesystem::path& schema_dir) {
  CA_TRY(auto conn, LdapConnection::open(endpoint));
  CA_TRY(auto existing, conn->read(suffix, {"objectClass"}));
  if (existing) return ok();
  CA_TRY(std::string text, read_file(schema_dir / "base-dit.ldif"));
  std::string o = suffix.substr(suffix.find('=') + 1);
  o = o.substr(0, o.find(','));
  text = replace_all(replace_all(text, "@SUFFIX@", suffix), "@O@", o);
  // Minimal LDIF reader for our own file: records separated by blank lines, "attr: value" lines.
  std::istringstream in(text);
  std::string line, dn;
  std::vector<LdapAttribute> attrs;
  auto flush = [&]() -> Status {
    if (dn.empty()) return ok();
    CA_CHECK(conn->add(dn, attrs));
    dn.clear();
    attrs.clear();
    return ok();
  };
  while (std::getline(in, line)) {
    if (line.empty()) {
      CA_CHECK(flush());
      continue;
    }
    if (line[0] == '#') continue;
    auto colon = line.find(": ");
    if (colon == std::string::npos)
      return fail(Error::config(fmt::format("base-dit.ldif: cannot read line '{}'", line)));
    std::string name = line.substr(0, colon), value = line.substr(colon + 2);
    if (name == "dn") {
      dn = value;
      continue;
    }
    auto it = std::find_if(attrs.begin(), attrs.end(), [&](const LdapAttribute& a) { return a.name == name; });
    if (it == attrs.end())
      attrs.push_back({name, {value}});
    else
      it->values.push_back(value);
  }
  CA_CHECK(flush());
  log::info(kLog, "loaded the base DIT under {}", suffix);
  return ok();
}

Status add_missing_containers(const LdapEndpoint& endpoint, const std::string& suffix) {
  struct Container {
    std::string_view ou;
    std::string_view parent;  // between the entry and the suffix, with its comma: "ou=ca,"
    std::string_view description;
  };
  static constexpr Container kAdded[] = {
      {"idempotencyKeys", "",
       "Idempotency-Key claims of enrollments (each instance adds its own and writes only those)"},
      {"singleUseClaims", "",
       "Claims of enrollment codes and key retrievals (each instance adds its own and writes only those)"},
      {"auditCheckpoints", "ou=ca,",
       "Signed checkpoints of each instance's audit log (one entry per instance, its checkpoints below)"},
  };
  CA_TRY(auto conn, LdapConnection::open(endpoint));
  CA_TRY(auto root, conn->read(suffix, {"objectClass"}));
  if (!root) return ok();  // a clone before its first replication: the containers come with it
  for (const auto& c : kAdded) {
    const std::string dn = fmt::format("ou={},{}{}", c.ou, c.parent, suffix);
    CA_TRY(auto existing, conn->read(dn, {"objectClass"}));
    if (existing) continue;
    Status added = conn->add(dn, {{"objectClass", {"organizationalUnit"}},
                                  {"ou", {std::string(c.ou)}},
                                  {"description", {std::string(c.description)}}});
    if (!added && !added.error().is(ErrorCode::conflict)) return added;
    if (added) log::info(kLog, "added {} (a container this version needs)", dn);
  }
  return ok();
}

}  // namespace ca::store
