#include "crl_role_report.hpp"

#include <fmt/format.h>

#include "authority/revocation/crl_master.hpp"
#include "authority/revocation/crl_numbering.hpp"

namespace ca::clone_tools {

namespace json = boost::json;

namespace {

std::string quoted(const std::string& instance) { return fmt::format("'{}'", instance); }

// Signed whole seconds from `from` to `to`.
long long seconds_between(std::chrono::system_clock::time_point from, std::chrono::system_clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::seconds>(to - from).count();
}

std::string expiry_text(const store::CrlLease& lease, std::chrono::system_clock::time_point read_at) {
  if (authority::crl_lease_given_back(lease))
    return fmt::format("given back ({}): the next eligible instance takes it at once",
                       store::to_generalized_time(lease.expires));
  const long long left = seconds_between(read_at, lease.expires);
  return fmt::format(
      "{}, {} by this machine's clock (informational: the instances judge expiry by their own "
      "monotonic clocks)",
      store::to_iso8601(lease.expires), left >= 0 ? fmt::format("in {} s", left) : fmt::format("{} s ago", -left));
}

std::string handover_text(const std::string& handover) {
  if (handover.empty()) return "none pending";
  if (handover == authority::kCrlHandoverToAnyone)
    return "requested: the holder gives the role up to whichever instance takes it (demote)";
  return fmt::format("requested: the holder hands the role to {}", quoted(handover));
}

json::value optional_string(const std::string& text) { return text.empty() ? json::value(nullptr) : json::value(text); }

json::value crl_number_json(uint64_t number) {
  if (number == 0) return nullptr;
  json::object o;
  o["number"] = number;
  o["epoch"] = authority::epoch_of_crl_number(number);
  o["sequence"] = authority::sequence_of_crl_number(number);
  return o;
}

}  // namespace

const std::string& crl_issuing_point() {
  static const std::string name = authority::ElectionOptions{}.issuing_point;
  return name;
}

std::string epoch_text(uint64_t epoch) {
  if (epoch == 0) return "0 (none minted yet)";
  return fmt::format("{} (generation {}, minted by replica {})", epoch, authority::epoch_generation(epoch),
                     authority::epoch_replica_id(epoch));
}

std::string crl_number_text(uint64_t number) {
  return fmt::format("{} (epoch {}, sequence {})", number, authority::epoch_of_crl_number(number),
                     authority::sequence_of_crl_number(number));
}

std::string crl_holder_summary(const store::CrlLease& lease) {
  std::string line;
  if (lease.holder.empty())
    line = "nobody";
  else if (authority::crl_lease_given_back(lease))
    line = fmt::format("given back by {}, epoch {}: the next eligible instance takes it", quoted(lease.holder),
                       epoch_text(lease.epoch));
  else
    line = fmt::format("{}, epoch {}", lease.holder, epoch_text(lease.epoch));
  if (!lease.pinned.empty()) line += fmt::format("; pinned to {}", quoted(lease.pinned));
  if (!lease.handover.empty()) line += fmt::format("; handover {}", handover_text(lease.handover));
  return line;
}

std::string crl_role_text(const CrlRoleReport& r) {
  const store::CrlLease& lease = r.lease;
  std::string out =
      fmt::format("CRL master role of issuing point {}, as this instance's directory holds it:\n", r.issuing_point);
  auto line = [&out](std::string_view label, const std::string& value) {
    out += fmt::format("  {:<14} {}\n", label, value);
  };
  line("holder", lease.holder.empty() ? std::string("nobody (no instance has held the role yet)") : lease.holder);
  line("epoch", epoch_text(lease.epoch));
  line("lease expires", lease.holder.empty() ? std::string("-") : expiry_text(lease, r.read_at));
  line("pinned to",
       lease.pinned.empty() ? std::string("nobody (the election chooses among the eligible instances)") : lease.pinned);
  line("handover", handover_text(lease.handover));
  const uint64_t full = r.numbers ? r.numbers->crl_number : 0;
  const uint64_t delta = r.numbers ? r.numbers->delta_number : 0;
  line("full CRL", full ? fmt::format("number {}", crl_number_text(full)) : std::string("none published yet"));
  line("delta CRL", delta ? fmt::format("number {}", crl_number_text(delta)) : std::string("none"));
  return out;
}

json::object crl_lease_json(const store::CrlLease& lease, std::chrono::system_clock::time_point read_at) {
  const bool given_back = authority::crl_lease_given_back(lease);
  const bool running = !lease.holder.empty() && !given_back;
  json::object o;
  o["holder"] = optional_string(lease.holder);
  o["epoch"] = lease.epoch;
  o["epoch_generation"] = authority::epoch_generation(lease.epoch);
  o["epoch_replica_id"] = authority::epoch_replica_id(lease.epoch);
  o["given_back"] = given_back;
  if (running)
    o["lease_expires"] = store::to_iso8601(lease.expires);
  else
    o["lease_expires"] = nullptr;
  // By the clock of the machine the tool ran on: informational only.
  if (running)
    o["seconds_until_expiry_by_local_clock"] = seconds_between(read_at, lease.expires);
  else
    o["seconds_until_expiry_by_local_clock"] = nullptr;
  o["pinned"] = optional_string(lease.pinned);
  o["handover"] = optional_string(lease.handover);
  return o;
}

json::object crl_role_json(const CrlRoleReport& r) {
  json::object o;
  o["issuing_point"] = r.issuing_point;
  for (const auto& field : crl_lease_json(r.lease, r.read_at)) o[field.key()] = field.value();
  o["crl_number"] = crl_number_json(r.numbers ? r.numbers->crl_number : 0);
  o["delta_crl_number"] = crl_number_json(r.numbers ? r.numbers->delta_number : 0);
  return o;
}

}  // namespace ca::clone_tools
