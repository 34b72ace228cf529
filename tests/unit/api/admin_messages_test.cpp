// The admin API's messages: what is encoded reads back the same, the bytes on the wire are the ones
// ca-server always wrote, and a missing, wrongly typed or (in a request) unknown field is refused
// by name.
#include "api/admin_messages.hpp"

#include <string>

#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

namespace ca::api {
namespace {

template <typename T>
std::string wire(const T& message) {
  return boost::json::serialize(encode_message(message));
}

template <typename T>
void expect_refused(std::string_view text, std::string_view message) {
  SCOPED_TRACE(text);
  auto decoded = parse_message<T>(text);
  ASSERT_FALSE(decoded);
  EXPECT_EQ(decoded.error().code, ErrorCode::bad_request);
  EXPECT_EQ(decoded.error().message, message);
}

CloneRegistrationAnswer sample_registration() {
  return {3, "clone1", "o=ca", "uid=replica-3,ou=replication,o=ca", "s3cret", "ldaps://master:3890/", 1, "master",
          std::string("-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n")};
}

TopologyInstance sample_instance() {
  TopologyInstance i;
  i.replica_id = 2;
  i.instance_id = "clone1";
  i.url = "https://clone1:8443";
  i.serial_current = "1000-1999";
  i.serial_next = 1005;
  i.request_current = "10-19";
  i.request_standby = "20-29";
  i.request_next = 11;
  i.heartbeat = 1765000000;
  i.agreement = true;
  i.directory_url = "ldaps://clone1:3891/";
  return i;
}

TEST(AdminMessagesTest, RegistrationRequestRoundTripsInTheOrderSpawnSendsIt) {
  CloneRegistrationRequest first{"clone1", "https://clone1:8444", "abc.def", "-----BEGIN CERTIFICATE REQUEST-----"};
  EXPECT_EQ(wire(first), R"({"instance_id":"clone1","url":"https://clone1:8444","join_token":"abc.def",)"
                         R"("subsystem_csr":"-----BEGIN CERTIFICATE REQUEST-----"})");
  auto back = parse_message<CloneRegistrationRequest>(wire(first));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->instance_id, "clone1");
  EXPECT_EQ(back->url, "https://clone1:8444");
  EXPECT_EQ(back->join_token, "abc.def");
  EXPECT_EQ(back->subsystem_csr, "-----BEGIN CERTIFICATE REQUEST-----");

