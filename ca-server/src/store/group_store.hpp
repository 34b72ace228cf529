#pragma once
// Role groups (agents, administrators, auditors) and their members.
#include <string>
#include <vector>

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

class GroupStore {
 public:
  virtual ~GroupStore() = default;

  // Group membership (agents): the member value names a certificate (see authority/agent_authenticator.hpp).
  virtual Result<bool> is_group_member(std::string_view group, std::string_view member) = 0;
  virtual Status add_group_member(std::string_view group, std::string_view member) = 0;
  // not_found when the value is not a member.
  virtual Status remove_group_member(std::string_view group, std::string_view member) = 0;
  virtual Result<std::vector<std::string>> group_members(std::string_view group) = 0;
};

}  // namespace ca::store
