#include "replication_health.hpp"

#include <chrono>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace ca::clone_tools {
namespace {

using namespace std::chrono_literals;

// A CSN of provider `sid`, `seconds` after 2026-11-30 17:00:00Z.
std::string csn_at(double seconds, int sid = 1, int count = 0) {
  auto base = std::chrono::sys_days(std::chrono::year{2026} / 11 / 30) + 17h;
  auto t = base + std::chrono::round<std::chrono::microseconds>(std::chrono::duration<double>(seconds));
  auto days = std::chrono::floor<std::chrono::days>(t);
  std::chrono::year_month_day date{days};
  std::chrono::hh_mm_ss clock{t - days};
  return fmt::format("{:04}{:02}{:02}{:02}{:02}{:02}.{:06}Z#{:06x}#{:03x}#000000", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()), clock.hours().count(),
                     clock.minutes().count(), clock.seconds().count(), clock.subseconds().count(), count, sid);
}

DirectoryLook look(std::map<int, std::string> csns) { return DirectoryLook{true, "", std::move(csns)}; }
DirectoryLook no_answer(std::string why) { return DirectoryLook{false, std::move(why), {}}; }

const ProviderState* provider(const ReplicationHealth& h, const std::string& directory, int replica_id) {
  for (const auto& d : h.directories)
    if (d.name == directory)
      for (const auto& p : d.providers)
        if (p.replica_id == replica_id) return &p;
  return nullptr;
}

std::string all_messages(const std::vector<Finding>& findings) {
  std::string out;
  for (const auto& f : findings) out += std::string(finding_kind_name(f.kind)) + ": " + f.message + "\n";
  return out;
}

TEST(ParseCsnTest, ReadsTheFieldsOfASlapdCsn) {
  auto csn = parse_csn("20261130170001.250000Z#00000a#003#000002");
  ASSERT_TRUE(csn) << csn.error().message;
  EXPECT_EQ(csn->server_id, 3);
  EXPECT_EQ(csn->count, 10u);
  EXPECT_EQ(csn->mod, 2u);
  EXPECT_EQ(csn_time_text(*csn), "2026-11-30 17:00:01.250000Z");
  // Server IDs are hex: replica 10 is "00a".
  auto ten = parse_csn(csn_at(0, 10));
  ASSERT_TRUE(ten);
  EXPECT_EQ(ten->server_id, 10);
}

TEST(ParseCsnTest, RefusesWhatIsNotACsn) {
  for (const char* text : {"", "20261130170001.250000Z", "20261130170001.250000Z#000000#001",
                           "20261130170001.250000#000000#001#000000", "2026113017000x.250000Z#000000#001#000000",
                           "20261331170001.250000Z#000000#001#000000", "20261130250001.250000Z#000000#001#000000",
                           "20261130170001.2500001Z#000000#001#000000", "20261130170001.250000Z#00000g#001#000000",
                           "20261130170001.250000Z#000000#1001#000000", "20261130170001.250000Z#000000#001#000000#0"}) {
    SCOPED_TRACE(text);
    EXPECT_FALSE(parse_csn(text));
  }
}

TEST(ParseCsnTest, OrdersByTimeThenCountAndMeasuresSecondsBetweenTimestamps) {
  auto a = *parse_csn(csn_at(100.25));
  auto b = *parse_csn(csn_at(100.25, 1, 1));
  auto c = *parse_csn(csn_at(117.75));
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_DOUBLE_EQ(seconds_between(a, c), 17.5);
  EXPECT_DOUBLE_EQ(seconds_between(c, a), -17.5);
}

