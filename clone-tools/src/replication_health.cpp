#include "replication_health.hpp"

#include <algorithm>
#include <charconv>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace ca::clone_tools {

namespace {

// The whole of `text` as a number in `base`; nullopt for anything else (empty, signs, junk).
std::optional<unsigned long> whole_number(std::string_view text, int base) {
  unsigned long value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::string seconds_text(double seconds) { return fmt::format("{:.1f} s", seconds); }

std::string provider_label(const HealthOptions& options, int replica_id) {
  auto it = options.provider_labels.find(replica_id);
  return it != options.provider_labels.end() ? it->second : fmt::format("replica {}", replica_id);
}

// The newest CSN of one provider in one look, and the directory that held it.
struct Newest {
  Csn csn;
  std::string directory;
};

// A look's CSN texts, parsed; the ones that do not parse become findings (once per value).
class CsnReader {
 public:
  explicit CsnReader(std::vector<Finding>& findings) : findings_(findings) {}

  std::map<int, Csn> read(const std::string& directory, const DirectoryLook& look) {
    std::map<int, Csn> out;
    if (!look.reached) return out;
    for (const auto& [replica_id, text] : look.context_csns) {
      auto csn = parse_csn(text);
      if (csn) {
        out[replica_id] = *csn;
      } else if (reported_.insert({directory, text}).second) {
        findings_.push_back(
            {FindingKind::bad_csn, directory, replica_id,
             fmt::format("{} holds a contextCSN that cannot be read: {}", directory, csn.error().message)});
      }
    }
    return out;
  }

 private:
  std::vector<Finding>& findings_;
  std::set<std::pair<std::string, std::string>> reported_;
};

void keep_newest(std::map<int, Newest>& newest, const std::string& directory, const std::map<int, Csn>& csns) {
  for (const auto& [replica_id, csn] : csns) {
    auto [it, inserted] = newest.try_emplace(replica_id, Newest{csn, directory});
    if (!inserted && it->second.csn < csn) it->second = Newest{csn, directory};
  }
}

template <typename Map>
auto find_value(const Map& map, int key) -> std::optional<typename Map::mapped_type> {
  auto it = map.find(key);
  if (it == map.end()) return std::nullopt;
  return it->second;
}

}  // namespace

Result<Csn> parse_csn(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail(Error::bad_request(fmt::format("'{}' is not a CSN ({})", text.substr(0, 80), why)));
  };
  std::vector<std::string_view> fields;
  for (std::size_t start = 0;;) {
    auto hash = text.find('#', start);
    fields.push_back(text.substr(start, hash == std::string_view::npos ? std::string_view::npos : hash - start));
    if (hash == std::string_view::npos) break;
    start = hash + 1;
  }
  if (fields.size() != 4) return bad("expected time#count#sid#mod");

  // YYYYmmddHHMMSS[.f...]Z: up to microseconds, as slapd writes them.
  std::string_view time = fields[0];
  if (time.size() < 15 || time.back() != 'Z') return bad("bad timestamp");
  time.remove_suffix(1);
  std::string_view whole = time.substr(0, 14);
  std::string_view fraction = time.substr(14);
  auto number = [&](std::size_t at, std::size_t length) { return whole_number(whole.substr(at, length), 10); };
  auto year = number(0, 4), month = number(4, 2), day = number(6, 2);
  auto hour = number(8, 2), minute = number(10, 2), second = number(12, 2);
  if (!year || !month || !day || !hour || !minute || !second) return bad("bad timestamp");
  std::chrono::year_month_day date{std::chrono::year{static_cast<int>(*year)},
                                   std::chrono::month{static_cast<unsigned>(*month)},
                                   std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return bad("bad timestamp");
  long micros = 0;
  if (!fraction.empty()) {
    if (fraction.front() != '.' || fraction.size() < 2 || fraction.size() > 7) return bad("bad fraction of a second");
    auto digits = whole_number(fraction.substr(1), 10);
    if (!digits) return bad("bad fraction of a second");
    micros = static_cast<long>(*digits);
    for (std::size_t i = fraction.size() - 1; i < 6; ++i) micros *= 10;
  }

  auto count = whole_number(fields[1], 16), sid = whole_number(fields[2], 16), mod = whole_number(fields[3], 16);
  if (!count || !sid || !mod || fields[2].size() > 3) return bad("bad count, server ID or modification number");
  Csn csn;
  csn.time = std::chrono::sys_days(date) + std::chrono::hours(*hour) + std::chrono::minutes(*minute) +
             std::chrono::seconds(*second) + std::chrono::microseconds(micros);
  csn.count = *count;
  csn.server_id = static_cast<int>(*sid);
  csn.mod = *mod;
  return csn;
}

double seconds_between(const Csn& older, const Csn& newer) {
  return std::chrono::duration<double>(newer.time - older.time).count();
}

std::string csn_time_text(const Csn& csn) {
  auto days = std::chrono::floor<std::chrono::days>(csn.time);
  std::chrono::year_month_day date{days};
  std::chrono::hh_mm_ss clock{csn.time - days};
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}Z", static_cast<int>(date.year()),
                     static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()), clock.hours().count(),
                     clock.minutes().count(), clock.seconds().count(), clock.subseconds().count());
}

std::string_view finding_kind_name(FindingKind kind) {
  switch (kind) {
    case FindingKind::unreachable:
      return "unreachable";
    case FindingKind::agreement_unreachable:
      return "agreement_unreachable";
    case FindingKind::not_receiving:
      return "not_receiving";
    case FindingKind::lagging:
      return "lagging";
    case FindingKind::records_missing:
      return "records_missing";
    case FindingKind::bad_csn:
      return "bad_csn";
  }
  return "unknown";
}

