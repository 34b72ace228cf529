#pragma once
// Text a caller sent, as it may appear in an audit record, a log line or an error message: cut
// short, so that a client cannot make the server write (or sync) its input at length.
#include <cstddef>
#include <string>
#include <string_view>

namespace ca {

inline constexpr std::size_t kCallerTextBytes = 128;

// At most max_bytes of `text` (cut at a UTF-8 character boundary), followed by "…" when it was longer.
std::string caller_text(std::string_view text, std::size_t max_bytes = kCallerTextBytes);
// `text` with its control characters shown as \xNN (C1 ones as \u00NN), so that an error message
// never carries them; nothing is cut.
std::string printable_text(std::string_view text);
// Whether `text` (UTF-8) holds a C0 control character, DEL or a C1 control (U+0080..U+009F).
bool has_control_character(std::string_view text);

}  // namespace ca
