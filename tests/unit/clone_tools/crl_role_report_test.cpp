#include "crl_role_report.hpp"

#include <chrono>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "authority/revocation/crl_master.hpp"
#include "authority/revocation/crl_numbering.hpp"

namespace ca::clone_tools {
namespace {

using namespace std::chrono_literals;

// 2026-11-30T17:00:00Z
std::chrono::system_clock::time_point at_base() { return std::chrono::sys_days(std::chrono::year{2026} / 11 / 30) + 17h; }

store::CrlLease held_by(std::string holder, uint64_t epoch, std::chrono::system_clock::time_point expires) {
  return store::CrlLease{std::move(holder), expires, epoch, {}, {}};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(CrlRoleReportTest, EpochsAndCrlNumbersAreShownSplit) {
  const uint64_t epoch = authority::crl_epoch(2, 3);
  EXPECT_EQ(epoch_text(epoch), "8195 (generation 2, minted by replica 3)");
  const uint64_t number = authority::first_crl_number(epoch) + 4;
  EXPECT_EQ(crl_number_text(number), fmt::format("{} (epoch 8195, sequence 5)", number));
  EXPECT_EQ(epoch_text(0), "0 (none minted yet)");
}

TEST(CrlRoleReportTest, TextShowsHolderExpiryPinHandoverAndNumbers) {
  CrlRoleReport report;
  report.issuing_point = "MasterCRL";
  report.read_at = at_base();
  report.lease = held_by("clone1", authority::crl_epoch(2, 2), at_base() + 3s);
  report.lease.pinned = "clone1";
  report.lease.handover = "clone2";
  store::CrlRecord numbers;
  numbers.crl_number = authority::first_crl_number(authority::crl_epoch(2, 2));
  numbers.delta_number = numbers.crl_number + 1;
  report.numbers = numbers;
  const std::string text = crl_role_text(report);
  EXPECT_TRUE(contains(text, "holder         clone1\n")) << text;
  EXPECT_TRUE(contains(text, "epoch          8194 (generation 2, minted by replica 2)\n")) << text;
  EXPECT_TRUE(contains(text, "2026-11-30T17:00:03Z, in 3 s by this machine's clock (informational")) << text;
  EXPECT_TRUE(contains(text, "pinned to      clone1\n")) << text;
  EXPECT_TRUE(contains(text, "the holder hands the role to 'clone2'")) << text;
  EXPECT_TRUE(contains(text, fmt::format("full CRL       number {} (epoch 8194, sequence 1)", numbers.crl_number))) << text;
  EXPECT_TRUE(contains(text, fmt::format("delta CRL      number {} (epoch 8194, sequence 2)", numbers.delta_number))) << text;
}

TEST(CrlRoleReportTest, AGivenBackLeaseAndAnEmptyDirectoryAreNamedSo) {
  CrlRoleReport report;
  report.issuing_point = "MasterCRL";
  report.read_at = at_base();
  report.lease = held_by("master", 4097, authority::kCrlLeaseGivenBack);
  report.lease.handover = "*";
  std::string text = crl_role_text(report);
  EXPECT_TRUE(contains(text, "given back (19700101000001Z)")) << text;
  EXPECT_TRUE(contains(text, "(demote)")) << text;
  EXPECT_TRUE(contains(text, "full CRL       none published yet")) << text;
  EXPECT_TRUE(contains(crl_holder_summary(report.lease), "given back by 'master'")) << crl_holder_summary(report.lease);

  report.lease = store::CrlLease{};
  text = crl_role_text(report);
  EXPECT_TRUE(contains(text, "holder         nobody")) << text;
  EXPECT_EQ(crl_holder_summary(report.lease), "nobody");
}

TEST(CrlRoleReportTest, AnExpiryInThePastSaysHowLongAgo) {
  CrlRoleReport report;
  report.read_at = at_base() + 10s;
  report.lease = held_by("master", 4097, at_base());
  EXPECT_TRUE(contains(crl_role_text(report), "10 s ago by this machine's clock")) << crl_role_text(report);
}

TEST(CrlRoleReportTest, JsonCarriesTheSameFields) {
  CrlRoleReport report;
  report.issuing_point = "MasterCRL";
  report.read_at = at_base();
  report.lease = held_by("clone2", authority::crl_epoch(5, 3), at_base() + 30s);
  report.lease.pinned = "clone2";
  store::CrlRecord numbers;
  numbers.crl_number = authority::first_crl_number(authority::crl_epoch(5, 3)) + 1;
  report.numbers = numbers;
  const auto o = crl_role_json(report);
  EXPECT_EQ(o.at("issuing_point").as_string(), "MasterCRL");
  EXPECT_EQ(o.at("holder").as_string(), "clone2");
  EXPECT_EQ(o.at("epoch").to_number<uint64_t>(), authority::crl_epoch(5, 3));
  EXPECT_EQ(o.at("epoch_generation").to_number<uint64_t>(), 5u);
  EXPECT_EQ(o.at("epoch_replica_id").to_number<int>(), 3);
  EXPECT_EQ(o.at("lease_expires").as_string(), "2026-11-30T17:00:30Z");
  EXPECT_FALSE(o.at("given_back").as_bool());
  EXPECT_EQ(o.at("seconds_until_expiry_by_local_clock").to_number<int64_t>(), 30);
  EXPECT_EQ(o.at("pinned").as_string(), "clone2");
  EXPECT_TRUE(o.at("handover").is_null());
  EXPECT_EQ(o.at("crl_number").at("number").to_number<uint64_t>(), numbers.crl_number);
  EXPECT_EQ(o.at("crl_number").at("epoch").to_number<uint64_t>(), authority::crl_epoch(5, 3));
  EXPECT_EQ(o.at("crl_number").at("sequence").to_number<uint64_t>(), 2u);
  EXPECT_TRUE(o.at("delta_crl_number").is_null());

  const auto given_back = crl_lease_json(held_by("clone2", 9, authority::kCrlLeaseGivenBack), at_base());
  EXPECT_TRUE(given_back.at("given_back").as_bool());
  EXPECT_TRUE(given_back.at("lease_expires").is_null());
  EXPECT_TRUE(given_back.at("seconds_until_expiry_by_local_clock").is_null());
}

}  // namespace
}  // namespace ca::clone_tools