ReplicationHealth judge_replication(const std::vector<DirectorySamples>& samples,
                                    const std::vector<Agreement>& agreements, const HealthOptions& options) {
  ReplicationHealth out;
  CsnReader reader(out.findings);
  std::vector<std::pair<std::map<int, Csn>, std::map<int, Csn>>> parsed;
  std::map<int, Newest> newest_first, newest_second;
  for (const auto& s : samples) {
    auto& [first, second] = parsed.emplace_back(reader.read(s.name, s.first), reader.read(s.name, s.second));
    keep_newest(newest_first, s.name, first);
    keep_newest(newest_second, s.name, second);
  }

  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    DirectoryHealth& health = out.directories.emplace_back();
    health.name = s.name;
    health.reachable = s.first.reached && s.second.reached;
    if (!health.reachable) {
      health.error = s.first.reached ? s.second.error : s.first.error;
      out.findings.push_back(
          {FindingKind::unreachable, s.name, std::nullopt, fmt::format("cannot read {}: {}", s.name, health.error)});
      continue;
    }
    const auto& [first, second] = parsed[i];
    for (const auto& [replica_id, newest] : newest_second) {
      ProviderState& p = health.providers.emplace_back();
      p.replica_id = replica_id;
      p.csn = find_value(second, replica_id);
      auto before = find_value(first, replica_id);
      auto newest_before = find_value(newest_first, replica_id);
      if (p.csn) p.lag_seconds = std::max(0.0, seconds_between(*p.csn, newest.csn));
      p.advanced = p.csn && (!before || *before < *p.csn);
      p.provider_writing = !newest_before || newest_before->csn < newest.csn;
      // Changes that some directory held at the first look: a working agreement has brought them
      // here by the second.
      bool missing_old = newest_before && (!p.csn || *p.csn < newest_before->csn);
      const std::string provider = provider_label(options, replica_id);
      if (missing_old && !p.advanced) {
        p.receiving = false;
        std::string where = p.csn ? fmt::format("it is {} behind {} and its contextCSN for {} did not move in {}",
                                                seconds_text(*p.lag_seconds), newest.directory, provider,
                                                seconds_text(options.interval_seconds))
                                  : fmt::format("it holds none of them, {} does", newest.directory);
        out.findings.push_back(
            {FindingKind::not_receiving, s.name, replica_id,
             fmt::format("{} is not receiving changes from {} (partition or broken agreement): {}{}", s.name, provider,
                         where, p.provider_writing ? fmt::format(", while {} kept writing", provider) : "")});
      } else if (missing_old && p.lag_seconds && *p.lag_seconds > options.max_lag_seconds) {
        out.findings.push_back(
            {FindingKind::lagging, s.name, replica_id,
             fmt::format("{} is {} behind {} (more than --max-lag {}): it receives its changes, late", s.name,
                         seconds_text(*p.lag_seconds), provider, seconds_text(options.max_lag_seconds))});
      }
      if (p.lag_seconds) health.lag_seconds = std::max(health.lag_seconds, *p.lag_seconds);
    }
  }

  for (const auto& a : agreements) {
    auto it = std::find_if(out.directories.begin(), out.directories.end(),
                           [&](const auto& d) { return d.name == a.provider; });
    if (it != out.directories.end() && it->reachable) continue;
    std::string why = it == out.directories.end() ? "the tool did not look there" : it->error;
    out.findings.push_back({FindingKind::agreement_unreachable, a.consumer, a.replica_id,
                            fmt::format("{} consumes from {} ({}), which cannot be reached from here: {}", a.consumer,
                                        a.provider, provider_label(options, a.replica_id), why)});
  }
  return out;
}

RecordComparison compare_records(const std::vector<RecordLooks>& looks, const HealthOptions& options) {
  RecordComparison out;
  out.compared = looks.size() >= 2;
  if (!out.compared) {
    for (const auto& l : looks) out.directories.push_back(RecordCount{l.directory, l.second.size()});
    return out;
  }
  // How many directories held each record at each look.
  std::unordered_map<std::string_view, int> held_first, held_second;
  for (const auto& l : looks) {
    for (const auto& serial : l.first) ++held_first[serial];
    for (const auto& serial : l.second) ++held_second[serial];
  }
  for (const auto& l : looks) {
    RecordCount& count = out.directories.emplace_back();
    count.directory = l.directory;
    count.records = l.second.size();
    std::vector<std::string_view> examples;
    for (const auto& [serial, directories] : held_second) {
      bool here = l.second.contains(serial);
      int elsewhere = directories - (here ? 1 : 0);
      if (here && elsewhere == 0) ++count.only_here;
      if (here || elsewhere == 0) continue;
      ++count.missing_here;
      auto first = held_first.find(serial);
      int elsewhere_before = first == held_first.end() ? 0 : first->second - (l.first.contains(serial) ? 1 : 0);
      if (elsewhere_before > 0) {
        ++count.not_arriving;
        if (examples.size() < 3) examples.push_back(serial);
      }
    }
    if (count.missing_here || count.only_here) out.same_records = false;
    if (count.not_arriving) {
      std::sort(examples.begin(), examples.end());
      out.findings.push_back(
          {FindingKind::records_missing, l.directory, std::nullopt,
           fmt::format("{} lacks {} certificate record(s) that other directories held at both looks, "
                       "{} apart (e.g. serial {}): they are not replicated here",
                       l.directory, count.not_arriving, seconds_text(options.interval_seconds),
                       fmt::join(examples, ", "))});
    }
  }
  return out;
}

}  // namespace ca::clone_tools
