#pragma once
// The audit trail for auditors (TLS client certificate in the Auditors group, checked at every
// request; 401 without a certificate, 403 for anyone else, agents and administrators included):
//   GET /ca/rest/audit/log   -> 200 application/x-ndjson: this instance's audit log, signed up to
//                               its last record first (so the copy verifies without an unsigned tail)
// An auditor verifies any instance's trail from another instance: fetch it here, then
// `ca-server audit verify --config <that other instance> --instance <this one> --file <copy>`
// compares it with this instance's checkpoints in the replicated directory.
#include "authority/audit/audit_log.hpp"
#include "authority/revocation/revocation.hpp"
#include "http/router.hpp"

namespace ca::http {

void register_audit_endpoints(Router& router, authority::AgentAuthenticator& auditors, authority::AuditLog& audit);

}  // namespace ca::http
