#include "app/json_tree.h"

#include <gtest/gtest.h>

#include <string>

namespace svcbox::app::yaml {
namespace {

std::string errorOf(std::string_view text, Mark* mark = nullptr) {
  try {
    readJson(text, [](const Node&) {});
  } catch (const Error& error) {
    if (mark) *mark = error.mark();
    return error.what();
  }
  return "no error";
}

TEST(JsonTreeTest, StringsAreQuotedScalarsAndNumbersAndBooleansPlainOnes) {
  int visits = 0;
  readJson(R"({"a": 1, "b": "1", "c": null, "d": [true, 2.50, -7, 18446744073709551615], "e": {}})",
           [&](const Node& root) {
             ++visits;
             ASSERT_TRUE(root.IsMap());
             EXPECT_EQ(root.size(), 5u);
             EXPECT_EQ(root["a"].Scalar(), "1");
             EXPECT_EQ(root["a"].Tag(), "?");
             EXPECT_EQ(root["b"].Scalar(), "1");
             EXPECT_EQ(root["b"].Tag(), "!");
             EXPECT_TRUE(root["c"].IsNull());
             ASSERT_TRUE(root["d"].IsSequence());
             EXPECT_EQ(root["d"][0].Scalar(), "true");
             EXPECT_EQ(root["d"][1].Scalar(), "2.50");  // as written, not as a double prints
             EXPECT_EQ(root["d"][2].Scalar(), "-7");
             EXPECT_EQ(root["d"][3].Scalar(), "18446744073709551615");
             EXPECT_TRUE(root["e"].IsMap());
             EXPECT_EQ(root["e"].size(), 0u);
             EXPECT_EQ(root.items()[1].first.Tag(), "!");  // keys are strings too
           });
  EXPECT_EQ(visits, 1);
}

TEST(JsonTreeTest, NodesKnowTheLineAndColumnTheyWereWrittenAt) {
  // Columns count characters, as libyaml's do: "é" is two bytes and one column.
  std::string text = "{\n  \"é\": [10, \"x\",\n\t{\"k\" :false}],\n  \"n\":12 , \"m\": \"v\"\n}";
  readJson(text, [](const Node& root) {
    auto items = root.items();
    ASSERT_EQ(items.size(), 3u);
    EXPECT_EQ(root.Mark().line, 0);
    EXPECT_EQ(root.Mark().column, 0);
    EXPECT_EQ(items[0].first.Mark().line, 1);
    EXPECT_EQ(items[0].first.Mark().column, 2);
    auto list = items[0].second;
    EXPECT_EQ(list.Mark().column, 7);
    EXPECT_EQ(list[0].Mark().column, 8);
    EXPECT_EQ(list[1].Mark().column, 12);  // after a number, which the lexer reads one past
    EXPECT_EQ(list[2].Mark().line, 2);
    EXPECT_EQ(list[2].Mark().column, 1);
    EXPECT_EQ(list[2]["k"].Mark().column, 7);
    EXPECT_EQ(items[1].second.Mark().line, 3);
    EXPECT_EQ(items[1].second.Mark().column, 6);
    EXPECT_EQ(items[2].first.Mark().column, 11);
    EXPECT_EQ(items[2].second.Mark().column, 16);
  });
}

TEST(JsonTreeTest, SyntaxErrorsNameTheLineAndColumnTheParserStoppedAt) {
  Mark mark;
  auto error = errorOf("{\n  \"a\": 1\n  \"b\": 2\n}", &mark);
  EXPECT_EQ(mark.line, 2);
  EXPECT_EQ(mark.column, 4);  // the end of "b", the token that cannot follow 1
  EXPECT_NE(error.find("unexpected string literal"), std::string::npos) << error;
  EXPECT_EQ(error.find("json.exception"), std::string::npos) << error;

  errorOf("[tru]", &mark);
  EXPECT_EQ(mark.column, 4);
}

TEST(JsonTreeTest, OnlyStrictJsonIsRead) {
  EXPECT_NE(errorOf(""), "no error");
  EXPECT_NE(errorOf("{} {}"), "no error");               // one value
  EXPECT_NE(errorOf("{\"a\": 1} // note"), "no error");  // no comments
  EXPECT_NE(errorOf("{a: 1}"), "no error");              // YAML's flow style is not JSON
  EXPECT_NE(errorOf("[1,]"), "no error");
  EXPECT_NE(errorOf("\"\xff\""), "no error");  // not UTF-8
  int visits = 0;
  readJson(" null ", [&](const Node&) { ++visits; });
  EXPECT_EQ(visits, 0);  // like an empty YAML document
}

TEST(JsonTreeTest, NestingDeeperThanTheLimitIsRefusedWhereItGoesTooDeep) {
  auto nested = [](size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_EQ(errorOf(nested(kMaxDepth)), "no error");
  Mark mark;
  auto error = errorOf("\n" + nested(100'000), &mark);
  EXPECT_NE(error.find("nested deeper than 64 levels"), std::string::npos) << error;
  EXPECT_EQ(mark.line, 1);
  EXPECT_EQ(mark.column, static_cast<int>(kMaxDepth));
}

}  // namespace
}  // namespace svcbox::app::yaml
