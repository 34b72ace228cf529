// core/files: the one reader of whole files and the one of secret files.
#include "core/files.hpp"

#include <gtest/gtest.h>

#include "support/temp_dir.hpp"

namespace ca {
namespace {

using testing::TempDir;
using testing::write_file;

TEST(ReadFile, ReturnsEveryByteAndNamesAFileItCannotRead) {
  TempDir dir;
  const std::string bytes("line one\r\nline two\0with a NUL\n", 31);
  auto path = write_file(dir / "data", bytes);
  auto text = read_file(path);
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_EQ(*text, bytes);
  auto missing = read_file(dir / "missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::io);
  EXPECT_NE(missing.error().message.find((dir / "missing").string()), std::string::npos) << missing.error().message;
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos) << missing.error().message;
  auto folder = read_file(dir.path());
  EXPECT_FALSE(folder) << "a folder read as a file";
}

TEST(ReadSecretFile, TakesTheFirstLineWithoutTrailingBlanksAndNeverTheContentInAnError) {
  TempDir dir;
  auto secret = read_secret_file(write_file(dir / "pass", "s3cret  \r\nsecond line\n"));
  ASSERT_TRUE(secret) << secret.error().message;
  EXPECT_EQ(*secret, "s3cret");
  auto empty = read_secret_file(write_file(dir / "empty", "\n"));
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, ErrorCode::config);
  EXPECT_NE(empty.error().message.find("is empty"), std::string::npos);
  auto missing = read_secret_file(dir / "none");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot be read"), std::string::npos);
}

TEST(FileUri, NamesAnAbsolutePathWithItsOddCharactersEscaped) {
  EXPECT_EQ(file_uri("/srv/ca1/private/ca_signing.key"), "file:/srv/ca1/private/ca_signing.key");
  EXPECT_EQ(file_uri("/srv/my keys/100%.pem"), "file:/srv/my%20keys/100%25.pem");
  const std::string relative = file_uri("private/k.pem");
  EXPECT_TRUE(relative.starts_with("file:/")) << relative;
  EXPECT_TRUE(relative.ends_with("/private/k.pem")) << relative;
}

TEST(FileUri, ReadsBackEveryFormRfc8089Allows) {
  for (const char* uri : {"file:/srv/my%20keys/k.pem", "file:///srv/my%20keys/k.pem",
                          "file://localhost/srv/my%20keys/k.pem"}) {
    SCOPED_TRACE(uri);
    auto path = path_of_file_uri(uri);
    ASSERT_TRUE(path) << path.error().message;
    EXPECT_EQ(*path, std::filesystem::path("/srv/my keys/k.pem"));
  }
  auto round_trip = path_of_file_uri(file_uri("/srv/a b/#1?.pem"));
  ASSERT_TRUE(round_trip) << round_trip.error().message;
  EXPECT_EQ(*round_trip, std::filesystem::path("/srv/a b/#1?.pem"));
}

TEST(FileUri, RefusesAnotherHostARelativePathAndBrokenEscapes) {
  for (const char* uri : {"file://keyhost/srv/k.pem", "file:k.pem", "file:", "file:/srv/%zz.pem", "file:/srv/k%2",
                          "file:/srv/k%00.pem", "http://x/k.pem"}) {
    SCOPED_TRACE(uri);
    auto path = path_of_file_uri(uri);
    ASSERT_FALSE(path) << path->string();
    EXPECT_EQ(path.error().code, ErrorCode::config);
  }
}

}  // namespace
}  // namespace ca