TEST(JudgeReplicationTest, AnIdleProviderIsNotBehind) {
  // Provider 1 last wrote long ago (ten minutes before either look): both directories hold that
  // change, nobody is behind, whatever the clock says now.
  std::vector<DirectorySamples> samples{
      {"master", look({{1, csn_at(-600)}, {2, csn_at(50, 2)}}), look({{1, csn_at(-600)}, {2, csn_at(52, 2)}})},
      {"clone", look({{1, csn_at(-600)}, {2, csn_at(50, 2)}}), look({{1, csn_at(-600)}, {2, csn_at(52, 2)}})},
  };
  auto h = judge_replication(samples, {}, {});
  EXPECT_TRUE(h.findings.empty()) << all_messages(h.findings);
  for (const char* d : {"master", "clone"}) {
    SCOPED_TRACE(d);
    const auto* p = provider(h, d, 1);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(p->lag_seconds, 0.0);
    EXPECT_FALSE(p->provider_writing);
    EXPECT_FALSE(p->advanced);
    EXPECT_TRUE(p->receiving);
  }
  EXPECT_EQ(h.directories.at(1).lag_seconds, 0.0);
}

TEST(JudgeReplicationTest, LagIsTheDifferenceOfTheCsnsNotTheAgeOfTheCsn) {
  std::vector<DirectorySamples> samples{
      {"master", look({{1, csn_at(100)}}), look({{1, csn_at(102)}})},
      {"clone", look({{1, csn_at(99.25)}}), look({{1, csn_at(101.5)}})},
  };
  auto h = judge_replication(samples, {}, {});
  EXPECT_TRUE(h.findings.empty()) << all_messages(h.findings);
  const auto* p = provider(h, "clone", 1);
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(p->lag_seconds);
  EXPECT_DOUBLE_EQ(*p->lag_seconds, 0.5);
  EXPECT_TRUE(p->advanced);
  EXPECT_TRUE(p->provider_writing);
  EXPECT_DOUBLE_EQ(h.directories.at(1).lag_seconds, 0.5);
  EXPECT_EQ(provider(h, "master", 1)->lag_seconds, 0.0);
}

TEST(JudgeReplicationTest, ADirectoryCutOffFromAWritingProviderIsFlaggedWithTheCsnDifference) {
  // The partition is 17 s old: the clone's copy of provider 1 stopped at 83 while the master
  // kept writing. The clone's own changes still reach the master.
  HealthOptions options;
  options.provider_labels = {{1, "replica 1 (master)"}};
  std::vector<DirectorySamples> samples{
      {"master", look({{1, csn_at(100)}, {2, csn_at(99, 2)}}), look({{1, csn_at(102)}, {2, csn_at(101, 2)}})},
      {"ldaps://clone:636/", look({{1, csn_at(83)}, {2, csn_at(100, 2)}}), look({{1, csn_at(83)}, {2, csn_at(102, 2)}})},
  };
  auto h = judge_replication(samples, {}, options);
  ASSERT_EQ(h.findings.size(), 1u) << all_messages(h.findings);
  const auto& f = h.findings[0];
  EXPECT_EQ(f.kind, FindingKind::not_receiving);
  EXPECT_EQ(f.directory, "ldaps://clone:636/");
  EXPECT_EQ(f.replica_id, 1);
  EXPECT_NE(f.message.find("ldaps://clone:636/ is not receiving changes from replica 1 (master)"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("19.0 s behind master"), std::string::npos) << f.message;
  EXPECT_NE(f.message.find("kept writing"), std::string::npos) << f.message;
  const auto* p = provider(h, "ldaps://clone:636/", 1);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->receiving);
  EXPECT_DOUBLE_EQ(*p->lag_seconds, 19.0);
  EXPECT_TRUE(provider(h, "master", 2)->receiving);
}

TEST(JudgeReplicationTest, ADirectoryWithNoneOfAWritingProvidersChangesIsFlagged) {
  std::vector<DirectorySamples> samples{
      {"master", look({{1, csn_at(100)}}), look({{1, csn_at(102)}})},
      {"clone", look({}), look({})},
  };
  auto h = judge_replication(samples, {}, {});
  ASSERT_EQ(h.findings.size(), 1u) << all_messages(h.findings);
  EXPECT_EQ(h.findings[0].kind, FindingKind::not_receiving);
  EXPECT_NE(h.findings[0].message.find("holds none of them"), std::string::npos) << h.findings[0].message;
  EXPECT_FALSE(provider(h, "clone", 1)->lag_seconds);
}

