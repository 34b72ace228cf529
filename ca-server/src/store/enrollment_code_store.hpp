#pragma once
// Enrollment codes (one-time secrets an agent hands out).

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

class EnrollmentCodeStore {
 public:
  virtual ~EnrollmentCodeStore() = default;

  // Enrollment codes. consume: unused -> used (conflict when already used); release undoes it.
  virtual Status add_enrollment_code(const EnrollmentCodeRecord& code) = 0;
  virtual Result<EnrollmentCodeRecord> find_enrollment_code(std::string_view id) = 0;
  virtual Status consume_enrollment_code(std::string_view id, std::string_view request_id_hex) = 0;
  virtual Status release_enrollment_code(std::string_view id) = 0;
};

}  // namespace ca::store
