#pragma once
// A small writer for the XML documents of Dogtag's interface (elements and text only).
#include <string>
#include <string_view>
#include <vector>

namespace ca::http {

// &, <, >, " and ' as entities; control characters XML 1.0 cannot carry become '?'.
std::string xml_escape(std::string_view text);

class XmlWriter {
 public:
  XmlWriter();
  XmlWriter& open(std::string_view name);
  XmlWriter& close();
  XmlWriter& element(std::string_view name, std::string_view text);
  // Closes every open element and returns the document.
  std::string finish();

 private:
  std::string out_;
  std::vector<std::string> open_;
};

}  // namespace ca::http
