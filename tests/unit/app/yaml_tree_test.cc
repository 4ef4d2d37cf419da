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

// The error a document gets, with its mark; "" when it is read without one.
std::string refusal(const std::string& text, Mark* mark = nullptr) {
  try {
    size_t documents = 0;
    forEachDocument(text, [&](const Node&) { ++documents; });
    return "";
  } catch (const Error& error) {
    if (mark) *mark = error.mark();
    return error.what();
  }
}

TEST(YamlTreeTest, AnAliasToANodeThatContainsItIsACycleAndRefused) {
  Mark mark;
  EXPECT_NE(refusal("&r {kind: List, apiVersion: v1, items: [*r]}\n", &mark).find("cycle"),
            std::string::npos);
  EXPECT_EQ(mark.line, 0);
  EXPECT_EQ(mark.column, 40);  // the alias
  EXPECT_NE(refusal("a: &x\n  b: [1, {c: *x}]\n").find("cycle"), std::string::npos);
}

TEST(YamlTreeTest, AliasesThatExpandPastAMillionNodesAreRefused) {
  // Nine levels, each ten aliases of the one before: 10^9 nodes from a few hundred bytes.
  std::string text = "metadata:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 9; ++level) {
    std::string previous = "*a" + std::to_string(level - 1);
    text += "  a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) text += (i ? ", " : "") + previous;
    text += "]\n";
  }
  Mark mark;
  EXPECT_NE(refusal(text, &mark).find("more than 1000000 nodes"), std::string::npos);
  EXPECT_EQ(mark.line, 6);  // a5: 10^6 x's and the sequences that hold them
}

TEST(YamlTreeTest, AliasesThatExpandADocumentTenfoldAreRefused) {
  std::string text = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: [";
  for (int i = 0; i < 20; ++i) text += (i ? ", " : "") + std::string("*a");
  text += "]\n";
  EXPECT_NE(refusal(text).find("more than 10 times"), std::string::npos);
  EXPECT_EQ(refusal("a: &a [x, y]\nb: [*a, *a]\n"), "");  // sharing within the bound is fine
}

TEST(YamlTreeTest, NestingDeeperThan64LevelsIsRefused) {
  EXPECT_EQ(refusal(std::string(64, '[') + std::string(64, ']') + "\n"), "");
  Mark mark;
  EXPECT_NE(refusal(std::string(65, '[') + std::string(65, ']') + "\n", &mark).find("deeper"),
            std::string::npos);
  EXPECT_EQ(mark.column, 64);
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
