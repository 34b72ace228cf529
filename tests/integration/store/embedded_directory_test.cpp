// EmbeddedDirectory against the real slapd: the sync mode follows the configured durability at
// every start, not only at init.
#include "store/ldap/embedded_directory.hpp"

#include <gtest/gtest.h>

#include "store/ldap/ldap_connection.hpp"
#include "support/directory_fixture.hpp"

namespace ca::store {
namespace {

// olcDbNoSync of the data database, as cn=config holds it now.
std::string no_sync(const EmbeddedDirectory& slapd) {
  auto conn = LdapConnection::open(slapd.config_endpoint());
  EXPECT_TRUE(conn) << conn.error().message;
  if (!conn) return {};
  auto entry = (*conn)->read("olcDatabase={1}mdb,cn=config", {"olcDbNoSync"});
  EXPECT_TRUE(entry && *entry) << (entry ? "no such entry" : entry.error().message);
  if (!entry || !*entry) return {};
  return (*entry)->first_or("olcDbNoSync", "(unset)");
}

TEST(EmbeddedDirectory, TheSyncModeFollowsTheConfigurationAtEveryStart) {
  testing::TestDirectory directory(1, /*fsync=*/false);
  EXPECT_EQ(no_sync(*directory.slapd), "TRUE");
  directory.slapd->stop();

  // The same directory, now configured to sync every write (durability: per_write).
  auto options = directory.slapd->options();
  options.fsync = true;
  directory.slapd = std::make_unique<EmbeddedDirectory>(options);
  ASSERT_TRUE(directory.slapd->start(false));
  EXPECT_EQ(no_sync(*directory.slapd), "FALSE") << "slapd was left without sync after durability changed";

  directory.slapd->stop();
  options.fsync = false;
  directory.slapd = std::make_unique<EmbeddedDirectory>(options);
  ASSERT_TRUE(directory.slapd->start(false));
  EXPECT_EQ(no_sync(*directory.slapd), "TRUE");
}

}  // namespace
}  // namespace ca::store
