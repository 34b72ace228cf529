// The composition root started inside the test process: no child ca-server, no signals.
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "app/ca_instance.hpp"
#include "core/config.hpp"
#include "support/ca_server_fixture.hpp"
#include "support/temp_dir.hpp"

namespace ca::testing {
namespace {

// `ca-server init` for `server`, then its config as ca-server run reads it (nullopt after a failure,
// which this reports).
std::optional<InstanceConfig> initialized(CaServer& server) {
  auto init = server.init();
  EXPECT_EQ(init.exit_code, 0) << init.output;
  if (init.exit_code != 0) return std::nullopt;
  auto config = load_instance_config(server.config_file());
  EXPECT_TRUE(config) << config.error().message;
  if (!config) return std::nullopt;
  return std::move(*config);
}

// Whether the instance's directory answers a search (the real ldapsearch).
bool directory_answers(const CaServer& server) {
  return shell(fmt::format("ldapsearch -LLL -x -H '{}' -D '{}' -y '{}' -s base -b o=pki-ca dn >/dev/null 2>&1",
                           server.ldap_url(), server.bind_dn(), server.password_file().string()))
             .exit_code == 0;
}

// An instance made by `ca-server init`, then opened, served, and stopped in this process.
TEST(CaInstanceTest, ServesEnrollmentAndCrlsInProcessThenStopsAndLeavesNothingRunning) {
  CaServer server;
  auto config = initialized(server);
  ASSERT_TRUE(config);

  auto instance = app::CaInstance::open(*config);
  ASSERT_TRUE(instance) << instance.error().message;
  EXPECT_EQ((*instance)->bound_port(0), server.port());
  std::thread serving([&] { (*instance)->run(); });
  const auto pid_file = config->dir / "ca-server.pid";
  EXPECT_TRUE(std::filesystem::exists(pid_file) || [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return std::filesystem::exists(pid_file);
  }());

  {
    auto client = server.client();
    const std::string csr = openssl_csr(server.dir().parent_path(), "in-process.example.com");
    auto enrolled = client.post("/ca/rest/certrequests", enrollment_json(csr, "testServerCert"));
    EXPECT_EQ(enrolled.status, 201) << enrolled.body;
    const std::string serial = json_field(enrolled.body, "serial");
    EXPECT_FALSE(serial.empty()) << enrolled.body;
    auto fetched = client.get("/ca/rest/certs/" + serial);
    EXPECT_EQ(fetched.status, 200) << fetched.body;
    // The CRL publisher and the election run in here too: a CRL is served.
    HttpReply crl;
    for (int i = 0; i < 100 && crl.status != 200; ++i) {
      crl = client.get("/crl/MasterCRL.crl");
      if (crl.status != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_EQ(crl.status, 200) << crl.body;
  }

  (*instance)->stop();
  serving.join();
  (*instance)->stop();  // once more after the shutdown: nothing happens
  // Shut down in order: the pid file is gone and the embedded directory stopped (its socket answers no more).
  EXPECT_FALSE(std::filesystem::exists(pid_file));
  EXPECT_FALSE(directory_answers(server));
  instance->reset();
}

// Opened and destroyed without ever serving: everything it started stops with it.
TEST(CaInstanceTest, AnInstanceNeverRunStopsWhatItStartedWhenDestroyed) {
  CaServer server;
  auto config = initialized(server);
  ASSERT_TRUE(config);
  {
    auto instance = app::CaInstance::open(*config);
    ASSERT_TRUE(instance) << instance.error().message;
    EXPECT_TRUE(directory_answers(server));
  }
  EXPECT_FALSE(directory_answers(server));
  // The same instance opens again (nothing of the first one holds its ports or its directory).
  auto again = app::CaInstance::open(*config);
  ASSERT_TRUE(again) << again.error().message;
}

// A config error comes back as an error value (no exit, no half-started instance).
TEST(CaInstanceTest, AnInstanceThatCannotOpenReportsWhy) {
  CaServer server;
  auto config = initialized(server);
  ASSERT_TRUE(config);
  std::filesystem::remove(config->cert_file("ocsp_signing"));
  auto instance = app::CaInstance::open(*config);
  ASSERT_FALSE(instance);
  EXPECT_NE(instance.error().message.find("ocsp_signing"), std::string::npos) << instance.error().message;
  // What it had started (the embedded directory) is stopped again.
  EXPECT_FALSE(directory_answers(server));
}

}  // namespace
}  // namespace ca::testing
