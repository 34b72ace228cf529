// ca-clone crl-master against three real ca-servers (a master and two clones, each with its own
// slapd, replicating multi-provider) with a 4 s CRL lease: status, promote, demote, pin (the role
// stays with a pinned instance that dies) and unpin, and the refusals that write nothing.
#include <signal.h>

#include <chrono>
#include <functional>
#include <thread>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "authority/revocation/crl_numbering.hpp"
#include "support/ca_cluster_fixture.hpp"
#include "support/https_client.hpp"

namespace ca::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kLeaseSeconds = 4;
constexpr const char* kFastCrl = "  lease_seconds: 4\n  poll_ms: 300\n";

std::string ca_clone() { return ca_clone_binary().string(); }

Shell crl_master(const CaServer& via, const std::string& action) {
  return shell(fmt::format("{} crl-master {} --config {} 2>&1", ca_clone(), action, via.config_file().string()));
}

// The role as `crl-master status --json` reports it through `via`'s directory.
struct Role {
  std::string holder;
  uint64_t epoch = 0;
  std::string pinned;
  std::string handover;
  uint64_t crl_number_epoch = 0;
  std::string json;  // as printed, for messages
};

std::string string_or_empty(const boost::json::object& o, const char* key) {
  const auto& v = o.at(key);
  return v.is_string() ? std::string(v.as_string()) : std::string();
}

Role role_via(const CaServer& via) {
  Role role;
  auto out = crl_master(via, "status --json");
  role.json = out.output;
  EXPECT_EQ(out.exit_code, 0) << out.output;
  boost::json::error_code ec;
  auto parsed = boost::json::parse(out.output, ec);
  if (ec || !parsed.is_object()) {
    ADD_FAILURE() << "not JSON: " << out.output;
    return role;
  }
  const auto& o = parsed.as_object();
  role.holder = string_or_empty(o, "holder");
  role.epoch = o.at("epoch").to_number<uint64_t>();
  role.pinned = string_or_empty(o, "pinned");
  role.handover = string_or_empty(o, "handover");
  if (o.at("crl_number").is_object()) role.crl_number_epoch = o.at("crl_number").at("epoch").to_number<uint64_t>();
  return role;
}

// Polls `what` every 200 ms until it holds or `limit` has passed.
bool eventually(const std::function<bool()>& what, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (what()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return what();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// One certificate issued by `at` and revoked there (real openssl and curl); returns the revoke output.
std::string issue_and_revoke(const CaServer& at, const std::filesystem::path& scratch) {
  auto made = shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/r.key "
                                "-out {0}/r.csr -subj '/CN=crl-role.example.com' 2>&1",
                                scratch.string()));
  if (made.exit_code != 0) return made.output;
  auto reply = at.client().post("/ca/rest/certrequests", enrollment_json(read_file(scratch / "r.csr")));
  if (reply.status != 201) return fmt::format("enrollment: {} {}", reply.status, reply.body);
  return shell(fmt::format("curl -s --cacert {} --cert {} --key {} -H 'Content-Type: application/json' "
                           "-d '{{\"reason\":\"keyCompromise\"}}' -w ' %{{http_code}}' {}/ca/rest/agent/certs/{}/revoke",
                           at.ca_file().string(), at.agent_cert().string(), at.agent_key().string(), at.https_url(),
                           json_field(reply.body, "serial")))
      .output;
}

TEST(CrlMasterCommandTest, HelpAndRefusalsThatNeedNoDirectory) {
  auto help = shell(fmt::format("{} crl-master --help", ca_clone()));
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_TRUE(contains(help.output, "usage: ca-clone crl-master ACTION [INSTANCE] --config INSTANCE.yaml")) << help.output;
  for (const char* action : {"status", "promote", "demote", "pin", "unpin"}) {
    SCOPED_TRACE(action);
    auto usage = shell(fmt::format("{} crl-master {} --help", ca_clone(), action));
    EXPECT_EQ(usage.exit_code, 0) << usage.output;
    EXPECT_TRUE(contains(usage.output, fmt::format("usage: ca-clone crl-master {}", action))) << usage.output;
  }
  auto listed = shell(fmt::format("{} --help", ca_clone()));
  EXPECT_TRUE(contains(listed.output, "crl-master")) << listed.output;

  for (const char* line : {"", "elect", "promote --config x.yaml", "promote clone1", "status --config x.yaml --timeout 5",
                           "promote clone1 --config x.yaml --timeout 0"}) {
    SCOPED_TRACE(line);
    auto out = shell(fmt::format("{} crl-master {} 2>&1", ca_clone(), line));
    EXPECT_EQ(out.exit_code, 2) << out.output;
  }
  // Not an instance ID: refused before any file or directory is read.
  for (const char* instance : {"'x)(cn=*'", "'a,ou=ca'", "'*'", "'clone 1'"}) {
    SCOPED_TRACE(instance);
    auto out = shell(fmt::format("{} crl-master pin {} --config nonexistent.yaml 2>&1", ca_clone(), instance));
    EXPECT_EQ(out.exit_code, 2) << out.output;
    EXPECT_TRUE(contains(out.output, "must be 1 to 64 letters, digits, '-' or '_'")) << out.output;
  }
}

