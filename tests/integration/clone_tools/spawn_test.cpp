// ca-clone spawn failing early: a bad YAML, a bundle without the CA key, an unreachable master.
// Nothing may be left behind. (Successful spawns are exercised by tests/integration/cluster.)
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/ca_server_fixture.hpp"

namespace ca::testing {
namespace {

namespace fs = std::filesystem;

std::string ca_clone() { return (fs::path(CA_BIN_DIR) / "ca-clone").string(); }

class SpawnTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    master_ = new CaServer(CaServerOptions{.instance_id = "master"});
    auto init = master_->init();  // made, not started: nobody answers on its port
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  static void TearDownTestSuite() {
    delete master_;
    master_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(master_, nullptr); }

  fs::path prepare(bool with_key) {
    auto pass = write_file(work_.path() / "p12.pass", "spawn-test\n");
    auto bundle = work_.path() / (with_key ? "full.p12" : "nokey.p12");
    auto r = shell(fmt::format("{} prepare --config {} --pkcs12-file {} --pkcs12-password-file {}{}", ca_clone(),
                               master_->config_file().string(), bundle.string(), pass.string(), with_key ? "" : " --no-key"));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return bundle;
  }
  fs::path clone_yaml(const fs::path& bundle, const std::string& extra = "") {
    return write_file(work_.path() / "clone.yaml",
                      fmt::format("clone:\n  master_url: https://127.0.0.1:{}\n  pkcs12_file: {}\n"
                                  "  pkcs12_password_file: {}\n{}instance:\n  id: clone1\n  dir: clone1\n"
                                  "server:\n  port: {}\ndirectory:\n  port: {}\n",
                                  master_->port(), bundle.string(), (work_.path() / "p12.pass").string(), extra,
                                  free_port(), free_port()));
  }
  Shell spawn(const fs::path& yaml, const std::string& flags = "") {
    return shell(fmt::format("{} spawn --config {} {} 2>&1", ca_clone(), yaml.string(), flags));
  }

  static CaServer* master_;
  TempDir work_{"ca-spawn"};
};
CaServer* SpawnTest::master_ = nullptr;

TEST_F(SpawnTest, AnUnreachableMasterIsAClearErrorAndNothingIsMade) {
  auto out = spawn(clone_yaml(prepare(true)));
  EXPECT_EQ(out.exit_code, 1) << out.output;
  EXPECT_NE(out.output.find("unreachable"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(work_.path() / "clone1")) << "a failed spawn left a folder behind";
}

TEST_F(SpawnTest, ABundleWithoutTheCaKeyIsRefused) {
  auto out = spawn(clone_yaml(prepare(false)));
  EXPECT_EQ(out.exit_code, 1) << out.output;
  EXPECT_NE(out.output.find("no CA signing key"), std::string::npos) << out.output;
  EXPECT_FALSE(fs::exists(work_.path() / "clone1"));
}

TEST_F(SpawnTest, ConfigurationMistakesAreUsageErrorsNamingTheKey) {
  auto bundle = prepare(true);
  auto unknown = spawn(clone_yaml(bundle, "  colour: blue\n"));
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  EXPECT_NE(unknown.output.find("clone.colour"), std::string::npos) << unknown.output;

  auto no_clone = write_file(work_.path() / "plain.yaml", "instance:\n  id: x\n  dir: x\n");
  auto missing = spawn(no_clone);
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("'clone' section"), std::string::npos) << missing.output;

  auto bad_instance = write_file(work_.path() / "bad.yaml",
                                 fmt::format("clone:\n  master_url: https://127.0.0.1:1\n  pkcs12_file: {}\n"
                                             "  pkcs12_password_file: x\ninstance:\n  id: c\n  dir: c\nserver:\n  port: nope\n",
                                             bundle.string()));
  auto typed = spawn(bad_instance, "--dry-run");
  EXPECT_EQ(typed.exit_code, 2) << typed.output;
  EXPECT_NE(typed.output.find("server.port"), std::string::npos) << typed.output;
  EXPECT_EQ(spawn(no_clone, "--help").exit_code, 0);
}

}  // namespace
}  // namespace ca::testing
