#include "app/yaml_tree.h"

#include <gtest/gtest.h>

namespace svcbox::app::yaml {
namespace {

std::vector<std::string> kinds(std::string_view text) {
  std::vector<std::string> found;
  forEachDocument(text, [&](const Node& root) { found.push_back(root["kind"].Scalar()); });
  return found;
}

TEST(YamlTreeTest, ReadsDocumentsInTurnAndSkipsEmptyOnes) {
  EXPECT_EQ(kinds("kind: A\n---\n---\nkind: B\n...\n---\nkind: C\n"),
            (std::vector<std::string>{"A", "B", "C"}));
  EXPECT_TRUE(kinds("").empty());
}

TEST(YamlTreeTest, NodesKnowTheirTypeTagAndPosition) {
  forEachDocument("a: 1\nb: \"2\"\nc: ~\nd: [x, {e: f}]\ng:\n", [](const Node& root) {
    EXPECT_TRUE(root.IsMap());
    EXPECT_EQ(root.size(), 5u);
    EXPECT_EQ(root["a"].Scalar(), "1");
    EXPECT_EQ(root["a"].Tag(), "?");
    EXPECT_EQ(root["b"].Tag(), "!");  // quoted
    EXPECT_TRUE(root["c"].IsNull());
    EXPECT_TRUE(root["g"].IsNull());
    EXPECT_FALSE(root["missing"].IsDefined());
    EXPECT_TRUE(root["d"].IsSequence());
    EXPECT_EQ(root["d"][1]["e"].Scalar(), "f");
    EXPECT_FALSE(root["d"][2].IsDefined());
    EXPECT_EQ(root["d"][1]["e"].Mark().line, 3);
    EXPECT_EQ(root["d"][1]["e"].Mark().column, 11);
    auto items = root.items();
    ASSERT_EQ(items.size(), 5u);
    EXPECT_EQ(items[3].first.Scalar(), "d");
  });
}

TEST(YamlTreeTest, AnchorsAndAliases) {
  forEachDocument("base: &labels {app: web}\ncopy: *labels\n",
                  [](const Node& root) { EXPECT_EQ(root["copy"]["app"].Scalar(), "web"); });
  try {
    forEachDocument("a: *nothing\n", [](const Node&) {});
    FAIL() << "an unknown alias must be an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("nothing"), std::string::npos);
  }
}

TEST(YamlTreeTest, MalformedYamlSaysWhere) {
  try {
    forEachDocument("a: 1\nb: [1, 2\nc: 3\n", [](const Node&) {});
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_GE(error.mark().line, 1);
  }
}

}  // namespace
}  // namespace svcbox::app::yaml
