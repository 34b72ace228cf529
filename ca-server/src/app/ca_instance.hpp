#pragma once
// The composition root: one CA instance (its directory, store, authority, CRL master election and
// publisher, OCSP, key archive, clone registry, readiness, metrics, periodic upkeep and HTTPS
// server) built from its config. `ca-server run` makes one in its process; tests can make one in
// theirs, on free ports, and stop it without signals.
#include <cstdint>
#include <memory>

#include "core/config.hpp"
#include "core/error.hpp"

namespace ca::app {

class CaInstance {
 public:
  // Builds and wires everything and starts the background parts (the embedded directory, the
  // directory watches, the CRL publisher and election); the HTTPS listeners are bound but serve
  // only once run() is called. A config error is ErrorCode::config.
  [[nodiscard]] static Result<std::unique_ptr<CaInstance>> open(const InstanceConfig& config);
  ~CaInstance();
  CaInstance(const CaInstance&) = delete;
  CaInstance& operator=(const CaInstance&) = delete;

  // Serves until stop() (from any thread), then shuts everything down in order: what submits
  // work first, then queued directory writes, the server, the authority, the last audit
  // signature and the directory. Returns after that.
  void run();
  // Asks run() to return: readiness turns "draining", the server stops accepting and finishes
  // the requests it has. Safe from any thread and more than once.
  void stop();

  // The port listener `index` is bound to (0: HTTPS, 1: the plain HTTP listener if configured).
  [[nodiscard]] uint16_t bound_port(std::size_t index) const;
  [[nodiscard]] const InstanceConfig& config() const;

 private:
  struct Parts;
  explicit CaInstance(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace ca::app
