#include "http/audit_endpoints.hpp"

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "http/agent_handlers.hpp"
#include "http/responses.hpp"

namespace ca::http {

namespace bhttp = boost::beast::http;

void register_audit_endpoints(Router& router, authority::AgentAuthenticator& auditors, authority::AuditLog& audit) {
  router.add(bhttp::verb::get, "/ca/rest/audit/log",
             for_agents_returning(auditors, [&audit](const RequestContext&, const authority::AgentIdentity&)
                                                -> Result<Response> {
               // Everything recorded so far, signed (the auditor's own call included).
               audit.sign_now();
               std::ifstream in(audit.file(), std::ios::binary);
               if (!in)
                 return fail(Error::unavailable(fmt::format("the audit log {} cannot be read", audit.file().string())));
               std::ostringstream text;
               text << in.rdbuf();
               return bytes_response(bhttp::status::ok, text.str(), "application/x-ndjson");
             }));
}

}  // namespace ca::http
