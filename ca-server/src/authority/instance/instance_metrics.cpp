#include "authority/instance/instance_metrics.hpp"

#include <string>

namespace ca::authority {

uint64_t serials_remaining(const RangeState& serials) {
  uint64_t remaining = 0;
  if (serials.current && serials.next >= serials.current->begin && serials.next <= serials.current->end)
    remaining += serials.current->end - serials.next + 1;
  if (serials.standby) remaining += serials.standby->size();
  return remaining;
}

namespace {

void register_crl_metrics(metrics::Registry& registry, const InstanceMetricSources& s) {
  if (const auto* crls = s.crls) {
    registry.gauge_callback("ca_crl_number", "CRL number of the full CRL served here.", {}, [crls] {
      const auto latest = crls->latest();
      if (!latest.full) return std::vector<metrics::GaugeSample>{};
      return std::vector<metrics::GaugeSample>{{{}, static_cast<double>(latest.full->number)}};
    });
    registry.counter_callback(
        "ca_crl_older_stored_total",
        "Times the directory held a CRL numbered below the one served or published here: two epochs publishing "
        "(never served; a master publishes a full CRL again).",
        {}, [crls] {
          return std::vector<metrics::GaugeSample>{{{}, static_cast<double>(crls->older_crls_stored())}};
        });
    registry.gauge_callback("ca_crl_age_seconds", "Seconds since thisUpdate of the full CRL served here.", {}, [crls] {
      const auto latest = crls->latest();
      if (!latest.full) return std::vector<metrics::GaugeSample>{};
      const auto age = std::chrono::system_clock::now() - latest.full->this_update;
      return std::vector<metrics::GaugeSample>{{{}, std::chrono::duration<double>(age).count()}};
    });
  }
  if (const auto* election = s.election) {
    registry.gauge_callback("ca_crl_master", "1 while this instance holds the CRL master lease, else 0.",
                            [election] { return election->is_master() ? 1.0 : 0.0; });
    registry.counter_callback(
        "ca_crl_lease_epoch_regressions_total",
        "CRL lease reads whose epoch was below one this instance had seen (a directory behind): never followed.", {},
        [election] {
          return std::vector<metrics::GaugeSample>{{{}, static_cast<double>(election->epoch_regressions())}};
        });
    registry.gauge_callback("ca_crl_lease_holder_info", "The CRL master lease holder this instance last saw (value 1).",
                            {"instance"}, [election] {
                              const auto lease = election->last_seen();
                              if (lease.holder.empty()) return std::vector<metrics::GaugeSample>{};
                              return std::vector<metrics::GaugeSample>{{{lease.holder}, 1.0}};
                            });
  }
  if (const auto* consistency = s.crl_consistency) {
    registry.counter_callback(
        "ca_crl_behind_total",
        "Times this instance turned not ready for serving a CRL below the newest one published (here or by a peer).",
        {}, [consistency] {
          return std::vector<metrics::GaugeSample>{{{}, static_cast<double>(consistency->behind_episodes())}};
        });
  }
}

}  // namespace

void register_instance_metrics(metrics::Registry& registry, const InstanceMetricSources& s) {
  if (s.writer) {
    auto& batch_size = registry.histogram("ca_store_commit_batch_size", "Record units written per group-commit batch.",
                                          {1, 2, 4, 8, 16, 32, 64, 128, 256});
    auto& sync_seconds = registry.histogram(
        "ca_store_commit_sync_seconds", "Time to write one group-commit batch to the directory and sync it to disk.",
        metrics::latency_buckets());
    s.writer->set_batch_observer([&batch_size, &sync_seconds](const store::BatchReport& report) {
      batch_size.observe({}, static_cast<double>(report.units));
      sync_seconds.observe({}, std::chrono::duration<double>(report.write_time).count());
    });
  }
  if (const auto* ca = s.authority) {
    registry.gauge_callback(
        "ca_serial_range_remaining",
        "Serial numbers this instance can still issue from its current and standby ranges (absent with random "
        "serials).",
        {}, [ca] {
          const auto counters = ca->counters();
          if (!counters.serials.current && !counters.serials.standby) return std::vector<metrics::GaugeSample>{};
          return std::vector<metrics::GaugeSample>{{{}, static_cast<double>(serials_remaining(counters.serials))}};
        });
  }
  register_crl_metrics(registry, s);
  if (const auto* readiness = s.readiness) {
    registry.gauge_callback("ca_ready", "1 when this instance is ready for traffic (/readyz answers 200), else 0.",
                            [readiness] { return readiness->report().ready ? 1.0 : 0.0; });
  }
  if (const auto* monitor = s.context_csns) {
    registry.gauge_callback(
        "ca_replication_context_csn_age_seconds",
        "Age of the newest change of each provider (by server ID) that this directory holds (contextCSN).",
        {"server_id"}, [monitor] {
          const auto now = std::chrono::system_clock::now();
          std::vector<metrics::GaugeSample> samples;
          for (const auto& [sid, time] : monitor->snapshot().csn_times)
            samples.push_back({{std::to_string(sid)}, std::chrono::duration<double>(now - time).count()});
          return samples;
        });
  }
}

}  // namespace ca::authority