TEST(CrlMasterCommandTest, TheRoleMovesOnRequestAndStaysWithAPinnedInstanceThatDies) {
  CaCluster cluster({.crl_yaml = kFastCrl});
  auto error = cluster.build(2);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone1 = *cluster.clones.at(0);
  auto& clone2 = *cluster.clones.at(1);
  const auto lease = std::chrono::seconds(kLeaseSeconds);

  // status: the master started first and holds the role.
  Role first = role_via(master);
  ASSERT_EQ(first.holder, "master") << first.json;
  ASSERT_GT(first.epoch, 0u) << first.json;
  auto text = crl_master(master, "status");
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_TRUE(contains(text.output, "holder         master\n")) << text.output;
  EXPECT_TRUE(contains(text.output, fmt::format("epoch          {} (generation {}, minted by replica 1)", first.epoch,
                                                authority::epoch_generation(first.epoch))))
      << text.output;
  EXPECT_TRUE(contains(text.output, "by this machine's clock (informational")) << text.output;
  EXPECT_TRUE(contains(text.output, "full CRL       number ")) << text.output;
  // ... and ca-clone status shows it too, in its text and its JSON.
  auto status = shell(fmt::format("{} status --config {} --interval 0.5 2>&1", ca_clone(), master.config_file().string()));
  EXPECT_TRUE(contains(status.output, fmt::format("CRL master: master, epoch {} (", first.epoch))) << status.output;
  auto status_json = shell(fmt::format("{} status --config {} --interval 0.5 --json", ca_clone(), master.config_file().string()));
  EXPECT_TRUE(contains(status_json.output, fmt::format(R"("crl_master":{{"holder":"master","epoch":{},)", first.epoch)))
      << status_json.output;

  {
    SCOPED_TRACE("refusals write nothing");
    for (const char* line : {"promote nosuch", "pin nosuch", "promote 'x)(cn=*'"}) {
      auto out = crl_master(master, line);
      EXPECT_EQ(out.exit_code, 2) << line << ": " << out.output;
    }
    EXPECT_TRUE(contains(crl_master(master, "promote nosuch").output, "no instance 'nosuch' is registered"));
    Role unchanged = role_via(master);
    EXPECT_EQ(unchanged.holder, "master") << unchanged.json;
    EXPECT_EQ(unchanged.epoch, first.epoch) << unchanged.json;
    EXPECT_EQ(unchanged.handover, "") << unchanged.json;
    EXPECT_EQ(unchanged.pinned, "") << unchanged.json;
  }

  {
    SCOPED_TRACE("promote clone2");
    const auto promote_started = std::chrono::steady_clock::now();
    auto promoted = crl_master(master, "promote clone2");
    ASSERT_EQ(promoted.exit_code, 0) << promoted.output;
    EXPECT_LT(std::chrono::steady_clock::now() - promote_started, 2 * lease + 5s);
    Role after = role_via(master);
    EXPECT_EQ(after.holder, "clone2") << after.json;
    EXPECT_GT(after.epoch, first.epoch) << after.json;
    EXPECT_EQ(authority::epoch_replica_id(after.epoch), 1) << "minted by the old holder when it handed the lease over";
    EXPECT_TRUE(contains(promoted.output, fmt::format("CRL master: 'master' (epoch {}) -> ", first.epoch))) << promoted.output;
    EXPECT_TRUE(contains(promoted.output, fmt::format("-> 'clone2' (epoch {} (", after.epoch))) << promoted.output;
    EXPECT_TRUE(eventually([&] { return contains(clone2.log(), "'clone2' is now the CRL master"); }, 5s)) << clone2.log();
    EXPECT_TRUE(contains(master.log(), "'master' is no longer the CRL master")) << master.log();
    // The next CRL is clone2's: numbered in the new epoch.
    auto revoked = issue_and_revoke(clone2, cluster.work.path());
    EXPECT_TRUE(contains(revoked, " 200")) << revoked;
    EXPECT_TRUE(eventually([&] { return role_via(master).crl_number_epoch == after.epoch; }, 10s)) << role_via(master).json;
    // Recorded in the audit log of the instance whose YAML the command was given.
    auto audit = read_file(master.dir() / "logs" / "audit.log");
    EXPECT_TRUE(contains(audit, "crl_master_promote")) << audit;
    // Again: nothing to do.
    auto again = crl_master(clone1, "promote clone2");
    EXPECT_EQ(again.exit_code, 0) << again.output;
    EXPECT_TRUE(contains(again.output, "'clone2' holds the CRL master role already")) << again.output;
    first = after;
  }

  {
    SCOPED_TRACE("demote");
    auto demoted = crl_master(master, "demote");
    ASSERT_EQ(demoted.exit_code, 0) << demoted.output;
    Role after = role_via(master);
    EXPECT_NE(after.holder, "clone2") << after.json;
    EXPECT_GT(after.epoch, first.epoch) << after.json;
    EXPECT_TRUE(contains(demoted.output, fmt::format("CRL master: 'clone2' (epoch {}) -> ", first.epoch))) << demoted.output;
    EXPECT_EQ(after.handover, "") << after.json;
  }

  {
    SCOPED_TRACE("pin clone1");
    auto pinned = crl_master(master, "pin clone1");
    ASSERT_EQ(pinned.exit_code, 0) << pinned.output;
    Role after = role_via(master);
    EXPECT_EQ(after.holder, "clone1") << after.json;
    EXPECT_EQ(after.pinned, "clone1") << after.json;
    auto elsewhere = crl_master(master, "promote clone2");
    EXPECT_EQ(elsewhere.exit_code, 2) << elsewhere.output;
    EXPECT_TRUE(contains(elsewhere.output, "pinned to 'clone1'")) << elsewhere.output;
    EXPECT_TRUE(contains(elsewhere.output, "crl-master unpin")) << elsewhere.output;
    auto demote_pinned = crl_master(master, "demote");
    EXPECT_EQ(demote_pinned.exit_code, 2) << demote_pinned.output;
    EXPECT_EQ(role_via(master).handover, "") << "a refused command wrote a handover request";

    // clone1 dies (its slapd with it): nobody else takes the pinned role, for two leases and more.
    ASSERT_EQ(::kill(clone1.pid(), SIGKILL), 0);
    clone1.stop();  // reaps it
    const auto watch_until = std::chrono::steady_clock::now() + 2 * lease + 2s;
    while (std::chrono::steady_clock::now() < watch_until) {
      Role now = role_via(master);
      ASSERT_EQ(now.holder, "clone1") << "the pinned role moved while its instance was down: " << now.json;
      std::this_thread::sleep_for(500ms);
    }
    // Its directory is down: a clear failure through its YAML.
    Shell down;
    EXPECT_TRUE(eventually([&] { return (down = crl_master(clone1, "status")).exit_code == 1; }, 10s)) << down.output;
    EXPECT_TRUE(contains(down.output, "cannot read the CRL lease from this instance's directory")) << down.output;
    EXPECT_TRUE(contains(down.output, "is its ca-server running?")) << down.output;

    auto unpinned = crl_master(master, "unpin");
    ASSERT_EQ(unpinned.exit_code, 0) << unpinned.output;
    EXPECT_EQ(role_via(master).pinned, "");
    // The dead holder cannot hand the lease over: promote times out and withdraws its request.
    auto timed_out = crl_master(master, "promote clone2 --timeout 2");
    EXPECT_EQ(timed_out.exit_code, 1) << timed_out.output;
    EXPECT_TRUE(contains(timed_out.output, "timed out after 2 s")) << timed_out.output;
    EXPECT_TRUE(contains(timed_out.output, "The handover request is withdrawn.")) << timed_out.output;
    EXPECT_EQ(role_via(master).handover, "") << "the request of a timed-out promote stayed";
    Role taken;
    EXPECT_TRUE(eventually([&] { return (taken = role_via(master)).holder != "clone1" && !taken.holder.empty(); },
                           2 * lease + 5s))
        << taken.json;
    EXPECT_EQ(taken.pinned, "") << taken.json;
    EXPECT_GT(taken.epoch, after.epoch) << taken.json;
  }
}

}  // namespace
}  // namespace ca::testing