TEST(JudgeReplicationTest, AChangeMadeJustBeforeTheSecondLookIsNotHeldAgainstAnyone) {
  // Provider 1 was idle, then wrote between the looks; the clone has not received it yet. It
  // shows as lag (the CSN difference) but nothing had a whole interval to arrive.
  std::vector<DirectorySamples> samples{
      {"master", look({{1, csn_at(0)}}), look({{1, csn_at(263.8)}})},
      {"clone", look({{1, csn_at(0)}}), look({{1, csn_at(0)}})},
  };
  auto h = judge_replication(samples, {}, {});
  EXPECT_TRUE(h.findings.empty()) << all_messages(h.findings);
  EXPECT_DOUBLE_EQ(*provider(h, "clone", 1)->lag_seconds, 263.8);
  EXPECT_TRUE(provider(h, "clone", 1)->receiving);
}

TEST(JudgeReplicationTest, ADirectoryThatReceivesButLateIsFlaggedAboveMaxLagOnly) {
  HealthOptions options;
  options.max_lag_seconds = 10;
  auto judge = [&](double clone_first, double clone_second) {
    return judge_replication({{"master", look({{1, csn_at(100)}}), look({{1, csn_at(102)}})},
                              {"clone", look({{1, csn_at(clone_first)}}), look({{1, csn_at(clone_second)}})}},
                             {}, options);
  };
  auto late = judge(80, 81);  // moving, 21 s behind
  ASSERT_EQ(late.findings.size(), 1u) << all_messages(late.findings);
  EXPECT_EQ(late.findings[0].kind, FindingKind::lagging);
  EXPECT_NE(late.findings[0].message.find("21.0 s behind replica 1"), std::string::npos) << late.findings[0].message;
  EXPECT_TRUE(provider(late, "clone", 1)->receiving);

  auto catching_up = judge(95, 97);  // moving, 5 s behind
  EXPECT_TRUE(catching_up.findings.empty()) << all_messages(catching_up.findings);
}

TEST(JudgeReplicationTest, AnUnreachableDirectoryAndAnAgreementWithItAreFlagged) {
  std::vector<DirectorySamples> samples{
      {"this instance's directory", look({{1, csn_at(100)}}), look({{1, csn_at(102)}})},
      {"ldaps://clone:636/", no_answer("Can't contact LDAP server"), no_answer("Can't contact LDAP server")},
      // Answered the first look only.
      {"ldaps://other:636/", look({{1, csn_at(100)}}), no_answer("timed out")},
  };
  std::vector<Agreement> agreements{{"this instance's directory", 2, "ldaps://clone:636/"},
                                    {"this instance's directory", 3, "ldaps://other:636/"},
                                    {"this instance's directory", 4, "ldaps://never-looked:636/"}};
  auto h = judge_replication(samples, agreements, {});
  ASSERT_EQ(h.directories.size(), 3u);
  EXPECT_FALSE(h.directories[1].reachable);
  EXPECT_EQ(h.directories[1].error, "Can't contact LDAP server");
  EXPECT_TRUE(h.directories[1].providers.empty());
  EXPECT_FALSE(h.directories[2].reachable);
  EXPECT_EQ(h.directories[2].error, "timed out");

  auto message = [&](FindingKind kind, const std::string& directory, int replica_id) {
    for (const auto& f : h.findings)
      if (f.kind == kind && f.directory == directory && f.replica_id.value_or(0) == replica_id) return f.message;
    return std::string("(none)");
  };
  EXPECT_EQ(h.findings.size(), 5u) << all_messages(h.findings);
  EXPECT_EQ(message(FindingKind::unreachable, "ldaps://clone:636/", 0),
            "cannot read ldaps://clone:636/: Can't contact LDAP server");
  EXPECT_EQ(message(FindingKind::unreachable, "ldaps://other:636/", 0), "cannot read ldaps://other:636/: timed out");
  EXPECT_NE(message(FindingKind::agreement_unreachable, "this instance's directory", 2)
                .find("this instance's directory consumes from ldaps://clone:636/ (replica 2), which cannot be reached"),
            std::string::npos)
      << all_messages(h.findings);
  EXPECT_NE(message(FindingKind::agreement_unreachable, "this instance's directory", 3).find("timed out"), std::string::npos);
  EXPECT_NE(message(FindingKind::agreement_unreachable, "this instance's directory", 4).find("did not look there"),
            std::string::npos);
}