  CloneRegistrationRequest again{"clone1", "https://clone1:8444", std::nullopt, std::nullopt};
  EXPECT_EQ(wire(again), R"({"instance_id":"clone1","url":"https://clone1:8444"})");
  auto rerun = parse_message<CloneRegistrationRequest>(wire(again));
  ASSERT_TRUE(rerun) << rerun.error().message;
  EXPECT_FALSE(rerun->join_token);
  EXPECT_FALSE(rerun->subsystem_csr);
  // null is "not given", as the server always read it.
  auto with_null = parse_message<CloneRegistrationRequest>(R"({"instance_id":"a","url":"u","join_token":null})");
  ASSERT_TRUE(with_null) << with_null.error().message;
  EXPECT_FALSE(with_null->join_token);
}

TEST(AdminMessagesTest, RegistrationRequestRefusesMissingWrongAndUnknownFields) {
  expect_refused<CloneRegistrationRequest>(R"({"url":"u"})", "field 'instance_id' is required");
  expect_refused<CloneRegistrationRequest>(R"({"instance_id":"a"})", "field 'url' is required");
  expect_refused<CloneRegistrationRequest>(R"({"instance_id":7,"url":"u"})", "field 'instance_id' must be a string");
  expect_refused<CloneRegistrationRequest>(R"({"instance_id":"a","url":"u","join_token":1})",
                                           "field 'join_token' must be a string");
  expect_refused<CloneRegistrationRequest>(R"({"instance_id":"a","url":"u","joint_token":"x"})",
                                           "unknown field 'joint_token'");
  expect_refused<CloneRegistrationRequest>(R"(["instance_id"])", "the message must be an object");
  auto twice = parse_message<CloneRegistrationRequest>(R"({"instance_id":"a","instance_id":"b","url":"u"})");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("duplicate key 'instance_id'"), std::string::npos) << twice.error().message;
  auto trailing = parse_message<CloneRegistrationRequest>(R"({"instance_id":"a","url":"u"} {"x":1})");
  ASSERT_FALSE(trailing);
  EXPECT_TRUE(trailing.error().message.starts_with("malformed JSON at offset")) << trailing.error().message;
}

TEST(AdminMessagesTest, RegistrationAnswerRoundTripsWithTheFieldsTheServerWrites) {
  auto answer = sample_registration();
  EXPECT_EQ(wire(answer), R"({"replica_id":3,"instance_id":"clone1","suffix":"o=ca",)"
                          R"("replication_bind_dn":"uid=replica-3,ou=replication,o=ca","replication_password":"s3cret",)"
                          R"("master_directory_url":"ldaps://master:3890/","master_replica_id":1,)"
                          R"("master_instance_id":"master",)"
                          R"("subsystem_certificate":"-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n"})");
  auto back = parse_message<CloneRegistrationAnswer>(wire(answer));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(wire(*back), wire(answer));
  answer.subsystem_certificate.reset();
  EXPECT_EQ(wire(answer).find("subsystem_certificate"), std::string::npos);
  // A field a newer server adds is no error in an answer.
  auto json = encode_message(answer);
  json.as_object()["cluster_name"] = "east";
  EXPECT_TRUE(decode_message<CloneRegistrationAnswer>(json));
}

TEST(AdminMessagesTest, RegistrationAnswerRefusesMissingAndWronglyTypedFields) {
  auto json = encode_message(sample_registration());
  json.as_object().erase("master_replica_id");
  auto missing = decode_message<CloneRegistrationAnswer>(json);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "field 'master_replica_id' is required");
  json.as_object()["master_replica_id"] = "1";
  auto wrong = decode_message<CloneRegistrationAnswer>(json);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "field 'master_replica_id' must be an integer");
  json.as_object()["master_replica_id"] = 1.5;
  EXPECT_FALSE(decode_message<CloneRegistrationAnswer>(json));
  json.as_object()["master_replica_id"] = int64_t{1} << 40;
  auto wide = decode_message<CloneRegistrationAnswer>(json);
  ASSERT_FALSE(wide);
  EXPECT_EQ(wide.error().message, "field 'master_replica_id' must be an integer of 32 bits");
}

