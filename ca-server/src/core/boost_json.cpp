// Boost.JSON is used header-only: its implementation is compiled here, in the lowest layer that
// reads JSON (the log readers of core/json_text), and only here.
#include <boost/json/src.hpp>
