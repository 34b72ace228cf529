// Boost.JSON is used header-only: its implementation is compiled here, and only here.
#include <boost/json/src.hpp>