TEST(AdminMessagesTest, ReplicationAndRetirementRoundTrip) {
  EXPECT_EQ(wire(ReplicationConnectRequest{"ldaps://clone1:3891/"}), R"({"directory_url":"ldaps://clone1:3891/"})");
  EXPECT_EQ(wire(ReplicationConnectAnswer{2, "ldaps://clone1:3891/"}),
            R"({"replica_id":2,"directory_url":"ldaps://clone1:3891/","status":"consuming"})");
  EXPECT_EQ(wire(CloneRetirementAnswer{2}), R"({"replica_id":2,"status":"retired"})");
  auto connect = parse_message<ReplicationConnectRequest>(R"({"directory_url":"ldaps://c:1/"})");
  ASSERT_TRUE(connect);
  EXPECT_EQ(connect->directory_url, "ldaps://c:1/");
  auto connected = parse_message<ReplicationConnectAnswer>(wire(ReplicationConnectAnswer{2, "x"}));
  ASSERT_TRUE(connected);
  EXPECT_EQ(connected->replica_id, 2);
  auto retired = parse_message<CloneRetirementAnswer>(R"({"replica_id":4,"status":"retired"})");
  ASSERT_TRUE(retired);
  EXPECT_EQ(retired->replica_id, 4);
  expect_refused<ReplicationConnectRequest>("{}", "field 'directory_url' is required");
  expect_refused<ReplicationConnectRequest>(R"({"directory_url":["x"]})", "field 'directory_url' must be a string");
  expect_refused<CloneRetirementAnswer>(R"({"replica_id":"4","status":"retired"})", "field 'replica_id' must be an integer");
  expect_refused<ReplicationConnectAnswer>(R"({"replica_id":4,"directory_url":"x"})", "field 'status' is required");
}

TEST(AdminMessagesTest, TopologyRoundTripsWithNullRangesAndTheDirectoryUrlOnlyWithAnAgreement) {
  TopologyAnswer topology;
  topology.instances.push_back(sample_instance());
  TopologyInstance retired;
  retired.replica_id = 3;
  retired.instance_id = "clone2";
  retired.url = "https://clone2:8443";
  retired.retired = true;
  topology.instances.push_back(retired);
  EXPECT_EQ(wire(topology),
            R"({"instances":[{"replica_id":2,"instance_id":"clone1","url":"https://clone1:8443","retired":false,)"
            R"("serial_current":"1000-1999","serial_standby":null,"serial_next":1005,"request_current":"10-19",)"
            R"("request_standby":"20-29","request_next":11,"heartbeat":1765000000,"agreement":true,)"
            R"("directory_url":"ldaps://clone1:3891/"},)"
            R"({"replica_id":3,"instance_id":"clone2","url":"https://clone2:8443","retired":true,)"
            R"("serial_current":null,"serial_standby":null,"serial_next":0,"request_current":null,)"
            R"("request_standby":null,"request_next":0,"heartbeat":0,"agreement":false}]})");
  auto back = parse_message<TopologyAnswer>(wire(topology));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(wire(*back), wire(topology));
  ASSERT_TRUE(back->active_instance("clone1"));
  EXPECT_EQ(back->active_instance("clone1")->replica_id, 2);
  EXPECT_FALSE(back->active_instance("clone2"));
  EXPECT_TRUE(back->lists_as_retired(3));
  EXPECT_FALSE(back->lists_as_retired(2));
  // Counters beyond 2^63 stay exact.
  topology.instances[0].serial_next = 18446744073709551615u;
  auto big = parse_message<TopologyAnswer>(wire(topology));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->instances[0].serial_next, 18446744073709551615u);
}

TEST(AdminMessagesTest, TopologyRefusalsNameTheInstanceAndTheField) {
  auto json = encode_message(TopologyAnswer{{sample_instance(), sample_instance()}});
  json.as_object()["instances"].as_array()[1].as_object()["retired"] = "no";
  auto wrong = decode_message<TopologyAnswer>(json);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "field 'instances[1].retired' must be true or false");
  json.as_object()["instances"].as_array()[1].as_object().erase("retired");
  auto missing = decode_message<TopologyAnswer>(json);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "field 'instances[1].retired' is required");
  expect_refused<TopologyAnswer>(R"({"instances":{}})", "field 'instances' must be an array");
  expect_refused<TopologyAnswer>(R"({"instances":[1]})", "field 'instances[0]' must be an object");
  expect_refused<TopologyAnswer>(R"({"instances":[{"replica_id":-1,"instance_id":"a","url":"u","retired":false,)"
                                 R"("serial_next":-5}]})",
                                 "field 'instances[0].serial_next' must be a non-negative integer");
  expect_refused<TopologyAnswer>("{}", "field 'instances' is required");
}

TEST(AdminMessagesTest, BoostValueToThrowsTheSameRefusal) {
  auto good = boost::json::value_to<ReplicationConnectRequest>(boost::json::value(boost::json::object{{"directory_url", "x"}}));
  EXPECT_EQ(good.directory_url, "x");
  try {
    (void)boost::json::value_to<ReplicationConnectRequest>(boost::json::value(boost::json::object{}));
    FAIL() << "no refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "field 'directory_url' is required");
  }
}

}  // namespace
}  // namespace ca::api