TEST(JudgeReplicationTest, AnUnreadableCsnIsAFindingOnce) {
  std::vector<DirectorySamples> samples{
      {"master", look({{1, csn_at(100)}, {5, "garbage"}}), look({{1, csn_at(102)}, {5, "garbage"}})},
  };
  auto h = judge_replication(samples, {}, {});
  ASSERT_EQ(h.findings.size(), 1u) << all_messages(h.findings);
  EXPECT_EQ(h.findings[0].kind, FindingKind::bad_csn);
  EXPECT_EQ(h.directories.at(0).providers.size(), 1u);
}

TEST(JudgeReplicationTest, AProviderFirstSeenAtTheSecondLookIsNotJudged) {
  std::vector<DirectorySamples> samples{
      {"master", look({{1, csn_at(100)}}), look({{1, csn_at(102)}, {7, csn_at(101, 7)}})},
      {"clone", look({{1, csn_at(100)}}), look({{1, csn_at(102)}})},
  };
  auto h = judge_replication(samples, {}, {});
  EXPECT_TRUE(h.findings.empty()) << all_messages(h.findings);
  const auto* p = provider(h, "clone", 7);
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->csn);
  EXPECT_TRUE(p->receiving);
}

TEST(CompareRecordsTest, EqualCountsWithDifferentRecordsAreNotTheSame) {
  // Two sides of a partition that issued one certificate each: one record each, not the same.
  std::vector<RecordLooks> looks{{"master", {"a", "m1"}, {"a", "m1"}}, {"clone", {"a", "c1"}, {"a", "c1"}}};
  auto r = compare_records(looks, {});
  EXPECT_FALSE(r.same_records);
  ASSERT_EQ(r.directories.size(), 2u);
  for (const auto& d : r.directories) {
    SCOPED_TRACE(d.directory);
    EXPECT_EQ(d.records, 2u);
    EXPECT_EQ(d.missing_here, 1u);
    EXPECT_EQ(d.only_here, 1u);
    EXPECT_EQ(d.not_arriving, 1u);
  }
  ASSERT_EQ(r.findings.size(), 2u);
  EXPECT_EQ(r.findings[0].kind, FindingKind::records_missing);
  EXPECT_NE(r.findings[0].message.find("master lacks 1 certificate record(s)"), std::string::npos) << r.findings[0].message;
  EXPECT_NE(r.findings[0].message.find("serial c1"), std::string::npos) << r.findings[0].message;
}

TEST(CompareRecordsTest, ARecordInFlightIsReportedNotFlagged) {
  // m2 was issued between the looks and has not reached the clone yet; m0 was deleted everywhere.
  std::vector<RecordLooks> looks{{"master", {"m0", "m1"}, {"m1", "m2"}}, {"clone", {"m0", "m1"}, {"m1"}}};
  auto r = compare_records(looks, {});
  EXPECT_FALSE(r.same_records);
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(r.directories[1].missing_here, 1u);
  EXPECT_EQ(r.directories[1].not_arriving, 0u);
  EXPECT_EQ(r.directories[0].only_here, 1u);

  std::vector<RecordLooks> agreeing{{"master", {"m1"}, {"m1", "m2"}}, {"clone", {"m1"}, {"m1", "m2"}}};
  EXPECT_TRUE(compare_records(agreeing, {}).same_records);
}

TEST(CompareRecordsTest, OneDirectoryAloneIsCountedNotCompared) {
  auto r = compare_records({{"master", {"m1"}, {"m1", "m2"}}}, {});
  EXPECT_FALSE(r.compared);
  ASSERT_EQ(r.directories.size(), 1u);
  EXPECT_EQ(r.directories[0].records, 2u);
  EXPECT_EQ(r.directories[0].only_here, 0u);
  EXPECT_TRUE(r.findings.empty());
}

}  // namespace
}  // namespace ca::clone_tools
