#include "app/log.h"

#include <gtest/gtest.h>

namespace svcbox::app {
namespace {

TEST(JsonLogTest, AMessageThatIsNotUtf8IsLoggedWithReplacementCharacters) {
  std::string fields;
  EXPECT_NO_THROW(fields = jsonLogFields(spdlog::level::info, "registry /tmp/\xff.db"));
  EXPECT_EQ(fields, "\"level\":\"info\",\"msg\":\"registry /tmp/\xEF\xBF\xBD.db\"}");
}

TEST(JsonLogTest, QuotesAndNewlinesAreEscaped) {
  EXPECT_EQ(jsonLogFields(spdlog::level::warn, "a \"b\"\nc"),
            "\"level\":\"warning\",\"msg\":\"a \\\"b\\\"\\nc\"}");
}

}  // namespace
}  // namespace svcbox::app
