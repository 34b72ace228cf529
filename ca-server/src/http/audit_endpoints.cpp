#include "http/audit_endpoints.hpp"

#include <fmt/format.h>

#include "core/files.hpp"
#include "http/agent_handlers.hpp"
#include "http/responses.hpp"

namespace ca::http {

namespace bhttp = boost::beast::http;

void register_audit_endpoints(Router& router, authority::AgentAuthenticator& auditors, authority::AuditLog& audit) {
  router.add(
      bhttp::verb::get, "/ca/rest/audit/log",
      for_agents_returning(
          auditors, [&audit](const RequestContext&, const authority::AgentIdentity&) -> Result<Response> {
            // Everything recorded so far, signed (the auditor's own call included).
            audit.sign_now();
            auto text = read_file(audit.file());
            if (!text)
              return fail(Error::unavailable(fmt::format("the audit log {} cannot be read", audit.file().string())));
            return bytes_response(bhttp::status::ok, *text, "application/x-ndjson");
          }));
}

}  // namespace ca::http
