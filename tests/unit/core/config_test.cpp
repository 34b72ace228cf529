#include "core/config.hpp"

#include <gtest/gtest.h>

#include "support/temp_dir.hpp"

namespace ca {
namespace {

Result<InstanceConfig> parse(const std::string& yaml) { return parse_instance_config(yaml, "/etc/ca/instance.yaml"); }

TEST(ConfigTest, EmptyFileGivesDefaults) {
  auto c = parse("");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->ca.key_type, KeyType::ec_p256);
  EXPECT_EQ(c->server.port, 8443);
  EXPECT_EQ(c->directory.suffix, "o=pki-ca");
  EXPECT_EQ(c->directory.bind_dn, "") << "the directory's root, named by the store";
  EXPECT_EQ(c->dir, "/etc/ca/var/ca");
  EXPECT_EQ(c->profiles_file, "/etc/ca/var/ca/profiles.yaml");
  EXPECT_GT(c->server.io_threads, 0);
}

TEST(ConfigTest, RelativePathsResolveAgainstTheFile) {
  auto c = parse("instance: {id: demo, dir: ../data/demo}\nprofiles: {file: p.yaml}\n");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->dir, "/etc/data/demo");
  EXPECT_EQ(c->profiles_file, "/etc/ca/p.yaml");
  EXPECT_EQ(c->key_file("ca_signing"), "/etc/data/demo/private/ca_signing.key");
}

struct BadCase {
  const char* yaml;
  const char* expected;  // substring of the message
};

class ConfigRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigRejects, WithFileKeyAndExpectation) {
  auto c = parse(GetParam().yaml);
  ASSERT_FALSE(c);
  EXPECT_TRUE(c.error().is(ErrorCode::config));
  EXPECT_NE(c.error().message.find("/etc/ca/instance.yaml"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find(GetParam().expected), std::string::npos) << c.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ConfigRejects,
    ::testing::Values(BadCase{"servr: {port: 1}", "servr: unknown key"},
                      BadCase{"server: {prot: 1}", "server.prot: unknown key"},
                      BadCase{"server: {port: eighty}", "server.port: expected a non-negative integer, got 'eighty'"},
                      BadCase{"server: {port: 70000}", "server.port: expected a port number"},
                      BadCase{"ca: {key_type: dsa}", "ca.key_type: expected one of ec-p256"},
                      BadCase{"ca: {serial_generator: sequential}", "ca.serial_generator: expected ranges or random"},
                      BadCase{"directory: {mode: external}", "directory.url: required when mode is external"},
                      BadCase{"directory: {group_commit: {max_batch: 0}}", "directory.group_commit.max_batch"},
                      BadCase{"ranges: {replica_id: 0}", "ranges.replica_id: expected 1..65535"},
                      BadCase{"directory: {durability: maybe}",
                              "directory.durability: expected group, per_write or none"},
                      BadCase{"directory: {mode: external, url: \"ldap://h/\", durability: group}",
                              "directory.durability: group needs the embedded directory"},
                      BadCase{"instance: {id: 'a b'}", "instance.id"}, BadCase{"log: {level: loud}", "log.level"},
                      BadCase{"crl: {partitions: 0}", "crl.partitions: expected 1..64"},
                      BadCase{"crl: {partitions: 65}", "crl.partitions: expected 1..64"},
                      BadCase{"crl: {full_after_changes: 0}", "crl.full_after_changes: expected 1..10000000"},
                      BadCase{"crl: {full_after_percent: 101}", "crl.full_after_percent: expected 1..100"},
                      BadCase{"crl: {partition: 4}", "partition"}, BadCase{"server: [1, 2", "not valid YAML"}));

TEST(ConfigTest, MissingFileIsNamed) {
  auto c = load_instance_config("/nonexistent/instance.yaml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message, "/nonexistent/instance.yaml: file does not exist");
}

TEST(ConfigTest, LoadsFromDisk) {
  testing::TempDir dir;
  auto file = testing::write_file(dir / "i.yaml", "ca: {key_type: rsa-3072, validity_days: 10}\n");
  auto c = load_instance_config(file);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->ca.key_type, KeyType::rsa_3072);
  EXPECT_EQ(c->ca.validity_days, 10);
}

}  // namespace
}  // namespace ca
