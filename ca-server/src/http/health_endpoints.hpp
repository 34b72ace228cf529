#pragma once
// Liveness and readiness for load balancers and orchestrators, on the HTTPS and plain-HTTP ports:
// GET /healthz (the process answers) and GET /readyz (200 or 503, JSON with every check).
#include "authority/instance/readiness.hpp"
#include "http/router.hpp"

namespace ca::http {

void register_health_endpoints(Router& router, const authority::ReadinessMonitor& readiness);

}  // namespace ca::http
