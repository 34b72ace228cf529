#pragma once
// Certificate profiles (the directory copy is authoritative).
#include <vector>

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

class ProfileStore {
 public:
  virtual ~ProfileStore() = default;

  virtual Status put_profile(const ProfileRecord& profile, bool overwrite) = 0;
  virtual Result<std::vector<ProfileRecord>> list_profiles() = 0;
};

}  // namespace ca::store
