// The XML writer of the Dogtag interface (http/xml): escaping of markup and control characters,
// element nesting and finish(), and well-formedness of produced documents checked by a real parser
// (xmllint when installed, else Python's minidom), which also reads the hostile text back.
#include "http/xml.hpp"

#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "support/temp_dir.hpp"

namespace ca::http {
namespace {

using ca::testing::shell;
using ca::testing::TempDir;
using ca::testing::write_file;

constexpr std::string_view kDeclaration = R"(<?xml version="1.0" encoding="UTF-8" standalone="no"?>)";

// Parses the file with a real XML parser: {exit code, output}.
ca::testing::Shell parse_xml(const std::string& path) {
  if (shell("command -v xmllint").exit_code == 0) return shell("xmllint --noout " + path);
  return shell("python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' " + path);
}

// The text of the element named `name` as the parser sees it (entities resolved), as hex so no
// shell or terminal encoding gets in between.
std::string parsed_text_hex(const std::string& path, const std::string& name) {
  auto out = shell(
      "python3 -c 'import xml.dom.minidom,sys; d=xml.dom.minidom.parse(sys.argv[1]); "
      "e=d.getElementsByTagName(sys.argv[2])[0]; "
      "sys.stdout.write(\"\".join(n.data for n in e.childNodes).encode(\"utf-8\").hex())' " +
      path + " " + name);
  EXPECT_EQ(out.exit_code, 0) << out.output;
  return out.output;
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

TEST(XmlEscape, MarkupCharactersBecomeEntities) {
  const struct {
    std::string_view in;
    std::string_view out;
  } cases[] = {
      {"", ""},
      {"plain text 123", "plain text 123"},
      {"&", "&amp;"},
      {"<", "&lt;"},
      {">", "&gt;"},
      {"\"", "&quot;"},
      {"'", "&apos;"},
      {"a&b<c>d\"e'f", "a&amp;b&lt;c&gt;d&quot;e&apos;f"},
      {"&amp;", "&amp;amp;"},  // already-escaped text is escaped again: the writer takes raw text
      {"</x><y>", "&lt;/x&gt;&lt;y&gt;"},
      {"CN=Ren\xc3\xa9,O=Example", "CN=Ren\xc3\xa9,O=Example"},  // UTF-8 passes through
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.in);
    EXPECT_EQ(xml_escape(c.in), c.out);
  }
}

TEST(XmlEscape, ControlCharactersBecomeQuestionMarksExceptTabNewlineAndReturn) {
  for (int c = 0; c < 0x20; ++c) {
    SCOPED_TRACE(c);
    const std::string in{'a', static_cast<char>(c), 'b'};
    const bool kept = c == '\t' || c == '\n';
    EXPECT_EQ(xml_escape(in), c == '\r' ? std::string("a&#13;b") : kept ? in : std::string("a?b"));
  }
  EXPECT_EQ(xml_escape(std::string_view("x\0y", 3)), "x?y");
  EXPECT_EQ(xml_escape(" ~\x7f"), " ~\x7f");  // printable ASCII and DEL are allowed in XML 1.0
}

TEST(XmlEscape, BytesThatAreNotWellFormedUtf8BecomeQuestionMarks) {
  EXPECT_EQ(xml_escape("a\xff" "b"), "a?b");                // never valid in UTF-8
  EXPECT_EQ(xml_escape("a\xc3"), "a?");                     // cut in the middle of a character
  EXPECT_EQ(xml_escape("\xc0\xaf"), "??");                  // overlong '/'
  EXPECT_EQ(xml_escape("\xed\xa0\x80"), "???");            // a surrogate
  EXPECT_EQ(xml_escape("\xef\xbf\xbe"), "???");            // U+FFFE
  EXPECT_EQ(xml_escape("\xf0\x9f\x94\x91 key"), "\xf0\x9f\x94\x91 key");  // U+1F511 passes through
}

TEST(XmlWriter, StartsWithTheDeclaration) {
  XmlWriter w;
  EXPECT_EQ(w.finish(), kDeclaration);
}

TEST(XmlWriter, NestsElementsAndEscapesText) {
  XmlWriter w;
  w.open("CertEnrollmentResponse")
      .element("Status", "0")
      .open("Requests")
      .open("Request")
      .element("Id", "17")
      .element("Subject", "CN=a&b <c>")
      .close()
      .element("Total", "1")
      .close()
      .element("Note", "");
  EXPECT_EQ(w.finish(), std::string(kDeclaration) +
                            "<CertEnrollmentResponse><Status>0</Status><Requests><Request><Id>17</Id>"
                            "<Subject>CN=a&amp;b &lt;c&gt;</Subject></Request><Total>1</Total></Requests>"
                            "<Note></Note></CertEnrollmentResponse>");
}

TEST(XmlWriter, FinishClosesEveryOpenElementInnermostFirst) {
  XmlWriter w;
  w.open("a").open("b").element("x", "1").open("c");
  EXPECT_EQ(w.finish(), std::string(kDeclaration) + "<a><b><x>1</x><c></c></b></a>");
}

TEST(XmlWriter, CloseWithNothingOpenDoesNothing) {
  XmlWriter w;
  w.open("a").close().close().close();
  EXPECT_EQ(w.finish(), std::string(kDeclaration) + "<a></a>");
}

class XmlWellFormed : public ::testing::Test {
 protected:
  TempDir dir_{"ca-xml"};
};

TEST_F(XmlWellFormed, TheParserRejectsABrokenDocument) {
  // Proves the checker below can fail: raw markup in text breaks the document.
  auto path = write_file(dir_ / "broken.xml", std::string(kDeclaration) + "<r><t></x><y>&amp;\x01</t></r>");
  auto parsed = parse_xml(path.string());
  EXPECT_NE(parsed.exit_code, 0) << parsed.output;
}

TEST_F(XmlWellFormed, HostileTextStaysTextForARealParser) {
  const std::string hostile = "</x><y>&amp;\x01 \"q\" 'a' ]]> <!-- --> <?pi?> <![CDATA[ z ]]>\x1f\x0b";
  XmlWriter w;
  w.open("r").element("t", hostile).open("nested").element("u", "Ren\xc3\xa9\tA\nB").element("empty", "");
  auto path = write_file(dir_ / "doc.xml", w.finish());

  auto parsed = parse_xml(path.string());
  ASSERT_EQ(parsed.exit_code, 0) << parsed.output;

  // The parser gives back exactly the text, with the control characters replaced.
  std::string expected = hostile;
  for (char& c : expected)
    if (c == '\x01' || c == '\x1f' || c == '\x0b') c = '?';
  EXPECT_EQ(parsed_text_hex(path.string(), "t"), hex(expected));
  EXPECT_EQ(parsed_text_hex(path.string(), "u"), hex("Ren\xc3\xa9\tA\nB"));
  // And none of it became an element.
  EXPECT_EQ(shell("python3 -c 'import xml.dom.minidom,sys; d=xml.dom.minidom.parse(sys.argv[1]); "
                  "sys.exit(len(d.getElementsByTagName(\"y\")) + len(d.getElementsByTagName(\"x\")))' " +
                  path.string())
                .exit_code,
            0);
}

TEST_F(XmlWellFormed, EveryByteFromZeroToDelStaysWellFormed) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all += static_cast<char>(c);
  XmlWriter w;
  w.open("r").element("t", all);
  auto path = write_file(dir_ / "ascii.xml", w.finish());
  auto parsed = parse_xml(path.string());
  EXPECT_EQ(parsed.exit_code, 0) << parsed.output;
}

}  // namespace
}  // namespace ca::http
