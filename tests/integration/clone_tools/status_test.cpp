// ca-clone status against a real master and clone (each a ca-server with its own slapd,
// replicating both ways over ldaps://): healthy; replication into the clone's directory cut while
// the master keeps writing; the clone's slapd frozen (SIGSTOP); and healed again.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/ldap/replication.hpp"
#include "support/ca_cluster_fixture.hpp"
#include "support/https_client.hpp"

namespace ca::testing {
namespace {

namespace fs = std::filesystem;

// Runs `ca-clone status` with the master's YAML until it exits with `wanted` or `seconds` pass;
// returns the last run.
Shell status_until(const CaServer& master, const std::string& flags, int wanted, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  Shell out;
  do {
    out = shell(fmt::format("{} status --config {} --interval 1 {} 2>&1", ca_clone_binary().string(),
                            master.config_file().string(), flags));
  } while (out.exit_code != wanted && std::chrono::steady_clock::now() < deadline);
  return out;
}

// The PID of an instance's embedded slapd (its pid file).
pid_t slapd_pid(const CaServer& server) {
  std::ifstream in(server.dir() / "slapd" / "slapd.pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// SIGSTOP now, SIGCONT when it goes (also when an assertion fails first).
class Frozen {
 public:
  explicit Frozen(pid_t pid) : pid_(pid) { stopped_ = pid_ > 0 && ::kill(pid_, SIGSTOP) == 0; }
  ~Frozen() { thaw(); }
  Frozen(const Frozen&) = delete;
  Frozen& operator=(const Frozen&) = delete;
  bool stopped() const { return stopped_; }
  void thaw() {
    if (stopped_) ::kill(pid_, SIGCONT);
    stopped_ = false;
  }

 private:
  pid_t pid_;
  bool stopped_ = false;
};

void enroll_one(const CaServer& at, const fs::path& scratch) {
  auto made =
      shell(fmt::format("openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout {0}/s.key "
                        "-out {0}/s.csr -subj '/CN=status.example.com' 2>&1",
                        scratch.string()));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto reply = at.client().post("/ca/rest/certrequests", fmt::format(R"({{"profile_id":"testServerCert","csr":"{}"}})",
                                                                     json_escape(read_file(scratch / "s.csr"))));
  ASSERT_EQ(reply.status, 201) << reply.body;
}

TEST(StatusTest, APartitionIsFlaggedNamingTheDirectoryAndClearsWhenItHeals) {
  // The partition is made by dropping an agreement: the self-healing mesh would put it back.
  CaCluster cluster({.directory_yaml = "  mesh: false\n"});
  auto error = cluster.build(1);
  ASSERT_TRUE(error.empty()) << error;
  auto& master = *cluster.master;
  auto& clone = *cluster.clones.at(0);
  const std::string clone_directory = fmt::format("ldaps://127.0.0.1:{}/", clone.directory_port());

  // Healthy (once the new clone's first changes have gone round).
  auto healthy = status_until(master, "", 0, 20);
  ASSERT_EQ(healthy.exit_code, 0) << healthy.output;
  EXPECT_NE(healthy.output.find("Problems: none"), std::string::npos) << healthy.output;
  EXPECT_NE(healthy.output.find(clone_directory + " [replica 2 (clone1)]"), std::string::npos) << healthy.output;
  EXPECT_NE(healthy.output.find("from replica 1 (master)"), std::string::npos) << healthy.output;
  EXPECT_EQ(healthy.output.find("NOT RECEIVING"), std::string::npos) << healthy.output;

  // Cut: the clone's directory stops consuming from the master's, which keeps writing (its
  // ca-server's heartbeat every second, and a certificate). The master still receives the clone's.
  auto clone_config = config_admin_endpoint(clone);
  auto peers = store::replication_peers(clone_config);
  ASSERT_TRUE(peers) << peers.error().message;
  ASSERT_EQ(peers->size(), 1u);
  ASSERT_TRUE(store::remove_replication_peer(clone_config, (*peers)[0].replica_id, "o=pki-ca"));
  enroll_one(master, cluster.work.path());

  auto cut = status_until(master, "", 1, 10);
  EXPECT_EQ(cut.exit_code, 1) << cut.output;
  EXPECT_NE(cut.output.find(clone_directory +
                            " is not receiving changes from replica 1 (master) (partition or broken agreement)"),
            std::string::npos)
      << cut.output;
  EXPECT_NE(cut.output.find("NOT RECEIVING"), std::string::npos) << cut.output;
  // Nothing else is blamed: the master's directory still receives the clone's changes.
  EXPECT_EQ(cut.output.find("this instance's directory is not receiving"), std::string::npos) << cut.output;
  auto cut_json = status_until(master, "--json", 1, 10);
  EXPECT_EQ(cut_json.exit_code, 1) << cut_json.output;
  EXPECT_NE(cut_json.output.find(fmt::format(R"("kind":"not_receiving","about":"{}","replica_id":1)", clone_directory)),
            std::string::npos)
      << cut_json.output;
  EXPECT_NE(cut_json.output.find(R"("healthy":false)"), std::string::npos) << cut_json.output;

  // The clone's slapd frozen: its directory cannot be read, and the master's agreement with it
  // points at a provider this tool cannot reach.
  {
    Frozen frozen(slapd_pid(clone));
    ASSERT_TRUE(frozen.stopped());
    auto unreachable = status_until(master, "--json", 1, 1);
    EXPECT_EQ(unreachable.exit_code, 1) << unreachable.output;
    EXPECT_NE(unreachable.output.find(fmt::format(R"("kind":"unreachable","about":"{}")", clone_directory)),
              std::string::npos)
        << unreachable.output;
    EXPECT_NE(
        unreachable.output.find(R"("kind":"agreement_unreachable","about":"this instance's directory","replica_id":2)"),
        std::string::npos)
        << unreachable.output;
  }

  // Heal: the clone consumes from the master again and catches up.
  ASSERT_TRUE(store::put_replication_peer(clone_config, (*peers)[0], "o=pki-ca"));
  auto healed = status_until(master, "", 0, 30);
  EXPECT_EQ(healed.exit_code, 0) << healed.output;
  EXPECT_NE(healed.output.find("Certificate records: the same in every directory read"), std::string::npos)
      << healed.output;
}

TEST(StatusTest, BadIntervalsAreUsageErrors) {
  for (const char* flags : {"--interval 0", "--interval -1", "--interval soon", "--max-lag 0", "--interval 601"}) {
    SCOPED_TRACE(flags);
    auto out = shell(fmt::format("{} status --config nonexistent.yaml {} 2>&1", ca_clone_binary().string(), flags));
    EXPECT_EQ(out.exit_code, 2) << out.output;
    EXPECT_NE(out.output.find("expects a number of seconds"), std::string::npos) << out.output;
  }
  auto help = shell(fmt::format("{} status --help", ca_clone_binary().string()));
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--max-lag SECONDS"), std::string::npos) << help.output;
}

}  // namespace
}  // namespace ca::testing
